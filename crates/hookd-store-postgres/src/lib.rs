//! hookd-store-postgres: the backend for scale and for several nodes.
//!
//! Any number of `hookd serve` nodes share one PostgreSQL database and coordinate only through
//! it: every node serves the API and dispatches, and the delivery queue splits the work with
//! leases taken by `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`, so two nodes
//! never claim the same delivery and a node that dies only delays its deliveries until their
//! leases run out. Each [`Store`](hookd_store::Store) call that writes several rows
//! (`create_message`, `record_attempts`, deletes) runs in one transaction.
//!
//! Because the database is shared, nothing here may assume it is the only user:
//! [`QueueStore::release_stale_leases`](hookd_store::QueueStore::release_stale_leases) does nothing (a
//! starting node cannot tell a dead node's lease from a live one's), and the idempotency claim
//! is decided by the database (`INSERT … ON CONFLICT`), never by a read followed by a write.
//!
//! The schema lives in the first schema of the connections' `search_path`
//! ([`PostgresOptions::schema`] sets it), so one database can hold several installations; the
//! migrations never name a schema. They are embedded in the binary and applied by
//! [`PostgresStore::connect`] or [`PostgresStore::migrate`], one transaction each, under an
//! advisory lock so nodes starting together apply each migration once.
//!
//! No TLS: the driver is built without it, so hookd reaches PostgreSQL over a trusted network
//! or a local socket (or through a TLS-terminating proxy).
//!
//! Module map: [`migrate`] (the embedded migrations and their runner), `error` (driver errors
//! to [`StoreError`]), `pool` (the connections, taken for a read, a write or bookkeeping; every
//! write passes the request's write gate there, once), `rows` (row ↔ record mapping), `store`
//! (the capability traits' implementations, one file per trait).

mod error;
mod ingest;
pub mod migrate;
mod pool;
mod rows;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use hookd_store::{StoreError, StoreResult};
use sqlx::postgres::PgPoolOptions;

pub(crate) use error::map_err;

/// How to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Most connections the pool keeps open. Each node needs its own share of the server's
    /// `max_connections`.
    pub max_connections: u32,
    /// How long a call waits for a connection before failing as
    /// [`StoreError::Unavailable`] (the API then answers 503 instead of hanging).
    pub acquire_timeout: Duration,
    /// Schema holding hookd's tables, made the whole `search_path` of every connection; it must
    /// exist. `None` keeps the server's (or the URL's) `search_path`, usually `public`.
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    /// 16 connections, a 5 second wait for one, the server's `search_path`.
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            schema: None,
        }
    }
}

/// The shared store: a connection pool. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct PostgresStore {
    pool: pool::Pool,
    /// The LISTEN connection for [`QueueStore::wait_for_work`](hookd_store::QueueStore::wait_for_work),
    /// opened on first use and shared by the store's clones.
    listener: std::sync::Arc<tokio::sync::Mutex<Option<sqlx::postgres::PgListener>>>,
    /// Group commit for published messages, shared by the store's clones.
    ingest: ingest::Ingest,
    /// Seals endpoint secrets at rest when set.
    pub(crate) secrets: Option<std::sync::Arc<hookd_store::secrets::SecretBox>>,
}

/// The NOTIFY channel for due work; the payload is the schema, so installations sharing a
/// database wake only their own nodes.
pub(crate) const WORK_CHANNEL: &str = "hookd_work";

/// Shows the pool's state only: nothing that could carry the connection URL or its password
/// reaches a log.
impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.pool.admin().size())
            .field("idle", &self.pool.admin().num_idle())
            .field("closed", &self.pool.admin().is_closed())
            .finish()
    }
}

