//! WAL checkpoints on a thread of their own.
//!
//! A checkpoint copies the pages committed to the write-ahead log back into the database file
//! and syncs it. Run by the writer thread (SQLite's default, after any commit that leaves the
//! log at 1,000 pages or more), each one holds up every commit queued behind it. Here a thread
//! with its own connection runs a passive checkpoint after commits, at most once per
//! [`INTERVAL`], while the writer goes on committing: a passive checkpoint never blocks the
//! writer, nor waits for it.
//!
//! The log only starts again from its beginning when a transaction begins with every frame
//! copied, which a busy writer may never give this thread. So the writer keeps a bound of its
//! own: SQLite tells it the log's size after each commit (its WAL hook), and once the log holds
//! [`WRITER_BOUND`] pages the writer, having answered that batch's callers, checkpoints too
//! (copying only what this thread has not yet), so the transaction after it starts the log
//! afresh. Only one checkpoint can run at a time, and SQLite skips, without waiting, a
//! checkpoint that finds another running; so the writer at its bound first waits for a
//! checkpoint of this thread's that is under way. The log therefore never holds more than the
//! bound plus one batch's pages.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{ffi, Connection};

/// Least time between two checkpoints of this thread: the pages rewritten by many commits
/// in between are copied once.
pub const INTERVAL: Duration = Duration::from_millis(50);
/// Log size, in pages, from which the writer checkpoints by itself.
pub const WRITER_BOUND: u32 = 4_000;

#[derive(Default)]
struct State {
    /// Commits seen so far.
    commits: u64,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Held by whichever of this thread and the writer is checkpointing.
    running: Mutex<()>,
    /// Pages in the log after the writer's last commit, as SQLite's WAL hook reports them.
    pages: AtomicU32,
    /// The writer's bound, in pages; 0 when the writer never checkpoints.
    bound: u32,
}

/// Handle kept by the writer thread: tells the checkpointer about commits; stops it when
/// dropped.
pub struct Checkpointer {
    shared: Arc<Shared>,
}

impl Checkpointer {
    /// Opens a connection of its own to `path` and starts the thread. The writer checkpoints
    /// by itself once the log holds `writer_bound` pages (never when it is 0).
    pub fn start(path: &Path, writer_bound: u32) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA busy_timeout=5000;")?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            running: Mutex::new(()),
            pages: AtomicU32::new(0),
            bound: writer_bound,
        });
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("hookd-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &theirs))
            .expect("spawn SQLite checkpoint thread");
        Ok(Checkpointer { shared })
    }

    /// Starts watching the writer's connection: from now on SQLite reports the log's size
    /// after each of its commits, in place of its own automatic checkpoints.
    pub fn watch<'c>(&self, conn: &'c Connection) -> Watch<'c> {
        let pages: *const AtomicU32 = &self.shared.pages;
        // SAFETY: the hook's argument points into `shared`, which the returned `Watch` keeps
        // alive; the `Watch` borrows `conn` and removes the hook when dropped, so the hook
        // never outlives the counter it writes to.
        unsafe {
            ffi::sqlite3_wal_hook(conn.handle(), Some(note_pages), pages.cast_mut().cast());
        }
        Watch {
            conn,
            shared: self.shared.clone(),
        }
    }
}

/// SQLite's WAL hook: called on the writer's thread after each commit with the log's size.
unsafe extern "C" fn note_pages(arg: *mut c_void, _db: *mut ffi::sqlite3, _name: *const c_char, pages: c_int) -> c_int {
    // SAFETY: `arg` is the counter `Checkpointer::watch` registered, alive while the hook is.
    let counter = unsafe { &*arg.cast::<AtomicU32>() };
    counter.store(u32::try_from(pages).unwrap_or(0), Ordering::Relaxed);
    ffi::SQLITE_OK
}

/// The writer's side, while it watches its connection (see [`Checkpointer::watch`]).
pub struct Watch<'c> {
    conn: &'c Connection,
    shared: Arc<Shared>,
}

impl Watch<'_> {
    /// Notes a commit: the thread checkpoints it within [`INTERVAL`]; and when the log has
    /// reached the writer's bound, checkpoints it here, after any checkpoint of the thread's
    /// that is under way.
    pub fn committed(&self) {
        let shared = &*self.shared;
        shared.state.lock().expect("checkpointer poisoned").commits += 1;
        shared.wake.notify_one();
        if shared.bound == 0 || shared.pages.load(Ordering::Relaxed) < shared.bound {
            return;
        }
        let _running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "SQLite checkpoint at the log's bound failed; the next commit tries again");
        }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        // SAFETY: removes the hook `watch` registered on this same connection.
        unsafe {
            ffi::sqlite3_wal_hook(self.conn.handle(), None, std::ptr::null_mut());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.state.lock().expect("checkpointer poisoned").stop = true;
        self.shared.wake.notify_one();
    }
}

