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
//! own: once the log reaches [`WRITER_BOUND`] pages, its next commit checkpoints too (copying
//! only what this thread has not yet), and the transaction after it starts the log afresh.
//! Only one checkpoint runs at a time: a commit that comes while this thread's checkpoint is
//! running skips its own, so the log can pass the bound by the commits made during one of
//! this thread's checkpoints (its copy and its fsync) before the writer's catches up.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::Connection;

/// Least time between two checkpoints of this thread: the pages rewritten by many commits
/// in between are copied once.
pub const INTERVAL: Duration = Duration::from_millis(50);
/// Log size, in pages, from which the writer checkpoints by itself (SQLite's
/// `wal_autocheckpoint` on the writer's connection).
pub const WRITER_BOUND: u32 = 4_000;

#[derive(Default)]
struct State {
    /// Commits seen so far.
    commits: u64,
    stop: bool,
}

/// Handle kept by the writer thread: tells the checkpointer about commits; stops it when
/// dropped.
pub struct Checkpointer {
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl Checkpointer {
    /// Opens a connection of its own to `path` and starts the thread.
    pub fn start(path: &Path) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA busy_timeout=5000;")?;
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("hookd-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &theirs))
            .expect("spawn SQLite checkpoint thread");
        Ok(Checkpointer { shared })
    }

    /// Notes a commit: the thread checkpoints it within [`INTERVAL`].
    pub fn committed(&self) {
        let (state, wake) = &*self.shared;
        state.lock().expect("checkpointer poisoned").commits += 1;
        wake.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (state, wake) = &*self.shared;
        state.lock().expect("checkpointer poisoned").stop = true;
        wake.notify_one();
    }
}

fn run(conn: &Connection, shared: &(Mutex<State>, Condvar)) {
    let (state, wake) = shared;
    let mut seen = 0;
    loop {
        {
            let mut s = state.lock().expect("checkpointer poisoned");
            while s.commits == seen && !s.stop {
                s = wake.wait(s).expect("checkpointer poisoned");
            }
            if s.stop {
                return;
            }
            seen = s.commits;
        }
        // Busy (the writer's own bound checkpoint is running) is not an error: the next
        // commit brings another turn.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "SQLite checkpoint failed; the writer's own bound still applies");
        }
        std::thread::sleep(INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::Writer;

    fn database(dir: &Path, writer_bound: u32) -> (std::path::PathBuf, Connection) {
        let path = dir.join("db.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint={writer_bound}; \
             CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB NOT NULL);"
        ))
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
        let (path, conn) = database(dir.path(), 0);
        let before = size(&path);
        let w = Writer::with_checkpointer(conn, Checkpointer::start(&path).unwrap());
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
    async fn under_writes_that_never_pause_the_log_stays_within_the_writers_bound() {
        let dir = tempfile::tempdir().unwrap();
        let bound: u32 = 200;
        let (path, conn) = database(dir.path(), bound);
        let wal = dir.path().join("db.sqlite-wal");
        let w = Writer::with_checkpointer(conn, Checkpointer::start(&path).unwrap());
        let mut largest = 0;
        // About 3,000 pages in all, fifteen times the bound, written back to back.
        for n in 0..3_000 {
            insert(&w, n).await;
            largest = largest.max(size(&wal));
        }
        let page = 4096 + 24;
        assert!(largest > 0, "the log was written");
        // The bound, plus the commits that may come while one of the thread's checkpoints
        // holds the checkpoint lock (on a loaded machine its fsync alone lets a few hundred
        // one-page commits through). Without the writer's bound the log reaches 3,000 pages.
        assert!(
            largest <= u64::from(2 * bound) * page,
            "the log grew to {largest} bytes, past twice its bound of {bound} pages"
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
