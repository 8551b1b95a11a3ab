//! Group commit for published messages.
//!
//! Every `create_message` queues its message and deliveries here. A task takes the first
//! waiting job and every job queued behind it (up to [`MAX_BATCH`]), and writes the group in
//! one statement (messages, deliveries, lanes and a wake-up; see [`WRITE_GROUP`]) however
//! many messages it holds; only after that commit is each caller answered. One group commits at a
//! time, and the next one gathers while it waits for the server's fsync: under load the cost
//! of a commit is shared by a group, and a lone message still goes straight through. One, not
//! more: on a 2-core machine shared with PostgreSQL, one group in flight delivered as much as
//! two with one node (with less CPU per message), and 7–13 % more with two nodes, where two
//! groups per node doubled the commits (see docs/performance.md).
//!
//! A group holds independent requests, so one request's failure must not become another's:
//! when the group's transaction fails for any reason other than the database being
//! unavailable (a duplicate event id, say), each of its messages is written again on its own
//! and answered with its own outcome. When the database is unavailable, every caller gets
//! `Unavailable` (503) and nothing of the group was committed.
//!
//! The queue is bounded in total ([`QUEUE_CAPACITY`]) and per application ([`PER_APP`]).
//! A request's deadline still applies while its job waits: the job is queued under the
//! request's write gate ([`hookd_store::gate::queue_write`]) and skipped if the gate closed
//! before its group started, or if the caller is gone.

use hookd_core::model::{Message, MessageStatus};
use hookd_store::gate::QueuedWrite;
use hookd_store::share::AppShares;
use hookd_store::{NewDelivery, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

use crate::pool::Pool;
use crate::rows::micros;
use crate::{map_err, WORK_CHANNEL};

/// Most messages in one group (one statement).
pub(crate) const MAX_BATCH: usize = 256;
/// Most messages waiting for a group. Beyond it a publish is refused at once as
/// `Unavailable` (503 with `Retry-After`) instead of queueing without limit.
pub(crate) const QUEUE_CAPACITY: usize = 16 * MAX_BATCH;
/// Most of them from one application: when the database slows down, one tenant's burst
/// cannot take the whole queue; its publishes beyond this are refused (503) while other
/// tenants' still queue.
pub(crate) const PER_APP: usize = QUEUE_CAPACITY / 4;

struct Job {
    message: Message,
    deliveries: Vec<NewDelivery>,
    queued: QueuedWrite,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The handle `create_message` queues on; the task stops when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Ingest {
    jobs: mpsc::Sender<Job>,
    /// Publishes waiting or being written, per application.
    shares: AppShares,
}

impl Ingest {
    /// Starts the gathering task on the current runtime.
    pub(crate) fn start(pool: Pool) -> Ingest {
        let (jobs, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(gather(pool, rx));
        Ingest {
            jobs,
            shares: AppShares::new(PER_APP, QUEUE_CAPACITY),
        }
    }

    /// Stores `message` and its deliveries in the next group; returns once that group
    /// committed (or this message, written alone after the group failed, did).
    pub(crate) async fn create(&self, message: &Message, deliveries: &[NewDelivery]) -> StoreResult<()> {
        let _place = self.shares.publish_place(&message.app_id)?;
        let queued = hookd_store::gate::queue_write()?;
        let (done, answer) = oneshot::channel();
        let job = Job {
            message: message.clone(),
            deliveries: deliveries.to_vec(),
            queued,
            done,
        };
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::Unavailable("too many messages are waiting to be stored".into())
            }
            mpsc::error::TrySendError::Closed(_) => StoreError::Unavailable("the message writer has stopped".into()),
        })?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the message writer dropped a request".into()))?
    }
}

/// Takes groups off the queue and commits them one at a time.
async fn gather(pool: Pool, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // While it commits, the queue keeps filling: the wait forms the next group. A task of
        // its own, so a panic in one group's commit fails only that group's callers.
        let pool = pool.clone();
        let _ = tokio::spawn(async move { commit(&pool, group).await }).await;
    }
}

