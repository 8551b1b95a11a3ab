//! The group-commit writer thread.
//!
//! Jobs queue on a channel. The thread opens a transaction, runs the jobs waiting (up to
//! [`MAX_BATCH`]), commits once, and only then answers every caller. While one commit is being
//! flushed to disk the next batch gathers, so throughput grows with load instead of being
//! bounded by fsyncs. API requests' writes go ahead of the delivery engine's bookkeeping, which
//! gets a bounded share of any transaction that holds one (see [`run_loop`]), so a publish waits
//! for one short transaction however much fan-out work is queued.
//!
//! One job's failure must not undo its neighbours' work, nor leave half of itself behind. A job
//! runs either in a savepoint of its own ([`Writer::run_queued`]), which a failure rolls back,
//! or, for a job that writes nothing when it fails ([`Isolation::None`]: its
//! first statement decides, and SQLite undoes a failed statement by itself), without one. A
//! savepoint makes SQLite keep a copy of every page the job touches, which is most of a small
//! job's cost. Should such a job fail after all having written something (an I/O error on its
//! second statement), the whole batch is rolled back and every caller in it answered
//! `Unavailable`, so nothing half-written is ever committed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use hookd_store::gate::QueuedWrite;
use hookd_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::checkpoint::Checkpointer;

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
/// be opened (it then fails without running). It returns how to answer its caller once the
/// batch is committed, and whether it left a partial write behind (the batch must then be
/// rolled back).
type Run = Box<dyn FnOnce(Option<&Connection>) -> (Finish, bool) + Send>;

/// A queued write and whom it serves.
struct Job {
    run: Run,
    /// An API request's write, which its caller is waiting on: taken ahead of the delivery
    /// engine's and background tasks' writes (see [`run_loop`]).
    request: bool,
}

/// How a job is kept apart from the others in its transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// In a savepoint of its own, rolled back when the job fails.
    Savepoint,
    /// Without a savepoint, for a job that changes nothing when it fails: one whose first
    /// statement is the only one that can fail for a reason of its own (a unique key taken),
    /// which SQLite then undoes by itself, or one that reads and checks all it needs before its
    /// first write and whose writes meet no constraint (a claim, a batch of attempt records).
    /// If it fails anyway after a statement changed rows, its whole batch is rolled back and
    /// every caller in it answered `Unavailable`.
    None,
}

/// Handle to the writer thread; dropping every handle stops the thread.
pub struct Writer {
    jobs: mpsc::SyncSender<Job>,
    /// Jobs queued and not yet started, on the channel or taken off it by the thread.
    waiting: Arc<AtomicUsize>,
    /// Most jobs that may wait.
    capacity: usize,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub fn start(conn: Connection) -> Writer {
        Writer::with_capacity(conn, QUEUE_CAPACITY)
    }

    /// Starts the thread with room for `capacity` waiting jobs.
    pub fn with_capacity(conn: Connection, capacity: usize) -> Writer {
        Writer::spawn(conn, capacity, None)
    }

    /// [`Writer::start`], telling `checkpoints` about every commit so that thread, not this
    /// one, copies the log back into the database.
    pub fn with_checkpointer(conn: Connection, checkpoints: Checkpointer) -> Writer {
        Writer::spawn(conn, QUEUE_CAPACITY, Some(checkpoints))
    }

    fn spawn(conn: Connection, capacity: usize, checkpoints: Option<Checkpointer>) -> Writer {
        let (jobs, rx) = mpsc::sync_channel::<Job>(capacity);
        let waiting = Arc::new(AtomicUsize::new(0));
        let queue = Waiting::new(waiting.clone());
        std::thread::Builder::new()
            .name("hookd-sqlite-writer".into())
            .spawn(move || run_loop(conn, rx, queue, checkpoints.as_ref()))
            .expect("spawn SQLite writer thread");
        Writer {
            jobs,
            waiting,
            capacity,
        }
    }

