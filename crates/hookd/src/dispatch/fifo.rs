//! FIFO destinations: each destination's deliveries in ordered lanes, each lane sent by one
//! worker at a time, oldest first, in batches, the next batch only once the previous one
//! succeeded or was given up.
//!
//! A message joins the lane its ordering key picks ([`lane_of`]): the value at a path in the
//! payload (`orderingKey`, e.g. `metadata.workspace_id`) hashed into one of [`LANES`] lanes, or
//! lane 0 when the destination has no ordering key. One key's messages therefore always share
//! a lane and keep their order, while different keys proceed in parallel (two keys may share a
//! lane, which keeps both in order).
//!
//! The runner looks for lanes with work every poll interval (and when woken), leases each lane
//! it takes (so one node works on it, across nodes), and sends batch after batch: a JSON array
//! of the messages, signed like any delivery, its `webhook-id` the first message's id. Every
//! message of a batch gets the attempt, with the same response. A failed batch holds its lane
//! until its retry time (the endpoint's retry schedule); when the schedule is exhausted the
//! batch's messages fail (visibly, in the attempt log and `message.attempt.exhausted`-free
//! statistics) and the lane moves on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hookd_core::model::{Endpoint, TriggerType};
use hookd_core::retry::RetryPolicy;
use hookd_store::{AttemptRecord, ClaimedDelivery, FifoItem, FifoLane, FifoStore, QueueStore};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{record, send};
use crate::cache::{AppCache, EndpointCache};
use crate::clock::Clock;

/// Lanes per FIFO destination: ordering-key values are hashed into this many.
pub const LANES: i32 = 64;
/// Lanes one node works on at once, in all.
const MAX_ACTIVE: usize = 64;
/// Lanes of one application one node works on at once, so one tenant's lanes cannot take
/// every worker.
const MAX_ACTIVE_PER_APP: usize = 8;
/// Batches one lane sends before it gives its turn back (and is found again by the next scan).
const TURN: usize = 16;

/// The lane of a message whose payload is `payload`, for a destination whose ordering key is
/// `key` (a dot path into the payload; `None`: one lane for the whole destination). A missing
/// value, or a payload that is not JSON, goes to lane 0.
pub fn lane_of(key: Option<&str>, payload: &str) -> i32 {
    lane_for(key, &std::cell::OnceCell::new(), payload)
}

/// [`lane_of`], with the payload parsed at most once into `parsed` and only when there is a
/// key: the destinations one message goes to share one parse.
pub fn lane_for(key: Option<&str>, parsed: &std::cell::OnceCell<Option<serde_json::Value>>, payload: &str) -> i32 {
    let Some(path) = key.filter(|k| !k.is_empty()) else {
        return 0;
    };
    let Some(value) = parsed.get_or_init(|| serde_json::from_str(payload).ok()) else {
        return 0;
    };
    let found = path.split('.').try_fold(value, |v, part| v.get(part));
    let Some(found) = found else {
        return 0;
    };
    // A string hashes as its text, anything else as its JSON.
    let text = match found {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let digest = Sha256::digest(text.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (n % LANES as u32) as i32
}

/// One message of a batch, as the receiver gets it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchItem<'a> {
    id: &'a str,
    event_type: &'a str,
    payload: &'a RawValue,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<&'a [String]>,
}

/// The body of one batch: a JSON array of its messages, oldest first.
pub(super) fn batch_body(items: &[FifoItem]) -> Bytes {
    let null = RawValue::from_string("null".into()).expect("null is JSON");
    let payloads: Vec<Box<RawValue>> = items
        .iter()
        .map(|i| {
            i.message
                .payload
                .as_ref()
                .and_then(|p| RawValue::from_string(p.clone()).ok())
                .unwrap_or_else(|| null.clone())
        })
        .collect();
    let batch: Vec<BatchItem<'_>> = items
        .iter()
        .zip(&payloads)
        .map(|(i, payload)| BatchItem {
            id: &i.message.id,
            event_type: &i.message.event_type,
            payload,
            timestamp: crate::clock::ts(&i.message.created_at),
            event_id: i.message.event_id.as_deref(),
            channels: i.message.channels.as_deref(),
        })
        .collect();
    Bytes::from(serde_json::to_vec(&batch).expect("a batch serializes"))
}

/// What the FIFO runner needs.
pub struct FifoRunner {
    pub(super) fifo: Arc<dyn FifoStore>,
    pub(super) queue: Arc<dyn QueueStore>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) endpoints: Arc<EndpointCache>,
    pub(super) apps: Arc<AppCache>,
    pub(super) sender: send::Sender,
    pub(super) policy: RetryPolicy,
    pub(super) interval: Duration,
    pub(super) lease: Duration,
    pub(super) wake: Arc<Notify>,
    pub(super) notifier: crate::operational::Notifier,
    /// How long an endpoint may only exhaust its messages before it is disabled.
    pub(super) disable_after: chrono::Duration,
    /// Traffic counts for the dashboard's charts: every message of a batch is an attempt.
    pub(super) traffic: Arc<crate::traffic::Traffic>,
}

