//! Turning a send result into an attempt record, and writing records in batches.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hookd_core::id::IdKind;
use hookd_core::model::{Attempt, Endpoint, Message, MessageStatus, TriggerType};
use hookd_core::retry::RetryPolicy;
use hookd_store::{AttemptRecord, ClaimedDelivery, Store};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::send::SendResult;

/// Most records written in one store call.
const BATCH: usize = 512;

/// Applies the retry policy to one finished send.
pub(super) fn build<R: Rng + ?Sized>(
    d: &ClaimedDelivery,
    endpoint: &Endpoint,
    message: &Message,
    result: SendResult,
    started: DateTime<Utc>,
    policy: &RetryPolicy,
    rng: &mut R,
) -> AttemptRecord {
    let success = result.outcome.is_success();
    // `410 Gone`: the receiver says the endpoint no longer exists. The caller disables it; the
    // delivery is parked, to resume if the endpoint is ever enabled again.
    let gone = result.outcome.is_gone();
    let (status, next, scheduled) = match d.trigger {
        _ if gone => (
            MessageStatus::Fail,
            None,
            d.scheduled_attempts + i64::from(d.trigger == TriggerType::Scheduled),
        ),
        TriggerType::Manual => {
            let status = if success {
                MessageStatus::Success
            } else {
                MessageStatus::Fail
            };
            (status, None, d.scheduled_attempts)
        }
        TriggerType::Scheduled => {
            let made = d.scheduled_attempts + 1;
            match policy.next_delay(made as usize, &result.outcome, rng) {
                _ if success => (MessageStatus::Success, None, made),
                // The payload expired: there is nothing left to send, ever, so no retry.
                Some(_) if message.payload.is_none() => (MessageStatus::Fail, None, made),
                Some(delay) => {
                    let at = started + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    (MessageStatus::Sending, Some(at), made)
                }
                None => (MessageStatus::Fail, None, made),
            }
        }
    };
    AttemptRecord {
        delivery_id: d.id.clone(),
        attempt: Attempt {
            id: IdKind::Attempt.generate(started, rng),
            msg_id: message.id.clone(),
            endpoint_id: endpoint.id.clone(),
            url: endpoint.url.clone(),
            response: result.response,
            response_status_code: result.status_code as i64,
            response_duration_ms: result.duration.as_millis() as i64,
            status: if success {
                MessageStatus::Success
            } else {
                MessageStatus::Fail
            },
            trigger_type: d.trigger,
            attempt_number: d.total_attempts + 1,
            request_headers: result.request_headers,
            response_headers: result.response_headers,
            created_at: started,
        },
        delivery_status: status,
        next_attempt_at: next,
        scheduled_attempts: scheduled,
        park: gone,
    }
}

/// Queue in front of the batch writer.
#[derive(Clone)]
pub(super) struct Recorder {
    tx: mpsc::Sender<Queued>,
}

/// A record and who to tell once it is committed.
type Queued = (AttemptRecord, oneshot::Sender<()>);

impl Recorder {
    /// Starts the writer task; it ends when every `Recorder` is dropped and the queue is drained.
    pub(super) fn start(store: Arc<dyn Store>, recorded: watch::Sender<u64>) -> (Recorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * BATCH);
        (Recorder { tx }, tokio::spawn(write_loop(store, rx, recorded)))
    }

    /// Queues a record and waits until it is committed, so the caller can keep the delivery
    /// marked in flight until then (a poll in between must not send it again).
    pub(super) async fn push(&self, record: AttemptRecord) {
        let (done, written) = oneshot::channel();
        if self.tx.send((record, done)).await.is_err() {
            tracing::error!("attempt recorder stopped; the delivery will be retried after its lease");
            return;
        }
        let _ = written.await;
    }
}

async fn write_loop(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Queued>, recorded: watch::Sender<u64>) {
    let mut queued = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut queued, BATCH).await > 0 {
        let (batch, waiters): (Vec<AttemptRecord>, Vec<oneshot::Sender<()>>) = queued.drain(..).unzip();
        let mut delay = Duration::from_millis(50);
        // A database outage must not drop results: keep trying (bounded backoff). If hookd
        // stops meanwhile, the leases expire and the deliveries are attempted again.
        while let Err(e) = store.record_attempts(&batch).await {
            tracing::warn!(error = %e, records = batch.len(), "recording attempts failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        recorded.send_modify(|n| *n += batch.len() as u64);
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }
}