/// The connection settings of `url`. TLS is used when the URL asks for it (`sslmode=require`,
/// `verify-ca`, `verify-full`) or `PGSSLMODE` does; otherwise the store connects in plain text,
/// as to a server on the same host or a trusted network, and never pays for a TLS session it
/// did not ask for (`prefer`, the client's default, would take one whenever the server offers).
fn connect_options(url: &str) -> StoreResult<sqlx::postgres::PgConnectOptions> {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url).map_err(map_err)?;
    let asked = url.contains("sslmode=") || url.contains("ssl-mode=") || std::env::var_os("PGSSLMODE").is_some();
    Ok(if asked {
        options
    } else {
        options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    })
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/database`), applies pending migrations and
    /// returns the store. Fails as [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn connect(url: &str, options: PostgresOptions) -> StoreResult<PostgresStore> {
        let store = PostgresStore::connect_unmigrated(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema, e.g. for `hookd migrate` to apply and report the
    /// migrations itself through [`PostgresStore::migrate`]. Until the schema is migrated, any
    /// other call may fail.
    pub async fn connect_unmigrated(url: &str, options: PostgresOptions) -> StoreResult<PostgresStore> {
        let mut pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout);
        // Set per connection, before any statement is prepared on it (a SET rather than a
        // startup parameter, which poolers in front of the server may refuse):
        // - Every statement is planned for the tables as they are at each call. A prepared
        //   statement otherwise keeps the generic plan PostgreSQL settles on after five calls
        //   until the table's statistics change, and on a nearly empty table (a fresh
        //   installation) that plan is a sequential scan: kept while the table grew, each batch
        //   of attempt records walked every delivery (0.2–0.6 s at 100,000) and deliveries fell
        //   seconds behind. Statements are still parsed once per connection; planning each call
        //   costs nothing measurable next to one such walk (docs/performance.md). The two writes
        //   every delivery goes through are the exception: they run as functions that keep their
        //   plans, which cannot depend on the tables' size (migration 12).
        // - With a schema, every unqualified table name the store uses resolves to it;
        //   quote_ident keeps a schema name with capitals or punctuation one identifier.
        let schema = options.schema;
        pool = pool.after_connect(move |conn, _| {
            let schema = schema.clone();
            Box::pin(async move {
                sqlx::query(
                    "SELECT set_config('plan_cache_mode', 'force_custom_plan', false), \
                     CASE WHEN $1::text IS NOT NULL THEN set_config('search_path', quote_ident($1), false) END",
                )
                .bind(schema)
                .execute(conn)
                .await?;
                Ok(())
            })
        });
        // Connecting eagerly (one connection) makes a wrong URL or a down server fail here, at
        // start, rather than on the first request.
        let pool = pool::Pool::new(pool.connect_with(connect_options(url)?).await.map_err(map_err)?);
        Ok(PostgresStore {
            ingest: ingest::Ingest::start(pool.clone()),
            pool,
            listener: Default::default(),
            secrets: None,
        })
    }

    /// Seals endpoint secrets and sensitive header values with `secrets` from now on (and opens
    /// them with it).
    pub fn with_secrets(mut self, secrets: Option<std::sync::Arc<hookd_store::secrets::SecretBox>>) -> PostgresStore {
        self.secrets = secrets;
        self
    }

    /// Applies every embedded migration the database has not seen yet and returns their
    /// versions (empty when the schema was already current). Safe to run from several nodes
    /// at once.
    pub async fn migrate(&self) -> StoreResult<Vec<i64>> {
        migrate::run(self.pool.admin()).await
    }

    /// Closes every connection, waiting for calls in progress to return them.
    pub async fn close(&self) {
        self.pool.admin().close().await;
    }
}

/// `NotFound` when a statement meant to change one row changed none.
pub(crate) fn expect_one(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the store's connection is encrypted, per the server.
    async fn encrypted(url: &str) -> bool {
        let store = PostgresStore::connect_unmigrated(url, PostgresOptions::default())
            .await
            .expect("connect");
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool.read())
            .await
            .expect("read pg_stat_ssl")
    }

    #[tokio::test]
    async fn the_store_uses_tls_when_its_url_asks_and_only_then() {
        let Ok(url) = std::env::var("HOOKD_TEST_POSTGRES_URL") else {
            eprintln!("HOOKD_TEST_POSTGRES_URL is not set; the TLS test was not run");
            return;
        };
        let ssl_on: String = {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::query_scalar("SHOW ssl").fetch_one(&mut conn).await.unwrap()
        };
        assert!(
            !encrypted(&url).await,
            "no sslmode: plain text, even when the server offers TLS"
        );
        if ssl_on == "on" {
            let sep = if url.contains('?') { '&' } else { '?' };
            assert!(encrypted(&format!("{url}{sep}sslmode=require")).await);
        } else {
            eprintln!("the server has ssl off; only the plain-text half of the TLS test ran");
        }
    }
}
