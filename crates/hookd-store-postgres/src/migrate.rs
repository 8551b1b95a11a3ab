//! The embedded schema migrations and the runner that applies them.
//!
//! Applied versions are recorded in `schema_migration`, the same table the SQLite backend
//! keeps, so an operator reads the schema version the same way on both. The runner is a few
//! lines rather than `sqlx::migrate!` because sqlx's migrator serialises on an advisory lock
//! keyed by the database name: every installation sharing a database (one per schema) would
//! queue behind each other, and its bookkeeping table would differ from SQLite's.
//!
//! Each migration runs in its own transaction (PostgreSQL's DDL is transactional, so a failed
//! migration leaves nothing half-applied) holding a transaction-scoped advisory lock keyed by
//! the current schema: nodes that start together apply each migration exactly once, the others
//! waiting and then finding it done. A migration is never edited once released; changes come as
//! a new file with the next version.

use hookd_store::StoreResult;
use sqlx::PgPool;

use crate::map_err;

/// Every migration, in order, as `(version, SQL)`.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_payload_expiry.sql")),
    (3, include_str!("../migrations/0003_event_type_group.sql")),
    (4, include_str!("../migrations/0004_leases_and_outbox.sql")),
    (5, include_str!("../migrations/0005_browser_sessions.sql")),
    (6, include_str!("../migrations/0006_delivery_reviewed.sql")),
    (7, include_str!("../migrations/0007_traffic_minute.sql")),
    (8, include_str!("../migrations/0008_destinations.sql")),
    (9, include_str!("../migrations/0009_delivery_without_app_index.sql")),
    (10, include_str!("../migrations/0010_attempt_without_app_index.sql")),
    (11, include_str!("../migrations/0011_attempt_keyed_by_message.sql")),
    (12, include_str!("../migrations/0012_write_functions.sql")),
];

/// First key of the advisory lock the runner takes (an arbitrary constant, "hook" in ASCII),
/// so it cannot collide with locks the application or other software take in the same database.
const LOCK_CLASS: i32 = 0x686f_6f6b;

/// Applies the migrations `pool`'s schema lacks; returns the versions applied.
pub(crate) async fn run(pool: &PgPool) -> StoreResult<Vec<i64>> {
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
            .bind(LOCK_CLASS)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide on
        // the catalog's unique indexes.
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migration (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let done: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM schema_migration WHERE version = $1)")
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if done {
            continue;
        }
        // A multi-statement script needs the simple query protocol, which raw_sql uses.
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("INSERT INTO schema_migration (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(chrono::Utc::now().timestamp_micros())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        tracing::info!(version, "applied PostgreSQL migration");
        applied.push(*version);
    }
    Ok(applied)
}