/// Writes one group and answers its callers.
async fn commit(pool: &Pool, group: Vec<Job>) {
    // A caller that is gone was answered 503 by its deadline; one whose gate closed while it
    // waited will be. Neither may be committed on its behalf.
    let mut jobs = Vec::with_capacity(group.len());
    for job in group {
        if job.done.is_closed() {
            continue;
        }
        match job.queued.start() {
            Ok(()) => jobs.push(job),
            Err(e) => {
                let _ = job.done.send(Err(e));
            }
        }
    }
    if jobs.is_empty() {
        return;
    }
    let parts: Vec<(&Message, &[NewDelivery])> = jobs.iter().map(|j| (&j.message, j.deliveries.as_slice())).collect();
    match write(pool, &parts).await {
        Ok(()) => {
            for job in jobs {
                let _ = job.done.send(Ok(()));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let _ = jobs.remove(0).done.send(Err(e));
        }
        Err(StoreError::Unavailable(cause)) => {
            // Nothing of the group was committed: every caller hears why (503, or 507 when
            // the database has no room left).
            let full = cause.downcast_ref::<hookd_store::StorageFull>().map(|f| f.0.clone());
            let cause = cause.to_string();
            for job in jobs {
                let answer = match &full {
                    Some(why) => StoreError::storage_full(why.clone()),
                    None => StoreError::Unavailable(cause.clone().into()),
                };
                let _ = job.done.send(Err(answer));
            }
        }
        Err(_) => {
            // One message broke the group (a duplicate event id): each on its own, so only
            // that one fails.
            for job in jobs {
                let outcome = write(pool, &[(&job.message, job.deliveries.as_slice())]).await;
                let _ = job.done.send(outcome);
            }
        }
    }
}

/// A group's messages, deliveries, FIFO lanes and wake-up, written by one statement: a call of
/// `hookd_write_group` (migration 12).
///
/// Outside a transaction PostgreSQL commits each statement on its own, all of it or none, so
/// one call is the group's transaction in one round trip, where `BEGIN`, a statement per table
/// and `COMMIT` took four or five. A part whose arrays are empty writes nothing, so one
/// prepared statement serves every group. The function's inserts read no table, so it keeps
/// their plans for the connection's life; planned at every call, as this connection plans its
/// statements, they cost a copy of every bound array (docs/performance.md).
const WRITE_GROUP: &str = "SELECT hookd_write_group($1::text[], $2::text[], $3::text[], $4::text[], \
     $5::text[]::jsonb[], $6::text[], $7::bigint[], $8::bigint[], $9::smallint, $10::text[], $11::text[], \
     $12::text[], $13::text[], $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::int[], \
     $19::text[], $20::int[], $21::text[], $22::text, $23::boolean)";

/// Writes `parts` (see [`WRITE_GROUP`]).
async fn write(pool: &Pool, parts: &[(&Message, &[NewDelivery])]) -> StoreResult<()> {
    let messages = parts.iter().map(|(m, _)| *m);
    let text = |f: fn(&Message) -> Option<&String>| messages.clone().map(f).map(|s| s.cloned()).collect::<Vec<_>>();
    let mut channels = Vec::with_capacity(parts.len());
    for m in messages.clone() {
        channels.push(match &m.channels {
            Some(list) => Some(serde_json::to_string(list).map_err(StoreError::internal)?),
            None => None,
        });
    }

    let deliveries: Vec<&NewDelivery> = parts.iter().flat_map(|(_, d)| d.iter()).collect();
    let col = |f: fn(&NewDelivery) -> &String| deliveries.iter().map(|d| f(d).clone()).collect::<Vec<String>>();
    // Created leased: due again when that lease ends, like a claimed delivery. A FIFO delivery
    // is never due for the claim: its lane sends it.
    let due: Vec<Option<i64>> = deliveries
        .iter()
        .map(|d| d.lane.is_none().then(|| micros(d.leased_until.unwrap_or(d.due_at))))
        .collect();
    let lease: Vec<i64> = deliveries
        .iter()
        .map(|d| d.leased_until.filter(|_| d.lane.is_none()).map(micros).unwrap_or(0))
        .collect();
    // Each delivery is created when its message is.
    let created: Vec<i64> = parts
        .iter()
        .flat_map(|(m, d)| std::iter::repeat_n(micros(m.created_at), d.len()))
        .collect();
    // Each lane's row exists from its first delivery on (never deleted while its destination
    // exists, so no publish can race a deletion).
    let fifo: Vec<&&NewDelivery> = deliveries.iter().filter(|d| d.lane.is_some()).collect();
    // Deliveries this node did not take itself are due now for any node: wake them.
    let wake = deliveries.iter().any(|d| d.leased_until.is_none());

    sqlx::query(WRITE_GROUP)
        .bind(text(|m| Some(&m.id)))
        .bind(text(|m| Some(&m.app_id)))
        .bind(text(|m| m.event_id.as_ref()))
        .bind(text(|m| Some(&m.event_type)))
        .bind(channels)
        .bind(text(|m| m.payload.as_ref()))
        .bind(messages.clone().map(|m| micros(m.created_at)).collect::<Vec<_>>())
        .bind(messages.map(|m| micros(m.expires_at)).collect::<Vec<_>>())
        .bind(MessageStatus::Pending.code() as i16)
        .bind(col(|d| &d.id))
        .bind(col(|d| &d.msg_id))
        .bind(col(|d| &d.endpoint_id))
        .bind(col(|d| &d.app_id))
        .bind(due)
        .bind(lease)
        .bind(deliveries.iter().map(|d| d.lease_token).collect::<Vec<i64>>())
        .bind(created)
        .bind(deliveries.iter().map(|d| d.lane).collect::<Vec<Option<i32>>>())
        .bind(fifo.iter().map(|d| d.endpoint_id.clone()).collect::<Vec<_>>())
        .bind(fifo.iter().map(|d| d.lane.unwrap_or_default()).collect::<Vec<_>>())
        .bind(fifo.iter().map(|d| d.app_id.clone()).collect::<Vec<_>>())
        .bind(WORK_CHANNEL)
        .bind(wake)
        .execute(pool.write()?)
        .await
        .map_err(map_err)?;
    Ok(())
}
