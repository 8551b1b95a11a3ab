//! `hookd catalog export|import`: the event catalog of an environment as a JSON array of event
//! types (Svix `EventTypeIn` objects: name, description, groupName, featureFlag, deprecated,
//! archived, schemas), for review, version control and copying between installations.

use std::path::PathBuf;

use anyhow::Context;
use hookd_core::model::Environment;

use super::StoreArgs;
use crate::clock::{Clock, SystemClock};

/// Catalog subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Print every event type of the environment (archived ones included) as JSON.
    Export {
        /// Environment: live or test.
        #[arg(long, default_value = "live", value_parser = super::parse_environment)]
        environment: Environment,
        /// Database and config location.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create or replace event types from a JSON file (an array of event types).
    Import {
        /// The file, as written by `hookd catalog export`.
        file: PathBuf,
        /// Environment: live or test.
        #[arg(long, default_value = "live", value_parser = super::parse_environment)]
        environment: Environment,
        /// Database and config location.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a catalog subcommand.
pub async fn run(cmd: CatalogCommand) -> anyhow::Result<()> {
    match cmd {
        CatalogCommand::Export { environment, store } => {
            let config = store.load()?;
            let store = super::open_store(&config).await?;
            let types = crate::ops::event_types::all_event_types(store.as_ref(), environment, true).await?;
            let out: Vec<serde_json::Value> = types.into_iter().map(crate::catalog::export_entry).collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        CatalogCommand::Import {
            file,
            environment,
            store,
        } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let types = crate::catalog::parse_import(&text).map_err(anyhow::Error::msg)?;
            let config = store.load()?;
            let store = super::open_store(&config).await?;
            let n = crate::catalog::import(store.as_ref(), environment, types, SystemClock.now()).await?;
            println!("imported {n} event types into the {} environment", environment.as_str());
            Ok(())
        }
    }
}
