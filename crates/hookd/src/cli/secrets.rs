//! `hookd secrets generate-key|rotate`: keys for endpoint secrets at rest.
//!
//! Rolling to a new key: set `secrets.main_key` to the new key and `secrets.previous_keys` to
//! the old one (nodes keep reading what the old key sealed and seal with the new one), run
//! `hookd secrets rotate` to re-seal every endpoint under the new key, then drop the old key.

use hookd_core::model::Environment;
use hookd_store::PageRequest;

use super::StoreArgs;

/// Secrets subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// Print a new random key (base64 of 32 bytes) for `secrets.main_key`.
    GenerateKey,
    /// Re-seal every endpoint's secrets under `secrets.main_key` (reading with it and
    /// `secrets.previous_keys`); also seals secrets stored before a key was set.
    Rotate {
        /// Database and config location.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a secrets subcommand.
pub async fn run(cmd: SecretsCommand) -> anyhow::Result<()> {
    match cmd {
        SecretsCommand::GenerateKey => {
            println!("{}", hookd_store::secrets::generate_key());
            Ok(())
        }
        SecretsCommand::Rotate { store } => {
            let config = store.load()?;
            config.validate()?;
            if config.secrets.main_key.is_empty() {
                anyhow::bail!("set secrets.main_key (HOOKD_SECRETS__MAIN_KEY) to the key to seal with");
            }
            let store = super::open_store(&config).await?;
            let mut endpoints = 0;
            for env in [Environment::Live, Environment::Test] {
                let mut page = PageRequest::first(250, true);
                loop {
                    let apps = store.list_applications(env, &page).await?;
                    for app in &apps.items {
                        for e in store.all_endpoints(&app.id).await? {
                            store.update_endpoint(&e).await?;
                            endpoints += 1;
                        }
                    }
                    match (apps.has_more, apps.items.last()) {
                        (true, Some(last)) => {
                            page.cursor = Some(hookd_store::Cursor {
                                key: last.id.clone(),
                                backwards: false,
                            })
                        }
                        _ => break,
                    }
                }
            }
            println!("re-sealed the secrets of {endpoints} endpoints");
            Ok(())
        }
    }
}
