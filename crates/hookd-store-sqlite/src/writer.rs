//! The group-commit writer thread.
//!
//! Jobs queue on a channel. The thread takes the first waiting job, opens a transaction, runs
//! it and every job queued behind it (up to [`MAX_BATCH`]), each in its own savepoint, commits
//! once, and only then answers every caller. While one commit is being flushed to disk the next
//! batch gathers, so throughput grows with load instead of being bounded by fsyncs.

use std::sync::mpsc;

use hookd_store::gate::QueuedWrite;
use hookd_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::oneshot;

/// Most jobs sharing one transaction (bounds the latency of the first caller in a batch).
pub const MAX_BATCH: usize = 1024;
/// Most jobs waiting for the writer. Beyond it a write is refused at once as `Unavailable`
/// (the API answers 503 with `Retry-After`) instead of queueing without limit.
pub const QUEUE_CAPACITY: usize = 16 * MAX_BATCH;

/// Why a commit failed, and whether it was for want of room (a full disk).
struct CommitFailed {
    text: String,
    full: bool,
}

type Finish = Box<dyn FnOnce(Option<&CommitFailed>) + Send>;
/// A job gets the connection inside the open transaction, or `None` when no transaction could
/// be opened (it then fails without running).
type Job = Box<dyn FnOnce(Option<&Connection>) -> Finish + Send>;

/// Handle to the writer thread; dropping every handle stops the thread.
pub struct Writer {
    jobs: mpsc::SyncSender<Job>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub fn start(conn: Connection) -> Writer {
        Writer::with_capacity(conn, QUEUE_CAPACITY)
    }

    /// Starts the thread with room for `capacity` waiting jobs.
    pub fn with_capacity(conn: Connection, capacity: usize) -> Writer {
        let (jobs, rx) = mpsc::sync_channel::<Job>(capacity);
        std::thread::Builder::new()
            .name("hookd-sqlite-writer".into())
            .spawn(move || run_loop(conn, rx))
            .expect("spawn SQLite writer thread");
        Writer { jobs }
    }

    /// Runs `f` in the next transaction and returns its result once that transaction commits.
    pub async fn run<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        self.run_queued(None, f).await
    }

    /// [`Writer::run`] for a request's write, queued under its gate: skipped, without running,
    /// when the request's deadline closed the gate before the writer reached it.
    pub async fn run_queued<R, F>(&self, queued: Option<QueuedWrite>, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<R>>();
        let job: Job = Box::new(move |conn| {
            // The caller is gone (its request timed out and was answered 503): do not commit
            // on its behalf what it already reported as not done.
            if tx.is_closed() {
                return Box::new(|_: Option<&CommitFailed>| {});
            }
            if let Some(Err(e)) = queued.as_ref().map(QueuedWrite::start) {
                let _ = tx.send(Err(e));
                return Box::new(|_: Option<&CommitFailed>| {});
            }
            let result = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(StoreError::Unavailable("could not open a SQLite transaction".into())),
            };
            Box::new(move |commit_error: Option<&CommitFailed>| {
                let answer = match (commit_error, result) {
                    (Some(e), Ok(_)) if e.full => Err(StoreError::storage_full(format!("commit failed: {}", e.text))),
                    (Some(e), Ok(_)) => Err(StoreError::Unavailable(format!("commit failed: {}", e.text).into())),
                    (_, r) => r,
                };
                let _ = tx.send(answer);
            })
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => StoreError::Unavailable("the SQLite writer's queue is full".into()),
            mpsc::TrySendError::Disconnected(_) => StoreError::Unavailable("the SQLite writer has stopped".into()),
        })?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the SQLite writer dropped a request".into()))?
    }
}

fn in_savepoint<R>(conn: &Connection, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
    conn.execute_batch("SAVEPOINT job").map_err(crate::map_err)?;
    let result = f(conn);
    let end = if result.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    conn.execute_batch(end).map_err(crate::map_err)?;
    result
}