/// Lanes this node works on now, in all and by application.
#[derive(Default)]
struct Active {
    lanes: HashSet<(String, i32)>,
    per_app: HashMap<String, usize>,
}

impl FifoRunner {
    /// Finds lanes with work and works on them until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let active = Arc::new(Mutex::new(Active::default()));
        let tracker = tokio_util::task::TaskTracker::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(this.interval) => {}
                _ = this.wake.notified() => {}
            }
            let now = this.clock.now();
            let (full, room) = {
                let a = active.lock().expect("FIFO lanes lock");
                let full: Vec<String> = a
                    .per_app
                    .iter()
                    .filter(|(_, n)| **n >= MAX_ACTIVE_PER_APP)
                    .map(|(app, _)| app.clone())
                    .collect();
                (full, MAX_ACTIVE.saturating_sub(a.lanes.len()))
            };
            if room == 0 {
                continue;
            }
            let lanes = match this.fifo.fifo_lanes(now, room * 2, &full).await {
                Ok(lanes) => lanes,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for FIFO lanes with work; will try again");
                    continue;
                }
            };
            for lane in lanes {
                {
                    let mut a = active.lock().expect("FIFO lanes lock");
                    let key = (lane.endpoint_id.clone(), lane.lane);
                    let app_count = a.per_app.get(&lane.app_id).copied().unwrap_or(0);
                    if a.lanes.len() >= MAX_ACTIVE || app_count >= MAX_ACTIVE_PER_APP || a.lanes.contains(&key) {
                        continue;
                    }
                    a.lanes.insert(key);
                    *a.per_app.entry(lane.app_id.clone()).or_default() += 1;
                }
                let (this, active, stop) = (this.clone(), active.clone(), shutdown.clone());
                tracker.spawn(async move {
                    this.work(&lane, &stop).await;
                    let mut a = active.lock().expect("FIFO lanes lock");
                    a.lanes.remove(&(lane.endpoint_id.clone(), lane.lane));
                    if let Some(n) = a.per_app.get_mut(&lane.app_id) {
                        *n -= 1;
                        if *n == 0 {
                            a.per_app.remove(&lane.app_id);
                        }
                    }
                });
            }
        }
        tracker.close();
        tracker.wait().await;
    }

    /// Leases the lane and sends its batches for one turn.
    async fn work(&self, lane: &FifoLane, stop: &CancellationToken) {
        let token = hookd_store::new_lease_token(&mut rand::thread_rng());
        let now = self.clock.now();
        match self.fifo.lease_fifo_lane(lane, token, self.lease_until(now), now).await {
            Ok(true) => {}
            Ok(false) => return, // another node has it, or it must wait
            Err(e) => {
                tracing::warn!(error = %e, endpoint = %lane.endpoint_id, "cannot lease a FIFO lane; will try again");
                return;
            }
        }
        let (mut retry_at, mut fill, mut more) = (self.clock.now(), 0, true);
        for _ in 0..TURN {
            if stop.is_cancelled() {
                break;
            }
            match self.send_batch(lane).await {
                Step::Sent => {
                    // Keep the lease for the next batch.
                    let now = self.clock.now();
                    if !matches!(
                        self.fifo.lease_fifo_lane(lane, token, self.lease_until(now), now).await,
                        Ok(true)
                    ) {
                        return; // taken over (this node was too slow): the new owner goes on
                    }
                    retry_at = now;
                }
                Step::Wait(at) => {
                    (retry_at, more) = (at, false);
                    break;
                }
                Step::Fill(at, size) => {
                    (retry_at, fill, more) = (at, size, false);
                    break;
                }
            }
        }
        if let Err(e) = self.fifo.release_fifo_lane(lane, token, retry_at, fill).await {
            tracing::warn!(error = %e, endpoint = %lane.endpoint_id, "cannot release a FIFO lane; its lease runs out");
        }
        if more {
            // Its turn is over but it has work: look again at once, not after the interval.
            self.wake.notify_one();
        }
    }

    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Sends the lane's next batch and records it.
    async fn send_batch(&self, lane: &FifoLane) -> Step {
        let now = self.clock.now();
        let later = now + chrono::Duration::from_std(self.interval).unwrap_or_default();
        let endpoint = match self.endpoints.get(&lane.app_id, &lane.endpoint_id).await {
            Ok(Some(e)) => e,
            Ok(None) => return Step::Wait(later), // deleted, or not yet in this node's cache
            Err(e) => {
                tracing::warn!(error = %e, endpoint = %lane.endpoint_id, "cannot load a FIFO destination");
                return Step::Wait(later);
            }
        };
        let Some(destination) = endpoint.destination.as_ref().filter(|d| d.kind.in_lanes()) else {
            return Step::Wait(later);
        };
        if endpoint.disabled {
            return Step::Wait(later);
        }
        let items = match self.fifo.fifo_head(lane, destination.batch_size as usize).await {
            Ok(items) if items.is_empty() => return Step::Wait(now),
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, endpoint = %lane.endpoint_id, "cannot read a FIFO lane");
                return Step::Wait(later);
            }
        };
        // A batch that is not full waits for more, up to maxWaitSecs after its oldest message.
        if items.len() < destination.batch_size as usize && destination.max_wait_secs > 0 {
            let full_by = items[0].message.created_at + chrono::Duration::seconds(destination.max_wait_secs.into());
            if full_by > now {
                return Step::Fill(full_by, destination.batch_size as usize);
            }
        }
        let app = match self.apps.by_id(&lane.app_id).await {
            Ok(Some(app)) => app,
            _ => return Step::Wait(later),
        };
        let started = self.clock.now();
        crate::metrics::deliveries_dispatched(crate::metrics::Dispatched::Lane, items.len());
        let result = self.sender.send_batch(app.env, &endpoint, &items, started).await;
        crate::metrics::attempt(&result.outcome, result.status_code, result.duration.as_secs_f64());
        let mut records = records(&items, &endpoint, result, started, &self.policy);
        // The operational webhooks each message's attempt causes, as for any endpoint.
        for ((r, _), item) in records.iter_mut().zip(&items) {
            let event = super::attempt::attempt_event(&self.notifier, &endpoint, item.message.event_id.as_deref(), r);
            r.events.extend(event);
        }
        let retry = records.iter().filter_map(|r| r.1).min();
        let records: Vec<AttemptRecord> = records.into_iter().map(|r| r.0).collect();
        for (r, item) in records.iter().zip(&items) {
            let delivered = r.attempt.status == hookd_core::model::MessageStatus::Success;
            let latency = delivered.then(|| {
                (started - item.message.created_at).num_milliseconds().max(0) + r.attempt.response_duration_ms
            });
            let failed = r.delivery_status == hookd_core::model::MessageStatus::Fail;
            self.traffic.attempt(app.env, started, delivered, failed, latency);
        }
        if let Err(e) = self.queue.record_attempts(&records).await {
            tracing::warn!(error = %e, endpoint = %lane.endpoint_id, "cannot record a FIFO batch; it is sent again");
            return Step::Wait(later);
        }
        if records
            .iter()
            .any(|r| r.delivery_status == hookd_core::model::MessageStatus::Fail)
        {
            // Exhausted, as for an endpoint: disabled once its failing run is old enough.
            let disabling = super::attempt::Disabling {
                store: self.queue.as_ref(),
                apps: &self.apps,
                endpoints: &self.endpoints,
                notifier: &self.notifier,
            };
            let failing_by = started - self.disable_after;
            let why = "has had no successful delivery while its messages exhausted their retries";
            disabling
                .disable(&endpoint, self.clock.now(), Some(failing_by), why)
                .await;
        }
        match retry {
            // A message of the batch has attempts left: the lane waits for it.
            Some(at) => Step::Wait(at),
            // Delivered, or given up: the next batch may go.
            None => Step::Sent,
        }
    }
}

