//! hookd: a self-hosted webhook delivery service.
//!
//! A platform publishes each event once through the Svix-compatible API; hookd stores it
//! durably, signs it with Standard Webhooks signatures, fans it out to every subscribed endpoint
//! and retries until it is delivered or visibly failed.
//!
//! Layout:
//! - [`config`]: the one configuration struct and its layered loading.
//! - [`state`]: what every request and worker shares (store, caches, clock, dispatcher handle).
//! - [`ops`]: use-cases shared by the API and the CLI; every rule is written once here.
//! - [`api`]: the HTTP surface under `/api/v1`; the only place HTTP statuses are chosen.
//! - [`dispatch`]: claim → sign → send → record, with bounded concurrency.
//! - [`auth`]: API tokens (generated, hashed, checked).
//! - [`catalog`]: the built-in event types, examples, and the compiled-schema cache.
//! - [`openapi`]: hookd's API description with the catalog as `webhooks`, and importing one.
//! - [`metrics`]: Prometheus counters, histograms and scrape-time queue gauges.
//! - [`operational`]: operational webhooks (hookd reporting on its own deliveries).
//! - [`relay`]: `hookd listen` sessions, deliveries carried over the CLI's WebSocket.
//! - [`retention`]: removes payloads whose retention period has ended.
//! - [`cli`]: one module per subcommand.
//!
//! Libraries never bind sockets or read the environment: [`serve`] takes a bound listener, a
//! loaded config, a store and a shutdown token.

pub mod api;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod metrics;
pub mod openapi;
pub mod operational;
pub mod ops;
pub mod relay;
pub mod retention;
pub mod state;
#[cfg(test)]
mod testing;

use std::sync::Arc;

use hookd_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// A running hookd: the API is served and the dispatcher works until the shutdown token is
/// cancelled; [`Server::wait`] then returns once in-flight work is flushed.
pub struct Server {
    /// Handle to the delivery engine (wake it, watch recorded attempts).
    pub dispatcher: dispatch::Dispatcher,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Waits until the server has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await?
    }
}

/// Starts the API on `listener` and the delivery engine; returns once both are running.
pub async fn start(
    listener: TcpListener,
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn clock::Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<Server> {
    if config.secrets.main_key.is_empty() {
        tracing::warn!(
            "secrets.main_key is not set: endpoint secrets and sensitive headers are stored unencrypted \
             (create a key with `hookd secrets generate-key`)"
        );
    }
    let released = store.release_stale_leases(clock.now()).await?;
    if let Err(e) = store.listen_for_work().await {
        tracing::warn!(error = %e, "cannot listen for other nodes' work; polling only until it can");
    }
    if released > 0 {
        tracing::info!(released, "resuming deliveries left in flight by the previous run");
    }
    if config.catalog.builtin {
        for env in [
            hookd_core::model::Environment::Live,
            hookd_core::model::Environment::Test,
        ] {
            let loaded = catalog::seed(store.as_ref(), env, clock.now()).await?;
            if loaded > 0 {
                tracing::info!(env = env.as_str(), loaded, "loaded the built-in event catalog");
            }
        }
    }
    let ttl = std::time::Duration::from_secs(10);
    let caches = (
        Arc::new(state::EndpointCache::new(store.clone(), ttl)),
        Arc::new(state::AppCache::new(store.clone(), ttl)),
    );
    let notifier = if config.operational_webhook.url.is_empty() {
        operational::Notifier::default()
    } else {
        operational::Notifier::to_outbox(store.clone(), clock.clone())
    };
    let relay = Arc::new(relay::RelayHub::default());
    let (dispatcher, worker) = dispatch::Dispatcher::new(
        (&config.delivery, &config.sandbox),
        store.clone(),
        clock.clone(),
        caches.clone(),
        notifier.clone(),
        relay.clone(),
    )?;
    let (store_for_retention, clock_for_retention) = (store.clone(), clock.clone());
    let prune_after_days = config.retention.prune_after_days;
    let mut state = state::AppState::new(config, store, clock, dispatcher.clone(), caches, notifier);
    state.relay = relay;
    crate::metrics::handle();
    let metrics_listener = match state.config.metrics.listen.filter(|_| state.config.metrics.enabled) {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let metrics_app = api::metrics_router(state.clone());
    let operational_state = state.clone();
    let app = api::router(state);
    tracing::info!(addr = %listener.local_addr()?, "hookd listening");
    let task = tokio::spawn(async move {
        let tracker = tokio_util::task::TaskTracker::new();
        tracker.spawn(worker.run(shutdown.clone()));
        tracker.spawn(operational::run(operational_state, shutdown.clone()));
        tracker.spawn(retention::run(
            store_for_retention,
            clock_for_retention,
            prune_after_days,
            shutdown.clone(),
        ));
        if let Some(ml) = metrics_listener {
            let token = shutdown.clone();
            tracker.spawn(async move {
                let served = axum::serve(ml, metrics_app)
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            });
        }
        let token = shutdown.clone();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
        served.map_err(anyhow::Error::from)
    });
    Ok(Server { dispatcher, task })
}

/// Runs the API and the dispatcher until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn clock::Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    start(listener, config, store, clock, shutdown).await?.wait().await
}
