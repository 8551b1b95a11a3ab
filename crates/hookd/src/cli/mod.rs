//! The `hookd` command line: one module per subcommand.

pub mod serve;
pub mod token;
pub mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// hookd: self-hosted webhook delivery.
#[derive(Debug, Parser)]
#[command(name = "hookd", version, about)]
pub struct Cli {
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
}

impl StoreArgs {
    /// Loads the config and applies these flags.
    pub fn load(&self) -> anyhow::Result<crate::Config> {
        let mut config = crate::Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }
}

/// Opens the embedded store for `config`.
pub fn open_store(config: &crate::Config) -> anyhow::Result<hookd_store_sqlite::SqliteStore> {
    let synchronous = match config.storage.sqlite_synchronous.as_str() {
        "normal" => hookd_store_sqlite::Synchronous::Normal,
        _ => hookd_store_sqlite::Synchronous::Full,
    };
    Ok(hookd_store_sqlite::SqliteStore::open(
        &hookd_store_sqlite::SqliteOptions {
            path: config.database_path(),
            synchronous,
        },
    )?)
}
