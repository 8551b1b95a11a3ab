//! Turning a send result into an attempt record, and writing records in batches.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hookd_core::id::IdKind;
use hookd_core::model::{Attempt, Endpoint, Message, MessageStatus, TriggerType};
use hookd_core::retry::RetryPolicy;
use hookd_store::{AttemptRecord, ClaimedDelivery, QueueStore, StoreError};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
        lease_token: d.lease_token,
        row: d.row,
        events: Vec::new(),
    }
}

/// Whether the recorder is alive and keeping up, for `/api/v1/health`.
#[derive(Debug, Default)]
pub struct RecorderHealth {
    /// Unix milliseconds when the batch being written began; 0 while idle.
    busy_since_ms: std::sync::atomic::AtomicI64,
    /// Set when the writer task has ended (it only ends at shutdown).
    ended: std::sync::atomic::AtomicBool,
}

/// A batch still being written after this long means the recorder is stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

impl RecorderHealth {
    /// `Err(reason)` when the recorder has stopped, or has been writing one batch for longer
    /// than [`STUCK_AFTER`] (the database is refusing or hanging).
    pub fn check(&self, now_ms: i64) -> Result<(), &'static str> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.ended.load(Relaxed) {
            return Err("the attempt recorder has stopped");
        }
        let since = self.busy_since_ms.load(Relaxed);
        if since != 0 && now_ms - since > STUCK_AFTER.as_millis() as i64 {
            return Err("the attempt recorder has been unable to write for over 30 s");
        }
        Ok(())
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
    /// Once `give_up` fires (the shutdown's grace period is over) a batch the database will not
    /// take is tried once more, briefly, and then left: its deliveries keep their leases and
    /// are sent again after them, so nothing is lost, and the shutdown is never held up.
    pub(super) fn start(
        store: Arc<dyn QueueStore>,
        recorded: watch::Sender<u64>,
        give_up: CancellationToken,
        health: Arc<RecorderHealth>,
    ) -> (Recorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * BATCH);
        let task = tokio::spawn(async move {
            write_loop(store, rx, recorded, give_up, &health).await;
            health.ended.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        (Recorder { tx }, task)
    }

    /// Queues a record, waiting only for room in the recorder's bounded queue. The record is
    /// then the recorder's to keep in memory; the caller awaits [`Committed::committed`] so it
    /// can keep the delivery marked in flight until the commit (a poll in between must not
    /// send it again).
    pub(super) async fn queue(&self, record: AttemptRecord) -> Committed {
        let (done, written) = oneshot::channel();
        let queued = match self.tx.try_send((record, done)) {
            Ok(()) => Ok(()),
            // Full: wait for room. Boxed, because the wait holds the record twice over, and
            // inline that state would be part of every send task's future from its spawn on,
            // the tasks still waiting for a slot included.
            Err(mpsc::error::TrySendError::Full(queued)) => Box::pin(self.tx.send(queued)).await.map_err(drop),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        };
        if queued.is_err() {
            tracing::error!("attempt recorder stopped; the delivery will be retried after its lease");
            return Committed(None);
        }
        Committed(Some(written))
    }
}

/// A queued record's commit, to wait for.
pub(super) struct Committed(Option<oneshot::Receiver<()>>);

impl Committed {
    /// Returns once the record is committed (or the recorder gave up on it).
    pub(super) async fn committed(self) {
        if let Some(written) = self.0 {
            let _ = written.await;
        }
    }
}

/// The longest wait between two tries of a batch the database did not take: short, so that
/// attempts are recorded (and health turns green) within a second of the database's return.
const RETRY_AT_MOST: Duration = Duration::from_secs(1);

/// How long one store call may take once the recorder is giving up (after the shutdown grace).
const LAST_TRY: Duration = Duration::from_secs(3);

async fn write_loop(
    store: Arc<dyn QueueStore>,
    mut rx: mpsc::Receiver<Queued>,
    recorded: watch::Sender<u64>,
    give_up: CancellationToken,
    health: &RecorderHealth,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut queued = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut queued, BATCH).await > 0 {
        let (batch, waiters): (Vec<AttemptRecord>, Vec<oneshot::Sender<()>>) = queued.drain(..).unzip();
        health.busy_since_ms.store(unix_ms(), Relaxed);
        let written = write_isolating(store.as_ref(), batch, &give_up).await;
        health.busy_since_ms.store(0, Relaxed);
        recorded.send_modify(|n| *n += written);
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }
}

