//! Test support (feature `testing`): a throw-away PostgreSQL schema per test, so tests run in
//! parallel on one database without seeing each other, and nothing is left behind.

use sqlx::{Connection, PgConnection};

use crate::PostgresOptions;

/// A throw-away schema; dropping it drops the schema with everything in it.
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// Creates a fresh, empty schema on its own connection; panics when the server cannot be
    /// reached (a test cannot go on without it).
    pub async fn create(url: &str) -> TestSchema {
        let name = format!("hookd_t_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect(url)
            .await
            .expect("connect to HOOKD_TEST_POSTGRES_URL");
        sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test schema");
        let _ = conn.close().await;
        TestSchema {
            url: url.to_string(),
            name,
        }
    }

    /// Options for a store living in this schema. The connections carry the schema's name as
    /// their application_name, so the guard can find any that outlive the store.
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions {
            max_connections: 4,
            schema: Some(self.name.clone()),
            ..PostgresOptions::default()
        }
    }

    /// The URL the store connects with: the schema's name as application_name.
    pub fn store_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}application_name={}", self.url, self.name)
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ends every connection still tagged with this schema, then drops it.
    async fn drop_now(url: &str, name: &str) -> Result<(), sqlx::Error> {
        let mut conn = PgConnection::connect(url).await?;
        // The store's pool is dropped just before this runs, but its connections close in the
        // background on the test's runtime, which is blocked waiting for us: one still inside
        // a transaction would hold locks the DROP waits on forever. Ending them is safe, the
        // test is over.
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(name)
            .execute(&mut conn)
            .await?;
        sqlx::raw_sql(&format!(
            "SET lock_timeout = '30s'; DROP SCHEMA IF EXISTS {name} CASCADE"
        ))
        .execute(&mut conn)
        .await?;
        conn.close().await
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop cannot await, and the test's own runtime is single-threaded and busy running
        // this very drop: run the cleanup on a thread with a runtime of its own, and wait.
        let (url, name) = (self.url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let result = runtime
                .map_err(sqlx::Error::Io)
                .and_then(|rt| rt.block_on(TestSchema::drop_now(&url, &name)));
            if let Err(e) = result {
                // Never panic here: this may run while a failed test unwinds.
                eprintln!("could not drop test schema {name}: {e}");
            }
        });
        let _ = cleanup.join();
    }
}