    /// Runs `f` in a coming transaction (an API request's ahead of the engine's, see
    /// [`run_loop`]) and returns its result once that transaction commits.
    pub async fn run<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        self.run_queued(None, Isolation::Savepoint, f).await
    }

    /// [`Writer::run`] for a request's write, queued under its gate (skipped, without running,
    /// when the request's deadline closed the gate before the writer reached it), kept apart
    /// from its neighbours as `isolation` says.
    pub async fn run_queued<R, F>(&self, queued: Option<QueuedWrite>, isolation: Isolation, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<R>>();
        let request = hookd_store::gate::in_request();
        let run: Run = Box::new(move |conn| {
            let nothing: Finish = Box::new(|_: Option<&CommitFailed>| {});
            // The caller is gone (its request timed out and was answered 503): do not commit
            // on its behalf what it already reported as not done.
            if tx.is_closed() {
                return (nothing, false);
            }
            if let Some(Err(e)) = queued.as_ref().map(QueuedWrite::start) {
                let _ = tx.send(Err(e));
                return (nothing, false);
            }
            let mut partial = false;
            let result = match (conn, isolation) {
                (Some(conn), Isolation::Savepoint) => in_savepoint(conn, f),
                (Some(conn), Isolation::None) => {
                    // Only completed statements count as changes: a failed one that SQLite
                    // undid adds nothing.
                    let before = conn.total_changes();
                    let result = f(conn);
                    partial = result.is_err() && conn.total_changes() != before;
                    result
                }
                (None, _) => Err(StoreError::Unavailable("could not open a SQLite transaction".into())),
            };
            // Some errors (a full disk, an I/O error) make SQLite roll back the whole
            // transaction: what ran before in the batch is gone, and what runs next must not
            // commit on its own.
            partial |= conn.is_some_and(Connection::is_autocommit);
            let finish: Finish = Box::new(move |commit_error: Option<&CommitFailed>| {
                let answer = match (commit_error, result) {
                    (Some(e), Ok(_)) if e.full => Err(StoreError::storage_full(format!("commit failed: {}", e.text))),
                    (Some(e), Ok(_)) => Err(StoreError::Unavailable(format!("commit failed: {}", e.text).into())),
                    (_, r) => r,
                };
                let _ = tx.send(answer);
            });
            (finish, partial)
        });
        let full = || StoreError::Unavailable("the SQLite writer's queue is full".into());
        // Counted here rather than by the channel's room alone: the thread takes jobs off the
        // channel to put requests first, and those still wait.
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(full());
        }
        self.jobs.try_send(Job { run, request }).map_err(|e| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            match e {
                mpsc::TrySendError::Full(_) => full(),
                mpsc::TrySendError::Disconnected(_) => StoreError::Unavailable("the SQLite writer has stopped".into()),
            }
        })?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the SQLite writer dropped a request".into()))?
    }
}

fn in_savepoint<R>(conn: &Connection, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
    run_cached(conn, "SAVEPOINT job").map_err(crate::map_err)?;
    let result = f(conn);
    if result.is_err() {
        run_cached(conn, "ROLLBACK TO job").map_err(crate::map_err)?;
    }
    run_cached(conn, "RELEASE job").map_err(crate::map_err)?;
    result
}

/// How long a transaction that holds a request's write may go on taking the engine's writes
/// (after at least one): past it, the rest wait for the next transaction, so a request's write
/// waits for one bounded transaction and not for all the bookkeeping queued before it.
const ENGINE_SHARE: std::time::Duration = std::time::Duration::from_millis(1);

/// Jobs taken off the channel, requests' apart from the rest. They still count as waiting
/// ([`Writer`]'s `waiting`) until they start, so the writer's capacity bounds them too.
struct Waiting {
    requests: VecDeque<Run>,
    engine: VecDeque<Run>,
    count: Arc<AtomicUsize>,
}

