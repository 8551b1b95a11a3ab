//! `hookd prune --older-than DAYS`: delete messages published more than DAYS ago, with their
//! deliveries and attempts, in batches. Messages with a delivery still waiting for an attempt (or
//! parked for a disabled endpoint) are kept. On PostgreSQL it runs beside serving nodes; the
//! embedded database must not be in use (set `retention.prune_after_days` to have `hookd serve`
//! prune on its own instead).

use super::StoreArgs;
use crate::clock::SystemClock;

/// Flags of `hookd prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Age in days above which finished messages are deleted.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub older_than: u32,
    /// Database and config location.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Prunes and prints how many messages went.
pub async fn run(args: PruneArgs) -> anyhow::Result<()> {
    let config = args.store.load()?;
    let store = super::open_store(&config).await?;
    let n = crate::retention::prune(store.as_ref(), &SystemClock, args.older_than).await?;
    println!("deleted {n} messages older than {} days", args.older_than);
    Ok(())
}