fn run(conn: &Connection, shared: &Shared) {
    let mut seen = 0;
    loop {
        {
            let mut s = shared.state.lock().expect("checkpointer poisoned");
            while s.commits == seen && !s.stop {
                s = shared.wake.wait(s).expect("checkpointer poisoned");
            }
            if s.stop {
                return;
            }
            seen = s.commits;
        }
        {
            let _running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "SQLite checkpoint failed; the writer's own bound still applies");
            }
        }
        std::thread::sleep(INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::Writer;

    fn database(dir: &Path) -> (std::path::PathBuf, Connection) {
        let path = dir.join("db.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
             CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )
        .unwrap();
        (path, conn)
    }

    async fn insert(w: &Writer, n: i64) {
        w.run(move |c| {
            c.execute("INSERT INTO t VALUES (?1, zeroblob(3000))", [n])
                .map(|_| ())
                .map_err(crate::map_err)
        })
        .await
        .unwrap();
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[tokio::test]
    async fn commits_reach_the_database_file_through_the_thread_not_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        // The writer never checkpoints by itself here: only the thread can copy the log back.
        let (path, conn) = database(dir.path());
        let before = size(&path);
        let w = Writer::with_checkpointer(conn, Checkpointer::start(&path, 0).unwrap());
        for n in 0..200 {
            insert(&w, n).await;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size(&path) < before + 200 * 3000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(INTERVAL).await;
        }
        assert!(
            size(&path) >= before + 200 * 3000,
            "the committed rows were copied into the database file: {} bytes, {before} before",
            size(&path)
        );
    }

    #[tokio::test]
    async fn at_its_bound_the_writer_waits_for_a_checkpoint_under_way_rather_than_skip_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let bound: u32 = 100;
        let page = 4096 + 24;
        let (path, conn) = database(dir.path());
        let wal = dir.path().join("db.sqlite-wal");
        let checkpoints = Checkpointer::start(&path, bound).unwrap();
        let shared = checkpoints.shared.clone();
        let w = Arc::new(Writer::with_checkpointer(conn, checkpoints));
        // A checkpoint of the thread's is under way until `release` is sent (as a slow fsync
        // would keep it).
        let (held, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let holder = std::thread::spawn(move || {
            let _under_way = shared.running.lock().unwrap();
            held.0.send(()).unwrap();
            let _ = release.1.recv();
        });
        held.1.recv().unwrap();
        let writing = tokio::spawn({
            let (w, wal) = (w.clone(), wal.clone());
            async move {
                let mut largest = 0;
                for n in 0..3 * i64::from(bound) {
                    insert(&w, n).await;
                    largest = largest.max(size(&wal));
                }
                largest
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!writing.is_finished(), "the writer waited at its bound");
        assert!(
            size(&wal) <= u64::from(bound + 8) * page,
            "while it waited, the log held {} bytes, past its bound of {bound} pages",
            size(&wal)
        );
        release.0.send(()).unwrap();
        holder.join().unwrap();
        let largest = writing.await.unwrap();
        assert!(
            largest <= u64::from(bound + 8) * page,
            "the log grew to {largest} bytes, past its bound of {bound} pages"
        );
    }

    #[tokio::test]
    async fn under_writes_that_never_pause_the_log_stays_within_the_writers_bound() {
        let dir = tempfile::tempdir().unwrap();
        let bound: u32 = 200;
        let (path, conn) = database(dir.path());
        let wal = dir.path().join("db.sqlite-wal");
        let w = Writer::with_checkpointer(conn, Checkpointer::start(&path, bound).unwrap());
        let mut largest = 0;
        // About 3,000 pages in all, fifteen times the bound, written back to back.
        for n in 0..3_000 {
            insert(&w, n).await;
            largest = largest.max(size(&wal));
        }
        let page = 4096 + 24;
        assert!(largest > 0, "the log was written");
        // The bound plus the one commit that reached it (a row's page and the table's), however
        // slow the thread's checkpoints: the writer waits for one under way rather than skip its
        // own. Without the writer's bound the log reaches 3,000 pages.
        assert!(
            largest <= u64::from(bound + 8) * page,
            "the log grew to {largest} bytes, past its bound of {bound} pages"
        );
        let rows: i64 = w
            .run(|c| {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(crate::map_err)
            })
            .await
            .unwrap();
        assert_eq!(rows, 3_000);
    }
}