impl Waiting {
    fn new(count: Arc<AtomicUsize>) -> Waiting {
        Waiting {
            requests: VecDeque::new(),
            engine: VecDeque::new(),
            count,
        }
    }

    /// Moves what is ready on the channel here.
    fn take_ready(&mut self, rx: &mpsc::Receiver<Job>) {
        while let Ok(job) = rx.try_recv() {
            self.push(job);
        }
    }

    fn push(&mut self, job: Job) {
        if job.request {
            self.requests.push_back(job.run);
        } else {
            self.engine.push_back(job.run);
        }
    }

    fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.engine.is_empty()
    }

    /// The next job for a transaction that began at `began`, has room for `room` more jobs,
    /// has taken `engine_taken` engine jobs and holds a request's write if `for_request`. The
    /// last place of a transaction that has taken no engine job yet goes to one, so a flood of
    /// requests cannot hold the engine back either.
    fn next(&mut self, began: Instant, room: usize, engine_taken: usize, for_request: bool) -> Option<(Run, bool)> {
        let engine_owed = engine_taken == 0 && room == 1 && !self.engine.is_empty();
        // A request is popped only when it is the one to run: a popped job must run.
        let request = if engine_owed { None } else { self.requests.pop_front() };
        let next = match request {
            Some(run) => Some((run, true)),
            None if for_request && engine_taken > 0 && began.elapsed() >= ENGINE_SHARE => None,
            None => self.engine.pop_front().map(|run| (run, false)),
        };
        if next.is_some() {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        next
    }
}

/// The writer thread. Each transaction takes every request's write that is ready, then the
/// engine's (attempt records, claims, background tasks) in the order queued. Once it holds a
/// request's write it takes further engine writes only for [`ENGINE_SHARE`] (at least one, so
/// they always advance); the rest go in the next transaction. Writes of independent callers
/// commit in some order either way, and each caller awaits its own commit, so taking them out
/// of arrival order changes no outcome a caller could rely on.
fn run_loop(conn: Connection, rx: mpsc::Receiver<Job>, mut waiting: Waiting, checkpoints: Option<&Checkpointer>) {
    conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
    let watch = checkpoints.map(|c| c.watch(&conn));
    loop {
        if waiting.is_empty() {
            match rx.recv() {
                Ok(job) => waiting.push(job),
                Err(_) => return,
            }
        }
        waiting.take_ready(&rx);
        let began = Instant::now();
        let mut finishers = Vec::with_capacity(16);
        if let Err(e) = run_cached(&conn, "BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "SQLite BEGIN failed");
            if let Some((run, _)) = waiting.next(began, MAX_BATCH, 0, false) {
                run(None).0(None);
            }
            continue;
        }
        let (mut partial, mut engine_taken, mut for_request) = (false, 0, false);
        while finishers.len() < MAX_BATCH && !partial {
            let room = MAX_BATCH - finishers.len();
            let Some((run, request)) = waiting.next(began, room, engine_taken, for_request) else {
                break;
            };
            for_request |= request;
            engine_taken += usize::from(!request);
            let (finish, left_partial) = run(Some(&conn));
            finishers.push(finish);
            partial = left_partial;
            // A request that arrived while this one ran joins this commit.
            waiting.take_ready(&rx);
        }
        let error = if partial {
            tracing::error!("a write failed part-way; its whole batch is rolled back");
            let _ = conn.execute_batch("ROLLBACK");
            Some(CommitFailed {
                text: "a write in the same batch failed part-way, so the batch was rolled back".into(),
                full: false,
            })
        } else {
            run_cached(&conn, "COMMIT").err().map(|e| {
                tracing::error!(error = %e, "SQLite commit failed");
                let _ = conn.execute_batch("ROLLBACK");
                let full = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
                CommitFailed {
                    text: e.to_string(),
                    full,
                }
            })
        };
        let committed = error.is_none();
        for finish in finishers {
            finish(error.as_ref());
        }
        // After the answers: a checkpoint the writer runs at the log's bound holds up only
        // the batches behind this one.
        if let Some(watch) = watch.as_ref().filter(|_| committed) {
            watch.committed();
        }
        // The thread's busy time, its fsyncs included: their sum over a span is the share of
        // it the single writer spent committing.
        metrics::histogram!(BATCH_SECONDS).record(began.elapsed().as_secs_f64());
    }
}

