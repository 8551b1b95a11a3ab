//! `hookd migrate`: apply the schema migrations of the configured database and exit, so an
//! upgrade can migrate once before the new version's nodes start.

use super::StoreArgs;

/// Flags of `hookd migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Database and config location.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Opening a store runs its pending migrations; this opens it and reports.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let config = args.store.load()?;
    config.validate()?;
    super::open_store(&config).await?;
    let target = if config.uses_postgres() { "PostgreSQL" } else { "SQLite" };
    eprintln!("hookd: {target} schema is up to date");
    Ok(())
}