/// Writes a batch; returns how many records were stored.
///
/// A database that cannot be reached (`Unavailable`) is waited for with a bounded backoff: the
/// results are kept, not dropped. Any other refusal is about the data, so the batch is split in
/// halves until the refused record is alone; that record is stored once more with its response
/// replaced by a note saying why, and if even that is refused it is left (logged) and its
/// delivery is sent again after the lease. One bad record never holds up the others.
async fn write_isolating<S: RecordSink + ?Sized>(
    sink: &S,
    batch: Vec<AttemptRecord>,
    give_up: &CancellationToken,
) -> u64 {
    let mut written = 0;
    // Shared with the store, which may write on a thread of its own: a try, and any retry,
    // hands it the same records without copying them.
    let mut pending: Vec<Arc<[AttemptRecord]>> = vec![Arc::from(batch)];
    while let Some(part) = pending.pop() {
        let mut delay = Duration::from_millis(50);
        loop {
            match store_once(sink, &part, give_up).await {
                Ok(()) => {
                    written += part.len() as u64;
                    break;
                }
                Err(StoreError::Unavailable(e)) if !give_up.is_cancelled() => {
                    tracing::warn!(error = %e, records = part.len(), "recording attempts failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = give_up.cancelled() => {}
                    }
                    delay = (delay * 2).min(RETRY_AT_MOST);
                }
                Err(e @ StoreError::Unavailable(_)) => {
                    tracing::error!(error = %e, records = part.len(),
                        "cannot record attempts before shutdown; their deliveries are sent again after the lease");
                    break;
                }
                Err(e) if part.len() > 1 => {
                    tracing::warn!(error = %e, records = part.len(), "a record was refused; isolating it");
                    let (left, right) = part.split_at(part.len() / 2);
                    pending.push(Arc::from(right));
                    pending.push(Arc::from(left));
                    break;
                }
                Err(e) => {
                    let mut record = part.first().cloned().expect("one record");
                    tracing::error!(error = %e, attempt = %record.attempt.id, delivery = %record.delivery_id,
                        "the database refused an attempt record; storing it without the response");
                    let cause = std::error::Error::source(&e)
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default();
                    record.attempt.response = format!("(hookd could not store this response: {e}{cause})");
                    record.attempt.response_headers.clear();
                    let alone: Arc<[AttemptRecord]> = Arc::from([record]);
                    match store_once(sink, &alone, give_up).await {
                        Ok(()) => written += 1,
                        Err(e) => tracing::error!(error = %e, delivery = %alone[0].delivery_id,
                            "the attempt could not be recorded; the delivery is sent again after its lease"),
                    }
                    break;
                }
            }
        }
    }
    written
}

/// Where records go: the store, or a stand-in in tests.
#[async_trait::async_trait]
trait RecordSink: Send + Sync {
    async fn write(&self, records: Arc<[AttemptRecord]>) -> Result<(), StoreError>;
}

#[async_trait::async_trait]
impl RecordSink for dyn QueueStore {
    async fn write(&self, records: Arc<[AttemptRecord]>) -> Result<(), StoreError> {
        self.record_shared_attempts(records).await
    }
}