/// Statements the writer keeps prepared. It runs more distinct ones than rusqlite's default
/// of 16 (publishes, claims, attempt records, lanes, polls, the outbox, background tasks);
/// past its capacity the cache finalizes the least recent, to parse it again at its next use.
const WRITER_STATEMENTS: usize = 64;

/// Runs `sql` (a statement without parameters or rows, such as `COMMIT`) from the statement
/// cache: the writer begins and commits a transaction for every batch and sets a savepoint
/// around most requests' writes, and parsing those statements each time cost it about 1 % of
/// its time in the closed loop (docs/performance.md).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

/// The histogram of the writer's batches: from `BEGIN` to every caller answered and, at the
/// log's bound, the writer's own checkpoint.
pub const BATCH_SECONDS: &str = "hookd_sqlite_write_batch_duration_seconds";

#[cfg(test)]
pub(crate) mod tests {
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
        occupy_as(w, ms, false).await
    }

    /// [`occupy`] with an engine's job, or a request's when `request`.
    async fn occupy_as(w: &std::sync::Arc<Writer>, ms: u64, request: bool) -> tokio::task::JoinHandle<()> {
        let (started, inside) = std::sync::mpsc::channel();
        let w = w.clone();
        let job = async move {
            w.run(move |_| {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(ms));
                Ok(())
            })
            .await
            .unwrap();
        };
        let busy = match request {
            true => tokio::spawn(hookd_store::gate::WriteGate::new().scope(job)),
            false => tokio::spawn(job),
        };
        tokio::task::spawn_blocking(move || inside.recv().unwrap())
            .await
            .unwrap();
        busy
    }

    /// Polls `f` once; `true` while it is still pending.
    pub(crate) async fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> bool {
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

    /// Runs `sql` (statements separated by `;`, each executed in turn) as one job, with or
    /// without a savepoint, after `after_ms` so jobs reach the queue in order.
    fn job(
        w: &std::sync::Arc<Writer>,
        after_ms: u64,
        savepoint: bool,
        sql: &'static str,
    ) -> tokio::task::JoinHandle<StoreResult<()>> {
        let w = w.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            let f = move |c: &Connection| {
                for statement in sql.split(';') {
                    c.execute(statement, []).map_err(crate::map_err)?;
                }
                Ok(())
            };
            match savepoint {
                true => w.run(f).await,
                false => w.run_queued(None, Isolation::None, f).await,
            }
        })
    }

    async fn values(w: &Writer) -> Vec<i64> {
        w.run(|c| {
            let mut s = c.prepare("SELECT n FROM t ORDER BY n").map_err(crate::map_err)?;
            let rows = s.query_map([], |r| r.get(0)).map_err(crate::map_err)?;
            rows.collect::<Result<Vec<i64>, _>>().map_err(crate::map_err)
        })
        .await
        .unwrap()
    }

    /// A writer on a database file in WAL mode with table `t`, and a second connection that
    /// sees only what is committed.
    fn writer_with_reader() -> (
        tempfile::TempDir,
        std::sync::Arc<Writer>,
        std::sync::Arc<std::sync::Mutex<Connection>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writer.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER)")
            .unwrap();
        let reader = std::sync::Arc::new(std::sync::Mutex::new(Connection::open(&path).unwrap()));
        (
            dir,
            std::sync::Arc::new(Writer::with_capacity(conn, QUEUE_CAPACITY)),
            reader,
        )
    }

    /// A request's write of `n` into `t`, queued (polled once) behind whatever is queued.
    async fn queue_request_insert(
        w: &Writer,
        n: i64,
    ) -> std::pin::Pin<Box<impl std::future::Future<Output = StoreResult<()>> + '_>> {
        let mut request = Box::pin(hookd_store::gate::WriteGate::new().scope(w.run(move |c| {
            c.execute("INSERT INTO t VALUES (?1)", [n])
                .map(drop)
                .map_err(crate::map_err)
        })));
        assert!(futures_poll_once(&mut request).await, "queued behind the busy job");
        request
    }

    /// An engine write, queued (polled once), that reports how many rows of `t` it saw through
    /// the writer's own connection (written before it, committed or not) and through `reader`
    /// (committed before it).
    async fn queue_engine_count<'w>(
        w: &'w Writer,
        reader: &std::sync::Arc<std::sync::Mutex<Connection>>,
    ) -> std::pin::Pin<Box<impl std::future::Future<Output = StoreResult<(i64, i64)>> + 'w>> {
        let reader = reader.clone();
        let mut engine = Box::pin(w.run(move |c| {
            let rows = |c: &Connection| -> StoreResult<i64> {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(crate::map_err)
            };
            let own = rows(c)?;
            let committed = rows(&reader.lock().unwrap())?;
            Ok((own, committed))
        }));
        assert!(futures_poll_once(&mut engine).await, "queued behind the busy job");
        engine
    }

    /// A request's write queued behind the engine's is taken first and commits first, and the
    /// transaction that holds it still takes one engine write, so the engine always advances.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_requests_write_goes_ahead_of_queued_engine_writes_which_still_advance() {
        let (_dir, w, reader) = writer_with_reader();
        // A request's job keeps the writer busy well past the engine's share.
        let busy = occupy_as(&w, 20, true).await;
        let first = queue_engine_count(&w, &reader).await;
        let second = queue_engine_count(&w, &reader).await;
        let request = queue_request_insert(&w, 1).await;

        busy.await.unwrap();
        request.await.unwrap();
        assert_eq!(
            first.await.unwrap(),
            (1, 0),
            "the first engine write ran after the request's, in its transaction"
        );
        assert_eq!(
            second.await.unwrap(),
            (1, 1),
            "the second waited for the next transaction, after the request's commit"
        );
    }

    /// Requests enough to fill a whole transaction still leave its last place to a waiting
    /// engine write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_requests_leaves_each_transaction_one_engine_write() {
        let (_dir, w, reader) = writer_with_reader();
        // A request's job keeps the writer busy well past the engine's share.
        let busy = occupy_as(&w, 20, true).await;
        let engine = queue_engine_count(&w, &reader).await;
        let mut requests = Vec::with_capacity(MAX_BATCH);
        for n in 0..MAX_BATCH as i64 {
            requests.push(queue_request_insert(&w, n).await);
        }

        busy.await.unwrap();
        for r in requests {
            r.await.unwrap();
        }
        // The busy job and MAX_BATCH - 2 requests, then the engine write, filled the first
        // transaction; the last requests went in the next.
        let in_first = MAX_BATCH as i64 - 2;
        assert_eq!(engine.await.unwrap(), (in_first, 0));
        let committed: i64 = reader
            .lock()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(committed, MAX_BATCH as i64, "every request committed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_without_a_savepoint_fails_alone_or_takes_its_whole_batch_down() {
        let w = std::sync::Arc::new(writer(16));
        w.run(|c| {
            c.execute_batch("CREATE TABLE u (n INTEGER UNIQUE); INSERT INTO u VALUES (5)")
                .map_err(crate::map_err)
        })
        .await
        .unwrap();

        // Its first statement fails (a taken key): SQLite undid it, so it fails alone and its
        // neighbours in the same batch commit.
        let busy = occupy(&w, 300).await;
        let before = job(&w, 0, true, "INSERT INTO t VALUES (1)");
        let refused = job(&w, 20, false, "INSERT INTO u VALUES (5)");
        let after = job(&w, 40, false, "INSERT INTO t VALUES (2)");
        busy.await.unwrap();
        before.await.unwrap().unwrap();
        assert!(matches!(refused.await.unwrap(), Err(StoreError::Conflict(_))));
        after.await.unwrap().unwrap();
        assert_eq!(values(&w).await, [1, 2]);

        // It fails after a statement changed a row: nothing of its batch is committed, and
        // every caller in it (the job that opened the batch too) hears so; the job queued
        // behind runs in the next batch.
        let (started, inside) = std::sync::mpsc::channel();
        let w2 = w.clone();
        let opener = tokio::spawn(async move {
            w2.run(move |c| {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(300));
                c.execute("INSERT INTO t VALUES (9)", [])
                    .map(|_| ())
                    .map_err(crate::map_err)
            })
            .await
        });
        tokio::task::spawn_blocking(move || inside.recv().unwrap())
            .await
            .unwrap();
        let neighbour = job(&w, 0, true, "INSERT INTO t VALUES (10)");
        let partial = job(&w, 20, false, "INSERT INTO t VALUES (11); INSERT INTO u VALUES (5)");
        let next = job(&w, 40, true, "INSERT INTO t VALUES (12)");
        let opener = opener.await.unwrap();
        assert!(matches!(opener, Err(StoreError::Unavailable(_))), "{opener:?}");
        let neighbour = neighbour.await.unwrap();
        assert!(matches!(neighbour, Err(StoreError::Unavailable(_))), "{neighbour:?}");
        assert!(matches!(partial.await.unwrap(), Err(StoreError::Conflict(_))));
        next.await.unwrap().unwrap();
        assert_eq!(
            values(&w).await,
            [1, 2, 12],
            "neither 9, 10 nor the half-written 11 was kept"
        );
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
        let waiting = tokio::spawn(async move { w2.run_queued(Some(queued), Isolation::Savepoint, insert(1)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(gate.close(), "a write still in the queue has not begun");
        busy.await.unwrap();
        let skipped = waiting.await.unwrap();
        assert!(matches!(skipped, Err(StoreError::Unavailable(_))), "{skipped:?}");
        assert_eq!(count(&w).await, 0, "the write whose deadline passed never ran");

        // Reached before the deadline: it runs, and the gate can no longer close.
        let gate = WriteGate::new();
        let queued = gate.clone().scope(async { queue_write() }).await.unwrap();
        w.run_queued(Some(queued), Isolation::Savepoint, insert(2))
            .await
            .unwrap();
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

    /// Jobs the thread has taken off the channel to order them still count against the
    /// capacity until they start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_taken_off_the_channel_still_count_against_the_capacity() {
        let w = std::sync::Arc::new(writer(2));
        let busy = occupy(&w, 100).await;
        // Behind the busy job: one that holds the thread too, and one more. Once the busy job
        // ends, the thread takes both off the channel and starts the first.
        let (started, inside) = std::sync::mpsc::channel();
        let mut second = Box::pin(w.run(move |_| {
            let _ = started.send(());
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        }));
        assert!(futures_poll_once(&mut second).await);
        let mut third = Box::pin(hold(&w, 0));
        assert!(futures_poll_once(&mut third).await);
        tokio::task::spawn_blocking(move || inside.recv().unwrap())
            .await
            .unwrap();
        // The channel is empty now, but the third job still waits: room for one more only.
        let mut fourth = Box::pin(hold(&w, 0));
        assert!(futures_poll_once(&mut fourth).await, "one place was free");
        let refused = w.run(|_| Ok(())).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
        busy.await.unwrap();
        second.await.unwrap();
        third.await;
        fourth.await;
        assert!(w.run(|_| Ok(())).await.is_ok(), "room again once drained");
    }
}
