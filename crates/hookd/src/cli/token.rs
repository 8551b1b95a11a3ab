//! `hookd token create`: mint an admin API token.

use hookd_core::model::Environment;

use super::StoreArgs;
use crate::clock::{Clock, SystemClock};

/// Token subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an admin token and print it (and nothing else) on stdout.
    Create {
        /// Database and config location.
        #[command(flatten)]
        store: StoreArgs,
        /// Note stored with the token.
        #[arg(long, default_value = "created with hookd token create")]
        description: String,
        /// Environment the token acts in: live, or test (the sandbox).
        #[arg(long, default_value = "live", value_parser = super::parse_environment)]
        environment: Environment,
    },
}

/// Runs a token subcommand.
pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            store,
            description,
            environment,
        } => {
            let config = store.load()?;
            config.validate()?;
            let store = super::open_store(&config).await?;
            let token =
                crate::auth::create_admin_token(store.as_ref(), environment, &description, SystemClock.now()).await?;
            println!("{token}");
            Ok(())
        }
    }
}
