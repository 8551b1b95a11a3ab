//! `hookd openapi`: print hookd's OpenAPI document, the event catalog as its `webhooks`.

use hookd_core::model::Environment;

use super::StoreArgs;
use crate::clock::{Clock, SystemClock};

/// Flags of `hookd openapi`.
#[derive(Debug, clap::Args)]
pub struct OpenapiArgs {
    /// Describe the catalog stored in the database (see --environment) instead of the
    /// built-in one.
    #[arg(long)]
    pub from_database: bool,
    /// Environment whose catalog to describe with --from-database: live or test.
    #[arg(long, default_value = "live", value_parser = super::parse_environment)]
    pub environment: Environment,
    /// Database and config location (with --from-database).
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Prints the document.
pub async fn run(args: OpenapiArgs) -> anyhow::Result<()> {
    let types = if args.from_database {
        let config = args.store.load()?;
        let store = super::open_store(&config).await?;
        crate::ops::event_types::all_event_types(store.as_ref(), args.environment, false).await?
    } else {
        let now = SystemClock.now();
        let mut types: Vec<_> = crate::catalog::builtin()
            .into_iter()
            .map(|t| crate::catalog::event_type_from(Environment::Live, t, now))
            .collect();
        types.sort_by(|a, b| a.name.cmp(&b.name));
        types
    };
    println!("{}", serde_json::to_string_pretty(&crate::openapi::spec(&types))?);
    Ok(())
}