fn run_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut finishers = Vec::with_capacity(16);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "SQLite BEGIN failed");
            first(None)(None);
            continue;
        }
        finishers.push(first(Some(&conn)));
        while finishers.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => finishers.push(job(Some(&conn))),
                Err(_) => break,
            }
        }
        let commit = conn.execute_batch("COMMIT");
        let error = commit.err().map(|e| {
            tracing::error!(error = %e, "SQLite commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            let full = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
            CommitFailed {
                text: e.to_string(),
                full,
            }
        });
        for finish in finishers {
            finish(error.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn writer(capacity: usize) -> Writer {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        Writer::with_capacity(conn, capacity)
    }

    /// Keeps the writer thread busy for `ms`.
    async fn hold(w: &Writer, ms: u64) {
        w.run(move |_| {
            std::thread::sleep(Duration::from_millis(ms));
            Ok(())
        })
        .await
        .unwrap();
    }

    /// Starts a job that keeps the writer thread busy for `ms`, and returns once the thread is
    /// inside it (so whatever is submitted next waits behind it).
    async fn occupy(w: &std::sync::Arc<Writer>, ms: u64) -> tokio::task::JoinHandle<()> {
        let (started, inside) = std::sync::mpsc::channel();
        let w = w.clone();
        let busy = tokio::spawn(async move {
            w.run(move |_| {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(ms));
                Ok(())
            })
            .await
            .unwrap();
        });
        tokio::task::spawn_blocking(move || inside.recv().unwrap())
            .await
            .unwrap();
        busy
    }

    /// Polls `f` once; `true` while it is still pending.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> bool {
        let mut f = Some(f);
        std::future::poll_fn(move |cx| {
            let pending = std::pin::Pin::new(f.take().unwrap()).poll(cx).is_pending();
            std::task::Poll::Ready(pending)
        })
        .await
    }

    async fn count(w: &Writer) -> i64 {
        w.run(|c| {
            c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .map_err(crate::map_err)
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_whose_caller_gave_up_is_not_committed() {
        let w = std::sync::Arc::new(writer(16));
        let busy = occupy(&w, 300).await;
        // Queued behind the busy job, then abandoned (a request timeout drops the future).
        let insert = w.run(|c| {
            c.execute("INSERT INTO t VALUES (1)", [])
                .map(|_| ())
                .map_err(crate::map_err)
        });
        assert!(tokio::time::timeout(Duration::from_millis(50), insert).await.is_err());
        busy.await.unwrap();
        assert_eq!(count(&w).await, 0, "the abandoned insert never ran");
        w.run(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])
                .map(|_| ())
                .map_err(crate::map_err)
        })
        .await
        .unwrap();
        assert_eq!(count(&w).await, 1, "a caller that waits is served as before");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_write_whose_deadline_passed_is_skipped_and_a_started_one_is_awaited() {
        use hookd_store::gate::{queue_write, WriteGate};
        let w = std::sync::Arc::new(writer(16));
        let insert = |n: i64| {
            move |c: &Connection| {
                c.execute("INSERT INTO t VALUES (?1)", [n])
                    .map(|_| ())
                    .map_err(crate::map_err)
            }
        };
        // Queued behind a slow commit; the request's deadline closes its gate meanwhile (the
        // request is answered 503 at once, while its future still waits).
        let busy = occupy(&w, 300).await;
        let gate = WriteGate::new();
        let queued = gate.clone().scope(async { queue_write() }).await.unwrap();
        let w2 = w.clone();
        let waiting = tokio::spawn(async move { w2.run_queued(Some(queued), insert(1)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(gate.close(), "a write still in the queue has not begun");
        busy.await.unwrap();
        let skipped = waiting.await.unwrap();
        assert!(matches!(skipped, Err(StoreError::Unavailable(_))), "{skipped:?}");
        assert_eq!(count(&w).await, 0, "the write whose deadline passed never ran");

        // Reached before the deadline: it runs, and the gate can no longer close.
        let gate = WriteGate::new();
        let queued = gate.clone().scope(async { queue_write() }).await.unwrap();
        w.run_queued(Some(queued), insert(2)).await.unwrap();
        assert!(!gate.close());
        assert_eq!(count(&w).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_instead_of_growing() {
        let w = std::sync::Arc::new(writer(2));
        let busy = occupy(&w, 500).await;
        // Two jobs fill the queue behind it (each is queued at its first poll).
        let mut queued = Vec::new();
        for _ in 0..2 {
            let w2 = w.clone();
            let mut job = Box::pin(async move { hold(&w2, 0).await });
            assert!(futures_poll_once(&mut job).await, "queued, not done");
            queued.push(tokio::spawn(job));
        }
        let refused = w.run(|_| Ok(())).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
        busy.await.unwrap();
        for q in queued {
            q.await.unwrap();
        }
        assert!(w.run(|_| Ok(())).await.is_ok(), "room again once drained");
    }
}
