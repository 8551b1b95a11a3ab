//! How a batch of attempt records changes the store, worked out once for every backend
//! ([`QueueStore::record_attempts`](crate::QueueStore::record_attempts)).
//!
//! The algorithm: read each delivery's current lease token; drop the records made under a
//! lease that was taken over ([`fenced`](crate::fenced)); then, atomically, store the kept
//! records' outbox events and attempts, update each delivery once from its last kept record
//! (counting every kept attempt), and update each endpoint's failing run once from the fold of
//! its attempts. [`RecordPlan`] is everything after the read, as data; a backend only writes
//! it, row by row in a transaction (SQLite, whose writes are local) or as arrays in one
//! statement (PostgreSQL, which makes the plan first assuming every lease still holds and checks
//! that inside the same statement). Folding first makes the result the one applying the records one by
//! one, in order, would give, whichever way it is written.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hookd_core::model::{Attempt, MessageStatus, TriggerType};

use crate::{fenced, storable_attempt, AttemptRecord, OutboxEvent};

/// How an endpoint's failing run (`failing_since`, read by auto-disable) changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// A success came last: healthy (`failing_since` cleared).
    Clear,
    /// A scheduled attempt exhausted its delivery with no success before it in the batch:
    /// failing since then, unless the endpoint already was.
    SetIfUnset(DateTime<Utc>),
    /// An exhaustion followed a success in the batch: failing since then, whatever was stored.
    Set(DateTime<Utc>),
}

impl Health {
    /// The change as a selector for a SQL `CASE` and its time in microseconds: 0 clears,
    /// 1 sets unless already set, 2 sets.
    pub fn mode(self) -> (i16, Option<i64>) {
        match self {
            Health::Clear => (0, None),
            Health::SetIfUnset(at) => (1, Some(crate::sql::micros(at))),
            Health::Set(at) => (2, Some(crate::sql::micros(at))),
        }
    }
}

/// One delivery's change: its last kept record decides its state; every kept record counts
/// as an attempt (a delivery may appear more than once in a batch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryUpdate<'a> {
    /// The last kept record of the delivery.
    pub last: &'a AttemptRecord,
    /// How many kept records the delivery has.
    pub attempts: i64,
}

/// What a batch writes, in the order it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPlan<'a> {
    /// How many records fencing dropped.
    pub dropped: usize,
    /// The kept records' operational events, in record order.
    pub events: Vec<&'a OutboxEvent>,
    /// The kept records' attempts (made storable), with their delivery ids, in record order.
    pub attempts: Vec<(&'a str, Cow<'a, Attempt>)>,
    /// Each delivery's change, by delivery id (the order rows are locked in).
    pub deliveries: BTreeMap<&'a str, DeliveryUpdate<'a>>,
    /// Each endpoint's failing-run change, by endpoint id; endpoints the batch says nothing
    /// about (only failed retries still scheduled) are absent.
    pub health: BTreeMap<&'a str, Health>,
}

