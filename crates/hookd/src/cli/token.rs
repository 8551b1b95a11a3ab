//! `hookd token create|list|revoke`: API tokens. Only hashes are stored; a token's secret is
//! printed once, when it is created.

use hookd_core::model::Environment;

use super::StoreArgs;
use crate::auth::{create_token, NewToken};
use crate::clock::{Clock, SystemClock};

/// `--server` and `--token`: manage tokens through a running hookd's API (needed while the
/// embedded database is in use by `hookd serve`). The token must be an admin token of the
/// environment whose tokens are managed.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// A running hookd's base URL.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Admin token for --server.
    #[arg(long = "token", env = "HOOKD_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

impl Remote {
    fn client(&self) -> anyhow::Result<Option<super::client::ClientArgs>> {
        match (&self.server, &self.admin_token) {
            (None, _) => Ok(None),
            (Some(server), Some(token)) => Ok(Some(super::client::ClientArgs {
                server: server.clone(),
                token: token.clone(),
            })),
            (Some(_), None) => anyhow::bail!("--server needs --token (or HOOKD_TOKEN): an admin token"),
        }
    }
}

/// Token subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create an admin token and print it (and nothing else) on stdout.
    Create {
        /// Database and config location.
        #[command(flatten)]
        store: StoreArgs,
        /// Ask a running hookd instead of opening the database.
        #[command(flatten)]
        remote: Remote,
        /// Name shown by `hookd token list`.
        #[arg(long, alias = "description", default_value = "created with hookd token create")]
        name: String,
        /// Environment the token acts in: live, or test (the sandbox).
        #[arg(long, default_value = "live", value_parser = super::parse_environment)]
        environment: Environment,
        /// Days until the token stops working (default: never).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// List tokens: id, environment, scope, name, creation and expiry (never the secret).
    List {
        /// Database and config location.
        #[command(flatten)]
        store: StoreArgs,
        /// Ask a running hookd instead of opening the database.
        #[command(flatten)]
        remote: Remote,
        /// Only this environment.
        #[arg(long, value_parser = super::parse_environment)]
        environment: Option<Environment>,
    },
    /// Revoke a token by id (`tok_…`); it is refused from then on.
    Revoke {
        /// The token's id, as `hookd token list` shows it.
        id: String,
        /// Database and config location.
        #[command(flatten)]
        store: StoreArgs,
        /// Ask a running hookd instead of opening the database.
        #[command(flatten)]
        remote: Remote,
    },
}

/// Runs a token subcommand.
pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            store,
            remote,
            name,
            environment,
            expires_in_days,
        } => {
            if let Some(api) = remote.client()? {
                // The server mints the environment asked for or refuses (a test admin token
                // cannot mint live tokens); never silently another one.
                let mut body = serde_json::json!({ "name": name, "environment": environment.as_str() });
                if let Some(d) = expires_in_days {
                    body["expiresInDays"] = d.into();
                }
                let out = api
                    .call(reqwest::Method::POST, "/api/v1/auth/token", Some(&body))
                    .await?;
                let token = out["token"].as_str().unwrap_or_default();
                if out["environment"].as_str() != Some(environment.as_str()) || token.is_empty() {
                    anyhow::bail!("the server did not create a {} token: {out}", environment.as_str());
                }
                println!("{token}");
                return Ok(());
            }
            let config = store.load()?;
            config.validate()?;
            let store = super::open_store(&config).await?;
            let now = SystemClock.now();
            let new = NewToken {
                env: environment,
                app_id: None,
                name: &name,
                expires_at: expires_in_days.map(|d| now + chrono::Duration::days(i64::from(d))),
            };
            let (_, token) = create_token(store.as_ref(), new, now).await?;
            println!("{token}");
            Ok(())
        }
        TokenCommand::List {
            store,
            remote,
            environment,
        } => {
            let tokens = match remote.client()? {
                Some(api) => {
                    let path = match environment {
                        Some(env) => format!("/api/v1/auth/token?environment={}", env.as_str()),
                        None => "/api/v1/auth/token".to_string(),
                    };
                    from_api(&api.call(reqwest::Method::GET, &path, None).await?)?
                }
                None => {
                    let config = store.load()?;
                    super::open_store(&config).await?.list_tokens().await?
                }
            };
            let now = SystemClock.now();
            println!(
                "{:<32} {:<5} {:<34} {:<20} {:<20} NAME",
                "ID", "ENV", "SCOPE", "CREATED", "EXPIRES"
            );
            for t in tokens {
                if environment.is_some_and(|e| e != t.env) {
                    continue;
                }
                let expires = match t.expires_at {
                    None => "never".to_string(),
                    Some(at) if at <= now => format!("expired {}", at.format("%Y-%m-%d")),
                    Some(at) => at.format("%Y-%m-%d %H:%M").to_string(),
                };
                println!(
                    "{:<32} {:<5} {:<34} {:<20} {:<20} {}",
                    t.id,
                    t.env.as_str(),
                    t.app_id.as_deref().unwrap_or("admin"),
                    t.created_at.format("%Y-%m-%d %H:%M"),
                    expires,
                    t.description
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id, store, remote } => {
            if let Some(api) = remote.client()? {
                api.call(reqwest::Method::DELETE, &format!("/api/v1/auth/token/{id}"), None)
                    .await?;
                println!("revoked {id}");
                return Ok(());
            }
            let config = store.load()?;
            let store = super::open_store(&config).await?;
            if !store.delete_token(&id).await? {
                anyhow::bail!("no token with id {id}");
            }
            println!("revoked {id}; running servers refuse it within a second");
            Ok(())
        }
    }
}

/// Tokens from `GET /api/v1/auth/token`.
fn from_api(body: &serde_json::Value) -> anyhow::Result<Vec<hookd_store::TokenRecord>> {
    let parse_time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    body["data"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|t| hookd_store::TokenRecord {
                    id: t["id"].as_str().unwrap_or_default().to_string(),
                    hash: String::new(),
                    env: t["environment"]
                        .as_str()
                        .and_then(Environment::parse)
                        .unwrap_or(Environment::Live),
                    app_id: t["appId"].as_str().map(str::to_string),
                    description: t["name"].as_str().unwrap_or_default().to_string(),
                    created_at: parse_time(&t["createdAt"]).unwrap_or_default(),
                    expires_at: parse_time(&t["expiresAt"]),
                })
                .collect()
        })
        .ok_or_else(|| anyhow::anyhow!("unexpected answer from hookd: {body}"))
}
