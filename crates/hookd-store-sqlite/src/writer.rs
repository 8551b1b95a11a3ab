//! The group-commit writer thread.
//!
//! Jobs queue on a channel. The thread takes the first waiting job, opens a transaction, runs
//! it and every job queued behind it (up to [`MAX_BATCH`]), each in its own savepoint, commits
//! once, and only then answers every caller. While one commit is being flushed to disk the next
//! batch gathers, so throughput grows with load instead of being bounded by fsyncs.

use std::sync::mpsc;

use hookd_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::oneshot;

/// Most jobs sharing one transaction (bounds the latency of the first caller in a batch).
pub const MAX_BATCH: usize = 1024;

type Finish = Box<dyn FnOnce(Option<&str>) + Send>;
/// A job gets the connection inside the open transaction, or `None` when no transaction could
/// be opened (it then fails without running).
type Job = Box<dyn FnOnce(Option<&Connection>) -> Finish + Send>;

/// Handle to the writer thread; dropping every handle stops the thread.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub fn start(conn: Connection) -> Writer {
        let (jobs, rx) = mpsc::channel::<Job>();
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
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(StoreError::Unavailable("could not open a SQLite transaction".into())),
            };
            Box::new(move |commit_error: Option<&str>| {
                let answer = match (commit_error, result) {
                    (Some(e), Ok(_)) => Err(StoreError::Unavailable(format!("commit failed: {e}").into())),
                    (_, r) => r,
                };
                let _ = tx.send(answer);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
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
            e.to_string()
        });
        for finish in finishers {
            finish(error.as_deref());
        }
    }
}
