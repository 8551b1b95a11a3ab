//! hookd-store-sqlite: the embedded default backend.
//!
//! One database file in WAL mode. All writes go through a single writer thread that batches
//! whatever is waiting into one transaction (group commit): concurrent API requests and
//! attempt records share one fsync, and each caller still gets its answer only after the commit.
//! Each write runs inside its own savepoint, so one request's conflict never fails its
//! neighbours in the batch. Reads run on a small pool of read-only connections on Tokio's
//! blocking threads, so they never wait for the writer.
//!
//! Durability: `synchronous=FULL` by default (an acknowledged write survives power loss);
//! `NORMAL` survives a process crash only and is an opt-in trade.
//!
//! Only one process may use a database file: [`SqliteStore::open`] takes an exclusive lock on
//! `<file>.lock`, which is what makes [`QueueStore::release_stale_leases`] safe at start.
//!
//! Modules: [`writer`] (the group-commit thread), `rows` (row ↔ record mapping), `store` (the
//! [`Store`] implementation).

mod checkpoint;
mod rows;
mod store;
pub mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hookd_store::share::AppShares;
use hookd_store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};

use checkpoint::Checkpointer;
use writer::{Isolation, Writer};

/// How hard SQLite works to make each commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// fsync on every commit: survives power loss (default).
    #[default]
    Full,
    /// Survives a crash of hookd, not of the machine; faster commits.
    Normal,
}

/// Open-time options.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Database file; created with its directory if missing.
    pub path: PathBuf,
    /// Commit durability.
    pub synchronous: Synchronous,
    /// Memory for SQLite's page caches, in MiB, for all connections together: half for the
    /// writer, half shared by the readers. It bounds how much of the database hookd keeps in
    /// memory; the operating system's file cache holds the rest.
    pub cache_mib: u32,
}

/// The default [`SqliteOptions::cache_mib`].
pub const DEFAULT_CACHE_MIB: u32 = 64;

/// The embedded store. Cheap to clone (shares the writer and the read pool).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// Seals endpoint secrets at rest when set.
    pub(crate) secrets: Option<Arc<hookd_store::secrets::SecretBox>>,
}

struct Inner {
    writer: Writer,
    path: PathBuf,
    /// Page cache of each reader, in KiB.
    reader_cache_kib: u64,
    readers: Mutex<Vec<Connection>>,
    /// Caps concurrent reads at the pool size, so connections are reused (keeping their
    /// prepared statements) instead of opened and dropped under load.
    read_slots: tokio::sync::Semaphore,
    /// Each application's share of the writer's queue for publishes ([`PUBLISHES_PER_APP`]).
    publishes: AppShares,
    _lock: File,
}

/// Most publishes of one application waiting for the writer: a quarter of its queue, so when
/// the disk slows down one tenant's burst is refused (503) while others' still queue.
pub(crate) const PUBLISHES_PER_APP: usize = writer::QUEUE_CAPACITY / 4;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_delivery_engine.sql")),
    (3, include_str!("../migrations/0003_payload_expiry.sql")),
    (4, include_str!("../migrations/0004_event_type_group.sql")),
    (5, include_str!("../migrations/0005_leases_and_outbox.sql")),
    (6, include_str!("../migrations/0006_claim_index.sql")),
    (7, include_str!("../migrations/0007_browser_sessions.sql")),
    (8, include_str!("../migrations/0008_delivery_reviewed.sql")),
    (9, include_str!("../migrations/0009_traffic_minute.sql")),
    (10, include_str!("../migrations/0010_destinations.sql")),
    (11, include_str!("../migrations/0011_delivery_without_app_index.sql")),
    (12, include_str!("../migrations/0012_attempt_with_fewer_indexes.sql")),
    (13, include_str!("../migrations/0013_due_index_without_id.sql")),
];
/// Read-only connections kept open, and the most reads running at once.
const READERS: usize = 8;

impl SqliteStore {
    /// Seals endpoint secrets and sensitive header values with `secrets` from now on (and opens
    /// them with it).
    pub fn with_secrets(mut self, secrets: Option<Arc<hookd_store::secrets::SecretBox>>) -> SqliteStore {
        self.secrets = secrets;
        self
    }