impl<'a> RecordPlan<'a> {
    /// The plan for `outcomes`, given each delivery's current lease token (`current`;
    /// deliveries that are gone have none and their records are dropped).
    pub fn new(outcomes: &'a [AttemptRecord], current: impl Fn(&str) -> Option<i64>) -> RecordPlan<'a> {
        let kept = fenced(outcomes, current);
        let mut plan = RecordPlan {
            dropped: outcomes.len() - kept.len(),
            events: Vec::new(),
            attempts: Vec::with_capacity(kept.len()),
            deliveries: BTreeMap::new(),
            health: BTreeMap::new(),
        };
        for o in kept {
            plan.events.extend(o.events.iter());
            plan.attempts
                .push((o.delivery_id.as_str(), storable_attempt(&o.attempt)));
            plan.deliveries
                .entry(&o.delivery_id)
                .and_modify(|u| {
                    u.last = o;
                    u.attempts += 1;
                })
                .or_insert(DeliveryUpdate { last: o, attempts: 1 });
            let a = &o.attempt;
            if a.status == MessageStatus::Success {
                plan.health.insert(&a.endpoint_id, Health::Clear);
            } else if o.delivery_status == MessageStatus::Fail && a.trigger_type == TriggerType::Scheduled {
                let next = match plan.health.get(a.endpoint_id.as_str()) {
                    None => Health::SetIfUnset(a.created_at),
                    Some(Health::Clear) => Health::Set(a.created_at),
                    Some(&kept) => kept,
                };
                plan.health.insert(&a.endpoint_id, next);
            }
        }
        plan
    }

    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;
    use hookd_core::model::MessageStatus::{Fail, Sending, Success};

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).single().unwrap()
    }

    fn record(
        delivery: &str,
        endpoint: &str,
        secs: i64,
        code: i64,
        status: MessageStatus,
        token: i64,
    ) -> AttemptRecord {
        let ok = (200..300).contains(&code);
        AttemptRecord {
            delivery_id: delivery.into(),
            attempt: Attempt {
                id: format!("atmpt_{delivery}_{secs}"),
                msg_id: format!("msg_{delivery}"),
                endpoint_id: endpoint.into(),
                url: "http://127.0.0.1:9/hook".into(),
                response: "r\0sp".into(),
                response_status_code: code,
                response_duration_ms: 1,
                status: if ok { Success } else { Fail },
                trigger_type: TriggerType::Scheduled,
                attempt_number: 1,
                request_headers: Default::default(),
                response_headers: Vec::new(),
                created_at: at(secs),
            },
            delivery_status: status,
            next_attempt_at: None,
            scheduled_attempts: 1,
            park: false,
            lease_token: token,
            row: None,
            events: vec![OutboxEvent {
                id: format!("evt_{delivery}_{secs}"),
                kind: "message.attempt.exhausted".into(),
                app_id: "app_1".into(),
                data: serde_json::json!({}),
                created_at: at(secs),
            }],
        }
    }

    /// The lease tokens of `current`, as a store reads them.
    fn tokens(current: &HashMap<String, i64>) -> impl Fn(&str) -> Option<i64> + '_ {
        |id| current.get(id).copied()
    }

    #[test]
    fn fenced_out_and_orphaned_records_write_nothing() {
        let batch = [
            record("d1", "e1", 1, 500, Fail, 7),
            record("d2", "e1", 2, 500, Fail, 8),
            record("gone", "e1", 3, 500, Fail, 0),
        ];
        let current = HashMap::from([("d1".to_string(), 7), ("d2".to_string(), 9)]);
        let plan = RecordPlan::new(&batch, tokens(&current));
        assert_eq!(plan.dropped, 2);
        assert_eq!(plan.attempts.len(), 1);
        assert_eq!(plan.attempts[0].0, "d1");
        assert_eq!(plan.attempts[0].1.response, "r\\x00sp", "stored without NUL");
        assert_eq!(plan.events.len(), 1);
        assert_eq!(plan.events[0].id, "evt_d1_1");
        assert_eq!(plan.deliveries.keys().copied().collect::<Vec<_>>(), ["d1"]);
        assert!(!plan.is_empty());
        assert!(RecordPlan::new(&batch[1..], tokens(&current)).is_empty());
    }

    #[test]
    fn a_delivery_takes_its_last_record_and_counts_every_attempt() {
        let batch = [
            record("d1", "e1", 1, 500, Sending, 0),
            record("d2", "e2", 2, 200, Success, 0),
            record("d1", "e1", 3, 200, Success, 0),
        ];
        let current = HashMap::from([("d1".to_string(), 1), ("d2".to_string(), 1)]);
        let plan = RecordPlan::new(&batch, tokens(&current));
        let d1 = plan.deliveries["d1"];
        assert_eq!((d1.attempts, d1.last.attempt.created_at), (2, at(3)));
        assert_eq!(plan.deliveries["d2"].attempts, 1);
        assert_eq!(plan.attempts.len(), 3, "every attempt is stored");
    }

    #[test]
    fn an_endpoints_failing_run_folds_in_record_order() {
        let current: HashMap<String, i64> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|d| (d.to_string(), 1))
            .collect();
        // e1: two exhaustions, the first starts the run if none is stored.
        // e2: a success, then an exhaustion: the run restarts then, whatever was stored.
        // e3: an exhaustion, then a success: healthy.
        // e4: a failed retry still scheduled says nothing.
        let batch = [
            record("a", "e1", 1, 500, Fail, 0),
            record("b", "e1", 2, 500, Fail, 0),
            record("c", "e2", 3, 204, Success, 0),
            record("d", "e2", 4, 0, Fail, 0),
            record("e", "e3", 5, 500, Fail, 0),
            record("f", "e3", 6, 200, Success, 0),
            record("a", "e4", 7, 500, Sending, 0),
        ];
        let plan = RecordPlan::new(&batch, tokens(&current));
        assert_eq!(plan.health["e1"], Health::SetIfUnset(at(1)));
        assert_eq!(plan.health["e2"], Health::Set(at(4)));
        assert_eq!(plan.health["e3"], Health::Clear);
        assert!(!plan.health.contains_key("e4"));

        let mut manual = record("a", "e5", 8, 500, Fail, 0);
        manual.attempt.trigger_type = TriggerType::Manual;
        let plan = RecordPlan::new(std::slice::from_ref(&manual), tokens(&current));
        assert!(plan.health.is_empty(), "a failed resend says nothing about health");
    }
}