/// What a lane does after a batch.
enum Step {
    /// Go on with the next batch.
    Sent,
    /// Stop; the lane's head may be tried again at this time.
    Wait(DateTime<Utc>),
    /// Stop; the batch is not full: it goes at this time, or once this many wait.
    Fill(DateTime<Utc>, usize),
}

/// One record per message of the batch, with the time its retry is due (`None`: finished).
/// The deliveries themselves are never due for the claim, so the retry time is the lane's.
fn records(
    items: &[FifoItem],
    endpoint: &Endpoint,
    result: send::SendResult,
    started: DateTime<Utc>,
    policy: &RetryPolicy,
) -> Vec<(AttemptRecord, Option<DateTime<Utc>>)> {
    let mut rng = rand::thread_rng();
    items
        .iter()
        .map(|item| {
            let claimed = ClaimedDelivery {
                id: item.delivery_id.clone(),
                msg_id: item.message.id.clone(),
                endpoint_id: endpoint.id.clone(),
                app_id: endpoint.app_id.clone(),
                scheduled_attempts: item.scheduled_attempts,
                total_attempts: item.total_attempts,
                trigger: TriggerType::Scheduled,
                lease_token: 0,
                row: None,
            };
            let copy = send::SendResult {
                outcome: result.outcome.clone(),
                status_code: result.status_code,
                response: result.response.clone(),
                duration: result.duration,
                request_headers: result.request_headers.clone(),
                response_headers: result.response_headers.clone(),
            };
            let mut r = record::build(&claimed, endpoint, &item.message, copy, started, policy, &mut rng);
            // 410 Gone is a failure like any other here: parking would let the delivery leave
            // its lane.
            r.park = false;
            let retry = r.next_attempt_at.take();
            (r, retry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_keys_messages_share_a_lane_and_keys_spread_over_the_lanes() {
        let payload = |ws: &str| format!(r#"{{"metadata": {{"workspace_id": "{ws}"}}, "n": 1}}"#);
        let key = Some("metadata.workspace_id");
        assert_eq!(lane_of(key, &payload("ws_1")), lane_of(key, &payload("ws_1")));
        let lanes: HashSet<i32> = (0..200).map(|n| lane_of(key, &payload(&format!("ws_{n}")))).collect();
        assert!(
            lanes.len() > LANES as usize / 2,
            "200 keys use most lanes: {}",
            lanes.len()
        );
        assert!(lanes.iter().all(|l| (0..LANES).contains(l)));
        // No key, a missing value, or a payload that is not JSON: lane 0.
        assert_eq!(lane_of(None, &payload("ws_1")), 0);
        assert_eq!(lane_of(key, r#"{"n": 1}"#), 0);
        assert_eq!(lane_of(key, "not json"), 0);
        // Numbers and strings hash by their value.
        assert_eq!(
            lane_of(Some("k"), r#"{"k": 7}"#),
            lane_of(Some("k"), r#"{"k": 7, "other": true}"#)
        );
    }

    #[test]
    fn a_batch_is_a_json_array_of_its_messages_oldest_first() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let item = |id: &str, payload: Option<&str>| FifoItem {
            delivery_id: format!("msgep_{id}"),
            scheduled_attempts: 0,
            total_attempts: 0,
            message: hookd_core::model::Message {
                id: id.to_string(),
                app_id: "app_1".into(),
                event_id: Some(format!("evt-{id}")),
                event_type: "invoice.paid".into(),
                channels: None,
                payload: payload.map(str::to_string),
                created_at: at,
                expires_at: at,
            },
        };
        let body = batch_body(&[item("msg_1", Some(r#"{"a": 1}"#)), item("msg_2", None)]);
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([
                {"id": "msg_1", "eventType": "invoice.paid", "payload": {"a": 1}, "timestamp": crate::clock::ts(&at), "eventId": "evt-msg_1"},
                {"id": "msg_2", "eventType": "invoice.paid", "payload": null, "timestamp": crate::clock::ts(&at), "eventId": "evt-msg_2"}
            ])
        );
    }
}