    /// Opens (creating if needed) and migrates the database, and starts the writer thread.
    pub fn open(options: &SqliteOptions) -> StoreResult<SqliteStore> {
        if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::internal)?;
        }
        let lock = take_lock(&options.path)?;
        let conn = Connection::open(&options.path).map_err(unavailable)?;
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        let (writer_kib, reader_kib) = cache_split(options.cache_mib);
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000; PRAGMA secure_delete=ON; \
             PRAGMA temp_store=MEMORY; PRAGMA cache_size=-{writer_kib};"
        ))
        .map_err(unavailable)?;
        migrate(&conn)?;
        // Checkpoints run on a thread of their own; the writer checkpoints only when the log
        // outgrows its bound (see `checkpoint`).
        let checkpoints = Checkpointer::start(&options.path, checkpoint::WRITER_BOUND).map_err(unavailable)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Writer::with_checkpointer(conn, checkpoints),
                path: options.path.clone(),
                reader_cache_kib: reader_kib,
                readers: Mutex::new(Vec::new()),
                read_slots: tokio::sync::Semaphore::new(READERS),
                publishes: AppShares::new(PUBLISHES_PER_APP, writer::QUEUE_CAPACITY),
                _lock: lock,
            }),
            secrets: None,
        })
    }

    /// Runs `f` on a read-only connection on a blocking thread.
    pub(crate) async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let _slot = self.inner.read_slots.acquire().await.map_err(StoreError::internal)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().expect("reader pool poisoned").pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&inner.path, inner.reader_cache_kib)?,
            };
            let result = f(&conn).map_err(map_err);
            let mut pool = inner.readers.lock().expect("reader pool poisoned");
            if pool.len() < READERS {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(StoreError::internal)?
    }

    /// Runs `f` inside the writer's current transaction, in a savepoint of its own; resolves
    /// after the commit.
    pub(crate) async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        self.write_as(Isolation::Savepoint, f).await
    }

    /// [`SqliteStore::write`] kept apart from its neighbours as `isolation` says
    /// ([`Isolation::None`] for a write that changes nothing when it fails).
    pub(crate) async fn write_as<R, F>(&self, isolation: Isolation, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let queued = hookd_store::gate::queue_write()?;
        self.inner.writer.run_queued(Some(queued), isolation, f).await
    }

    /// A write that is not a request's effect (its idempotency key, the health check's ping):
    /// it neither needs nor opens the request's write gate.
    pub(crate) async fn write_bookkeeping<R, F>(&self, isolation: Isolation, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        self.inner.writer.run_queued(None, isolation, f).await
    }
}

fn take_lock(db: &Path) -> StoreResult<File> {
    let mut lock_path = db.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(lock_path))
        .map_err(StoreError::internal)?;
    file.try_lock()
        .map_err(|_| StoreError::Unavailable(format!("{} is in use by another hookd process (commands such as `hookd token` can reach a running server with --server and --token instead)", db.display()).into()))?;
    Ok(file)
}

/// The page cache of the writer and of each reader, in KiB, for a budget of `mib` in all: half
/// for the writer, the other half split among the readers, at least 1 MiB each.
fn cache_split(mib: u32) -> (u64, u64) {
    let total = u64::from(mib) * 1024;
    ((total / 2).max(1024), (total / 2 / READERS as u64).max(1024))
}

fn open_reader(path: &Path, cache_kib: u64) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(unavailable)?;
    conn.execute_batch(&format!("PRAGMA busy_timeout=5000; PRAGMA cache_size=-{cache_kib};"))
        .map_err(unavailable)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(map_err)?;
    let current: i64 = conn
        .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migration", [], |r| {
            r.get(0)
        })
        .map_err(map_err)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.unchecked_transaction().map_err(map_err)?;
        tx.execute_batch(sql).map_err(map_err)?;
        tx.execute(
            "INSERT INTO schema_migration (version, applied_at) VALUES (?1, ?2)",
            (version, chrono::Utc::now().timestamp_micros()),
        )
        .map_err(map_err)?;
        tx.commit().map_err(map_err)?;
        tracing::info!(version, "applied SQLite migration");
    }
    Ok(())
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

