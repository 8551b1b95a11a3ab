//! `hookd serve`: run the API and the delivery engine.

use std::net::SocketAddr;
use std::sync::Arc;

use hookd_core::model::Environment;
use tokio_util::sync::CancellationToken;

use super::StoreArgs;
use crate::clock::{Clock, SystemClock};

/// Flags of `hookd serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8071).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Database and config location.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.store.load()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.validate()?;
    let first_start = if config.uses_postgres() {
        false
    } else {
        !config.database_path().exists()
    };
    let store = super::open_store(&config).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if first_start {
        // Both environments get an admin token at once, so the sandbox can be tried while
        // `serve` holds the embedded database (the quickstart uses the test token).
        let now = clock.now();
        let live =
            crate::auth::create_admin_token(store.as_ref(), Environment::Live, "created at first start", now).await?;
        let test =
            crate::auth::create_admin_token(store.as_ref(), Environment::Test, "created at first start", now).await?;
        println!(
            "hookd: created {} — admin tokens (shown once)",
            config.database_path().display()
        );
        println!("hookd: live environment (production):");
        println!("{live}");
        println!("hookd: test environment (sandbox: http:// and local endpoints allowed):");
        println!("{test}");
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        trigger.cancel();
    });
    let server = crate::start(listener, config, store, clock, shutdown).await?;
    // Printed once start-up (migrations, the first-start catalog) is done.
    println!("hookd: listening on http://{addr}");
    server.wait().await
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
