//! The `hookd` command line: one module per subcommand.

pub mod catalog;
pub mod client;
pub mod listen;
pub mod migrate;
pub mod openapi;
pub mod prune;
pub mod receive;
pub mod secrets;
pub mod serve;
pub mod token;
pub mod trigger;
pub mod verify;

use std::path::PathBuf;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use hookd_store::Store;

/// hookd: self-hosted webhook delivery.
#[derive(Debug, Parser)]
#[command(name = "hookd", version, about)]
pub struct Cli {
    /// Log format on standard error: `text` or `json` (one object per line, ids as fields).
    #[arg(long, global = true, env = "HOOKD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API and the delivery engine.
    Serve(serve::ServeArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Check a webhook's signature against a secret (exit 0 valid, 1 invalid).
    Verify(verify::VerifyArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(migrate::MigrateArgs),
    /// Export or import the event catalog (JSON).
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Receive an application's webhooks on this machine: forward each delivery to a local URL.
    Listen(listen::ListenArgs),
    /// Publish a test event built from the catalog example.
    Trigger(trigger::TriggerArgs),
    /// Run a local mock receiver that prints and verifies webhooks.
    Receive(receive::ReceiveArgs),
    /// Print hookd's OpenAPI document (the event catalog as `webhooks`).
    Openapi(openapi::OpenapiArgs),
    /// Delete finished messages older than some days, with their deliveries and attempts.
    Prune(prune::PruneArgs),
    /// Encryption keys for endpoint secrets at rest.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
}

/// Flags shared by commands that open the database.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Config file (default: ./hookd.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory for the embedded database.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded database.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

impl StoreArgs {
    /// Loads the config and applies these flags.
    pub fn load(&self) -> anyhow::Result<crate::Config> {
        let mut config = crate::Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database {
            config.database = url.clone();
        }
        Ok(config)
    }
}

/// Parses `live` or `test`.
pub fn parse_environment(s: &str) -> Result<hookd_core::model::Environment, String> {
    hookd_core::model::Environment::parse(s).ok_or_else(|| format!("`{s}` is not an environment (live or test)"))
}

/// Opens (and migrates) the database `config` names: PostgreSQL for a `postgres://` URL,
/// otherwise the embedded SQLite file in the data directory.
pub async fn open_store(config: &crate::Config) -> anyhow::Result<Arc<dyn Store>> {
    let secrets = config.secrets.secret_box()?;
    if config.uses_postgres() {
        let schema = Some(config.storage.postgres_schema.clone()).filter(|s| !s.is_empty());
        let options = hookd_store_postgres::PostgresOptions {
            max_connections: config.storage.postgres_pool_size,
            schema,
            ..hookd_store_postgres::PostgresOptions::default()
        };
        return Ok(Arc::new(
            hookd_store_postgres::PostgresStore::connect(&config.database, options)
                .await?
                .with_secrets(secrets),
        ));
    }
    Ok(Arc::new(open_sqlite(config)?.with_secrets(secrets)))
}

/// Opens the embedded store for `config`.
pub fn open_sqlite(config: &crate::Config) -> anyhow::Result<hookd_store_sqlite::SqliteStore> {
    let synchronous = match config.storage.sqlite_synchronous.as_str() {
        "normal" => hookd_store_sqlite::Synchronous::Normal,
        _ => hookd_store_sqlite::Synchronous::Full,
    };
    Ok(hookd_store_sqlite::SqliteStore::open(
        &hookd_store_sqlite::SqliteOptions {
            path: config.database_path(),
            synchronous,
            cache_mib: config.storage.sqlite_cache_mib,
        },
    )?)
}