/// One store call, bounded in time once the recorder is giving up.
async fn store_once<S: RecordSink + ?Sized>(
    sink: &S,
    records: &Arc<[AttemptRecord]>,
    give_up: &CancellationToken,
) -> Result<(), StoreError> {
    if !give_up.is_cancelled() {
        return sink.write(records.clone()).await;
    }
    match tokio::time::timeout(LAST_TRY, sink.write(records.clone())).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable("the last try timed out".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A send task queues its record from its own future, which every delivery in memory
    /// holds from its spawn on, the ones still waiting for a slot included. So queueing holds
    /// little beyond the record, and waits for room in the queue only in a box (inline, that
    /// wait made queueing a 304-byte record hold 1,104 bytes).
    #[test]
    fn queueing_a_record_holds_little_beyond_the_record() {
        let queue = crate::testing::future_size(|(r, record): (&'static Recorder, AttemptRecord)| r.queue(record));
        let record = std::mem::size_of::<AttemptRecord>();
        assert!(
            queue <= 3 * record,
            "queueing a {record}-byte record holds {queue} bytes"
        );
    }

    fn record(response: &str) -> AttemptRecord {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        AttemptRecord {
            delivery_id: format!("msgep_{response}"),
            attempt: Attempt {
                id: format!("atmpt_{response}"),
                msg_id: "msg_1".into(),
                endpoint_id: "ep_1".into(),
                url: "http://127.0.0.1:1/".into(),
                response: response.into(),
                response_status_code: 200,
                response_duration_ms: 1,
                status: MessageStatus::Success,
                trigger_type: TriggerType::Scheduled,
                attempt_number: 1,
                request_headers: Default::default(),
                response_headers: vec![("x-poison".into(), response.into())],
                created_at: at,
            },
            delivery_status: MessageStatus::Success,
            next_attempt_at: None,
            scheduled_attempts: 1,
            park: false,
            lease_token: 7,
            row: None,
            events: Vec::new(),
        }
    }

    /// A store that refuses, as a data error, any batch holding a response that says "poison",
    /// or (when `down`) answers that it cannot be reached.
    #[derive(Default)]
    struct Picky {
        stored: Mutex<Vec<String>>,
        calls: Mutex<u32>,
        down: bool,
    }

    #[async_trait::async_trait]
    impl RecordSink for Picky {
        async fn write(&self, records: Arc<[AttemptRecord]>) -> Result<(), StoreError> {
            *self.calls.lock().unwrap() += 1;
            if self.down {
                return Err(StoreError::Unavailable("down".into()));
            }
            if records.iter().any(|r| r.attempt.response.contains("poison")) {
                return Err(StoreError::message("invalid byte sequence"));
            }
            let mut stored = self.stored.lock().unwrap();
            stored.extend(records.iter().map(|r| r.attempt.response.clone()));
            Ok(())
        }
    }

    #[test]
    fn the_recorder_is_unhealthy_when_stopped_or_stuck_on_one_batch() {
        use std::sync::atomic::Ordering::Relaxed;
        let health = RecorderHealth::default();
        assert_eq!(health.check(1_000_000), Ok(()), "idle");
        health.busy_since_ms.store(1_000_000, Relaxed);
        assert_eq!(health.check(1_000_000 + 29_000), Ok(()), "writing, within bounds");
        assert!(health.check(1_000_000 + 31_000).is_err(), "one batch for over 30 s");
        health.busy_since_ms.store(0, Relaxed);
        health.ended.store(true, Relaxed);
        assert_eq!(health.check(1_000_000), Err("the attempt recorder has stopped"));
    }

    #[tokio::test]
    async fn a_refused_record_is_isolated_and_stored_without_its_response() {
        let sink = Picky::default();
        let batch: Vec<AttemptRecord> = ["a", "b", "poison", "c", "d"].into_iter().map(record).collect();
        let written = write_isolating(&sink, batch, &CancellationToken::new()).await;
        assert_eq!(written, 5, "every record is stored, the refused one with a note");
        let stored = sink.stored.into_inner().unwrap();
        let (notes, clean): (Vec<String>, Vec<String>) = stored.into_iter().partition(|r| r.starts_with('('));
        assert_eq!(clean, ["a", "b", "c", "d"], "the others are stored as they were");
        assert_eq!(
            notes,
            ["(hookd could not store this response: storage failure: invalid byte sequence)"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_database_is_retried_until_the_recorder_gives_up() {
        let sink = Picky {
            down: true,
            ..Picky::default()
        };
        let give_up = CancellationToken::new();
        let stop = give_up.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            stop.cancel();
        });
        let written = write_isolating(&sink, vec![record("a")], &give_up).await;
        assert_eq!(written, 0, "nothing was stored, and the call returned");
        let calls = *sink.calls.lock().unwrap();
        assert!(calls > 5, "retried while the shutdown grace lasted: {calls}");
        assert!(give_up.is_cancelled());
    }
}