/// Maps driver errors: uniqueness violations become `Conflict`, busy/locked/IO errors
/// `Unavailable`, everything else `Internal`.
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict("unique")
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == DiskFull => StoreError::storage_full(e.to_string()),
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, DatabaseBusy | DatabaseLocked | SystemIoFailure | CannotOpen) =>
        {
            StoreError::Unavailable(Box::new(e))
        }
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        _ => StoreError::Internal(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_store::prelude::*;
    use std::time::Duration;

    /// SQLite's plan for `sql` with `params`, one step per entry (`SEARCH …`, `SCAN …`).
    fn query_plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        texts(conn, &format!("EXPLAIN QUERY PLAN {sql}"), params, 3)
    }

    /// Column `column` of every row `sql` returns, as text.
    fn texts(conn: &Connection, sql: &str, params: impl rusqlite::Params, column: usize) -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map(params, |r| r.get::<_, String>(column))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn the_cache_budget_is_split_half_for_the_writer_and_half_among_the_readers() {
        assert_eq!(cache_split(DEFAULT_CACHE_MIB), (32 * 1024, 4 * 1024));
        assert_eq!(cache_split(1024), (512 * 1024, 64 * 1024));
        // A tiny budget still leaves every connection a working cache.
        assert_eq!(cache_split(2), (1024, 1024));
    }

    /// The bundled SQLite is compiled as `.cargo/config.toml` says: no allocation counting
    /// under a global mutex, and a page cache per connection rather than one shared behind a
    /// global mutex (which is what `SQLITE_ENABLE_MEMORY_MANAGEMENT` would make it).
    #[test]
    fn the_bundled_sqlite_counts_no_allocations_and_shares_no_page_cache() {
        let conn = Connection::open_in_memory().unwrap();
        let options = texts(&conn, "SELECT compile_options FROM pragma_compile_options", [], 0);
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "compiled with {options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "compiled with {options:?}"
        );
    }

    /// Deleting an application reads the tables that grow with traffic through an index, never
    /// walking one whole (deliveries and attempts, which have no index on the application, are
    /// found through the application's endpoints and messages).
    #[test]
    fn deleting_an_application_scans_no_table_that_grows_with_traffic() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("hookd.db")).unwrap();
        migrate(&conn).unwrap();
        let statements: Vec<String> =
            hookd_store::sql::delete_application_children(hookd_store::sql::Dialect::Sqlite).collect();
        for table in ["message", "delivery", "attempt"] {
            let statement = statements
                .iter()
                .find(|s| s.starts_with(&format!("DELETE FROM {table} ")))
                .unwrap_or_else(|| panic!("{table} is deleted with its application"));
            let plan = query_plan(&conn, statement, ["app_1"]);
            assert!(!plan.is_empty(), "{statement}");
            for step in &plan {
                assert!(
                    step.starts_with("SEARCH") || step.starts_with("LIST SUBQUERY"),
                    "{statement}: {plan:?}"
                );
            }
        }
    }

    /// Migration 12 rebuilds the attempt table with two indexes fewer: an attempt stored before
    /// it reads back the same after it, and attempts are still found through an index by
    /// message and by endpoint.
    #[test]
    fn the_attempt_table_is_rebuilt_with_its_rows_and_two_indexes_fewer() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("hookd.db")).unwrap();
        conn.execute_batch("CREATE TABLE schema_migration (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            .unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < 12) {
            conn.execute_batch(sql).unwrap();
            conn.execute("INSERT INTO schema_migration VALUES (?1, 0)", [version])
                .unwrap();
        }
        let cols = hookd_store::sql::ATTEMPT_COLS;
        conn.execute(
            &format!(
                "INSERT INTO attempt (delivery_id, app_id, {cols}) VALUES ('dlv_1', 'app_1', 'atmpt_1', 'msg_1', \
                 'ep_1', 'http://127.0.0.1:9/hook', 'ok', 200, 12, 0, 0, 1, 1700000000000000, \
                 '{{\"webhook-id\":\"msg_1\"}}', '[[\"server\",\"x\"]]')"
            ),
            [],
        )
        .unwrap();
        let read = |conn: &Connection| -> Vec<String> {
            conn.query_row(
                &format!("SELECT delivery_id, app_id, {cols} FROM attempt WHERE msg_id = 'msg_1' AND id = 'atmpt_1'"),
                [],
                |r| {
                    (0..r.as_ref().column_count())
                        .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                        .collect()
                },
            )
            .unwrap()
        };
        let before = read(&conn);
        migrate(&conn).unwrap();
        assert_eq!(read(&conn), before);

        let indexes: std::collections::BTreeSet<String> =
            texts(&conn, "SELECT name FROM pragma_index_list('attempt')", [], 0)
                .into_iter()
                .collect();
        assert_eq!(indexes, ["attempt_endpoint", "attempt_msg"].map(String::from).into());

        // An application alone is found through its messages.
        for (filter, index) in [
            ("msg_id", "attempt_msg"),
            ("endpoint_id", "attempt_endpoint"),
            ("app_id", "attempt_msg"),
        ] {
            let attempts = hookd_store::AttemptFilter {
                app_id: "app_1".into(),
                msg_id: (filter == "msg_id").then(|| "msg_1".into()),
                endpoint_id: (filter == "endpoint_id").then(|| "ep_1".into()),
                ..hookd_store::AttemptFilter::default()
            };
            let q = hookd_store::sql::list_attempts(
                hookd_store::sql::Dialect::Sqlite,
                &attempts,
                &hookd_store::PageRequest::first(10, false),
            );
            let plan = query_plan(
                &conn,
                q.text(),
                rusqlite::params_from_iter(q.params().iter().map(crate::store::value)),
            );
            assert!(plan.iter().any(|step| step.contains(index)), "{filter}: {plan:?}");
            assert!(plan.iter().all(|step| !step.starts_with("SCAN")), "{filter}: {plan:?}");
        }
    }

    /// Migration 13 leaves the delivery's id out of the due index: a claim's walk still reads
    /// the index alone (no table row for a delivery it passes over), and its entries no longer
    /// hold the id.
    #[test]
    fn the_claim_walk_reads_the_due_index_alone_and_its_entries_hold_no_id() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("hookd.db")).unwrap();
        migrate(&conn).unwrap();
        let plan = query_plan(
            &conn,
            crate::store::queue::CLAIM_WALK,
            rusqlite::params![0, 10, "[]", "[]"],
        );
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH delivery USING COVERING INDEX delivery_due ")),
            "{plan:?}"
        );
        let columns = texts(
            &conn,
            "SELECT name FROM pragma_index_info('delivery_due') ORDER BY seqno",
            [],
            0,
        );
        assert_eq!(columns, ["next_attempt_at", "lease_until", "endpoint_id", "app_id"]);
        let old: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'delivery_due_claim'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old, 0);
    }

    #[test]
    fn reads_at_a_claimed_row_go_by_rowid_alone() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("hookd.db")).unwrap();
        migrate(&conn).unwrap();
        for (sql, params) in [
            (crate::store::queue::LEASE_AT_ROW, rusqlite::params![1, "msgep_1"]),
            (crate::store::queue::CLAIMED_AT_ROW, rusqlite::params!["msgep_1", 0, 1]),
        ] {
            let plan = query_plan(&conn, sql, params);
            assert_eq!(plan, ["SEARCH delivery USING INTEGER PRIMARY KEY (rowid=?)"], "{sql}");
        }
    }

    /// A message `id` of `app` created `now`, with an empty payload.
    fn message(id: String, app: &str, now: chrono::DateTime<chrono::Utc>) -> hookd_core::model::Message {
        hookd_core::model::Message {
            id,
            app_id: app.to_string(),
            event_id: None,
            event_type: "a.b".to_string(),
            channels: None,
            payload: Some("{}".to_string()),
            created_at: now,
            expires_at: now + chrono::Duration::days(1),
        }
    }

    #[tokio::test]
    async fn a_claim_names_each_deliverys_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let now = chrono::Utc::now();
        for n in 0..3 {
            let message = message(format!("msg_{n}"), "app_1", now);
            let delivery = hookd_store::NewDelivery {
                id: format!("msgep_{n}"),
                msg_id: message.id.clone(),
                endpoint_id: format!("ep_{n}"),
                app_id: "app_1".to_string(),
                due_at: now,
                leased_until: None,
                lease_token: 0,
                lane: None,
            };
            store.create_message(&message, &[delivery]).await.unwrap();
        }
        let claims = store
            .claim_due(now, now + chrono::Duration::seconds(30), 10)
            .await
            .unwrap();
        assert_eq!(claims.len(), 3);
        let conn = Connection::open(dir.path().join("hookd.db")).unwrap();
        for c in &claims {
            let rowid: i64 = conn
                .query_row("SELECT rowid FROM delivery WHERE id = ?1", [&c.id], |r| r.get(0))
                .unwrap();
            assert_eq!(c.row, Some(rowid), "{}", c.id);
        }
    }

    /// A message's deliveries for `endpoints`: every third leased, each due a second after the
    /// one before.
    fn fan_out(message: &hookd_core::model::Message, endpoints: &[String]) -> Vec<hookd_store::NewDelivery> {
        let lease = message.created_at + chrono::Duration::seconds(30);
        (0..endpoints.len())
            .map(|n| hookd_store::NewDelivery {
                id: format!("msgep_{n:02}"),
                msg_id: message.id.clone(),
                endpoint_id: endpoints[n].clone(),
                app_id: message.app_id.clone(),
                due_at: message.created_at + chrono::Duration::seconds(n as i64),
                leased_until: (n % 3 == 0).then_some(lease),
                lease_token: if n % 3 == 0 { 1_000 + n as i64 } else { 0 },
                lane: None,
            })
            .collect()
    }

    /// Deliveries go in eight to a statement and the rest one by one; each row holds its own
    /// values, leased or not.
    #[tokio::test]
    async fn a_fan_out_stores_each_delivery_with_its_own_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let message = message("msg_fan".into(), "app_1", chrono::Utc::now());
        // Two whole statements of eight and three single rows.
        let endpoints: Vec<String> = (0..19).map(|n| format!("ep_{n:02}")).collect();
        let deliveries = fan_out(&message, &endpoints);
        store.create_message(&message, &deliveries).await.unwrap();

        let conn = Connection::open(dir.path().join("hookd.db")).unwrap();
        let created = hookd_store::sql::micros(message.created_at);
        for d in &deliveries {
            let row = conn
                .query_row(
                    "SELECT msg_id, endpoint_id, app_id, status, next_attempt_at, lease_until, lease_token, \
                     created_at, updated_at, lane FROM delivery WHERE id = ?1",
                    [&d.id],
                    |r| {
                        Ok((
                            (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                            (r.get::<_, i64>(3)?, r.get::<_, Option<i64>>(4)?, r.get::<_, i64>(5)?),
                            (r.get::<_, i64>(6)?, r.get::<_, i64>(7)?, r.get::<_, i64>(8)?),
                            r.get::<_, Option<i32>>(9)?,
                        ))
                    },
                )
                .unwrap_or_else(|e| panic!("{}: {e}", d.id));
            let due = hookd_store::sql::micros(d.leased_until.unwrap_or(d.due_at));
            let leased = d.leased_until.map(hookd_store::sql::micros).unwrap_or(0);
            assert_eq!(
                row,
                (
                    (d.msg_id.clone(), d.endpoint_id.clone(), d.app_id.clone()),
                    (1, Some(due), leased),
                    (d.lease_token, created, created),
                    None
                ),
                "{}",
                d.id
            );
        }
        let stored: i64 = conn
            .query_row("SELECT COUNT(*) FROM delivery", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 19);
    }

    /// A row that one of the eight-row statements could not store (here a second delivery of
    /// the message to the same endpoint) fails the publish, and nothing of it is kept: no
    /// message, no delivery.
    #[tokio::test]
    async fn a_delivery_left_out_of_a_statement_fails_the_whole_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let message = message("msg_dup".into(), "app_1", chrono::Utc::now());
        let mut endpoints: Vec<String> = (0..8).map(|n| format!("ep_{n:02}")).collect();
        endpoints[5] = endpoints[2].clone();
        let deliveries = fan_out(&message, &endpoints);
        let failed = store.create_message(&message, &deliveries).await;
        assert!(failed.is_err(), "{failed:?}");

        let conn = Connection::open(dir.path().join("hookd.db")).unwrap();
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!((count("message"), count("delivery")), (0, 0));
        // The writer goes on: the same message with distinct endpoints is stored.
        let endpoints: Vec<String> = (0..8).map(|n| format!("ep_{n:02}")).collect();
        store
            .create_message(&message, &fan_out(&message, &endpoints))
            .await
            .unwrap();
        assert_eq!((count("message"), count("delivery")), (1, 8));
    }

    fn store_in(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&SqliteOptions {
            path: dir.path().join("hookd.db"),
            synchronous: Synchronous::Normal,
            cache_mib: DEFAULT_CACHE_MIB,
        })
        .unwrap()
    }

    /// Keeps the writer thread inside one job for `held`; returns once it is inside.
    async fn stick_writer(store: &SqliteStore, held: Duration) -> tokio::task::JoinHandle<StoreResult<()>> {
        let (inside, entered) = std::sync::mpsc::channel();
        let stuck = store.clone();
        let job = tokio::spawn(async move {
            stuck
                .write(move |_| {
                    let _ = inside.send(());
                    std::thread::sleep(held);
                    Ok(())
                })
                .await
        });
        tokio::task::spawn_blocking(move || entered.recv().unwrap())
            .await
            .unwrap();
        job
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_writer_makes_ping_fail_though_reads_still_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.ping().await.expect("a free writer answers");
        let job = stick_writer(&store, Duration::from_secs(2)).await;
        assert!(
            store.list_tokens().await.is_ok(),
            "reads still answer, so a read-only check would call the node healthy"
        );
        let ping = tokio::time::timeout(Duration::from_millis(500), store.ping()).await;
        assert!(ping.is_err(), "the health check's ping waits on the stuck writer");
        job.await.unwrap().unwrap();
        store.ping().await.expect("answers again once the writer is free");
    }

    /// While the writer is held up, one application's publishes take at most their share of
    /// its queue; beyond it they are refused, and another application's still queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_applications_burst_takes_at_most_its_share_of_the_writers_queue() {
        use crate::writer::tests::futures_poll_once;
        use hookd_core::model::Message;
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let now = chrono::Utc::now();
        let message = |app: &str, n: usize| message(format!("msg_{app}_{n}"), app, now);
        let publish = |m: Message| {
            let store = store.clone();
            Box::pin(async move { store.create_message(&m, &[]).await })
        };
        let job = stick_writer(&store, Duration::from_millis(500)).await;

        let mut burst = Vec::with_capacity(PUBLISHES_PER_APP);
        for n in 0..PUBLISHES_PER_APP {
            let mut queued = publish(message("app_a", n));
            assert!(futures_poll_once(&mut queued).await, "queued behind the stuck job");
            burst.push(queued);
        }
        let refused = store.create_message(&message("app_a", PUBLISHES_PER_APP), &[]).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
        let mut neighbour = publish(message("app_b", 0));
        assert!(
            futures_poll_once(&mut neighbour).await,
            "another application's publish queues"
        );

        job.await.unwrap().unwrap();
        for queued in burst {
            queued.await.unwrap();
        }
        neighbour.await.unwrap();
        store
            .create_message(&message("app_a", PUBLISHES_PER_APP + 1), &[])
            .await
            .expect("the share is free again once the burst is stored");
    }
}
