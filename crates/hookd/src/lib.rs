//! hookd: a self-hosted webhook delivery service.
//!
//! A platform publishes each event once through the Svix-compatible API; hookd stores it
//! durably, signs it with Standard Webhooks signatures, fans it out to every subscribed endpoint
//! and retries until it is delivered or visibly failed.
//!
//! Layers: each top-level module uses only modules on lines above its own, so the modules form
//! a directed acyclic graph (the test `tests::top_level_modules_form_the_layer_map` reads the
//! sources and fails on any `crate::` reference that breaks this map).
//!
//! 1. Leaves, using no other module:
//!    [`clock`] (time as an input, Svix timestamps), [`config`] (the configuration and its
//!    layered loading), [`auth`] (API tokens: generated, hashed, checked), [`metrics`]
//!    (Prometheus counters and histograms), [`catalog`] (the built-in event types,
//!    `EventTypeIn`, the compiled-schema cache), [`relay`] (`hookd listen` sessions),
//!    [`target`] (what every send to one endpoint shares: URL, credentials, keys, headers),
//!    [`traffic`] (traffic counted per minute for the dashboard's charts).
//! 2. [`cache`] (endpoints, tokens and applications cached on the hot path; an endpoint opened
//!    for sending carries its target), [`openapi`] (hookd's API description with the catalog as
//!    `webhooks`, and importing one;
//!    uses catalog), [`operational`] (the operational-webhook events and the sink that stores
//!    them in the outbox; uses clock), [`retention`] (payload expiry; uses clock).
//! 3. [`dispatch`]: claim → sign → send → record, with bounded concurrency and per-tenant
//!    shares; sees the store only through its queue capability (`hookd_store::QueueStore`),
//!    and uses the caches, the operational sink, relay, traffic, metrics, config, clock.
//! 4. [`ops`]: use-cases shared by the API and the CLI, every rule written once (including
//!    publishing the operational outbox). They take [`ops::Services`], a narrow struct of the
//!    store, clock, caches, dispatcher handle, operational sink and task slots, and use the
//!    layers below.
//! 5. [`state`]: `AppState`, what every request handler shares: the use-cases' services plus
//!    the HTTP surface's own (token cache, rate limiter, relay sessions, the `/metrics` queue
//!    count).
//! 6. Composition roots: [`api`] (the HTTP surface under `/api/v1`, `/metrics`; the only place
//!    API statuses are chosen), [`ui`] (the operator dashboard at `/`, server-rendered) and
//!    [`cli`] (one module per subcommand). [`start`] serves the dashboard's routes beside the
//!    API's.
//!
//! Libraries never bind sockets or read the environment: [`serve`] takes a bound listener, a
//! loaded config, a store and a shutdown token.

pub mod api;
pub mod auth;
pub mod cache;
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
pub mod target;
#[cfg(test)]
mod testing;
pub mod traffic;
pub mod ui;

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

/// Starts the API on `listener` and the delivery engine (on SQLite on threads of its own, at a
/// lower priority: [`dispatch::runtime`]); returns once both are running.
pub async fn start(
    listener: TcpListener,
    mut config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn clock::Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<Server> {
    // The address actually bound (a configured port 0 is chosen now), for links hookd makes.
    config.listen = listener.local_addr()?;
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
        (store.clone(), store.clone()),
        clock.clone(),
        caches.clone(),
        notifier.clone(),
        relay.clone(),
    )?;
    let (store_for_retention, clock_for_retention) = (store.clone(), clock.clone());
    let (traffic_counts, store_for_traffic): (_, Arc<dyn hookd_store::StatsStore>) =
        (dispatcher.traffic().clone(), store.clone());
    let prune_after_days = config.retention.prune_after_days;
    let (engine_nice, uses_postgres) = (config.delivery.engine_nice, config.uses_postgres());
    let state = state::AppState::new(config, store, clock, dispatcher.clone(), caches, notifier, relay);
    crate::metrics::handle();
    let metrics_listener = match state.config.metrics.listen.filter(|_| state.config.metrics.enabled) {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let metrics_app = api::metrics_router(state.clone());
    let operational_services = state.services.clone();
    let dashboard = state.config.dashboard.enabled.then(|| ui::router(&state.config));
    let app = api::router(state, dashboard);
    tracing::info!(addr = %listener.local_addr()?, "hookd listening");
    // On PostgreSQL the engine shares the API's runtime: its database connections are the API's
    // too, and each is driven by the runtime that opened it (`dispatch::runtime`).
    let engine = (!uses_postgres)
        .then(|| dispatch::runtime::EngineRuntime::start(engine_nice))
        .transpose()?;
    let task = tokio::spawn(async move {
        let tracker = tokio_util::task::TaskTracker::new();
        match &engine {
            Some(engine) => tracker.spawn_on(worker.run(shutdown.clone()), engine.handle()),
            None => tracker.spawn(worker.run(shutdown.clone())),
        };
        tracker.spawn(ops::outbox::run(operational_services, shutdown.clone()));
        tracker.spawn(traffic::run(traffic_counts, store_for_traffic, shutdown.clone()));
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
        // The engine has flushed what it owed; its runtime stops with whatever is left.
        drop(engine);
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    /// The layer of each top-level module, as the module docs above list them.
    const LAYERS: &[(&str, u8)] = &[
        ("clock", 1),
        ("config", 1),
        ("auth", 1),
        ("metrics", 1),
        ("catalog", 1),
        ("relay", 1),
        ("target", 1),
        ("traffic", 1),
        ("cache", 2),
        ("openapi", 2),
        ("operational", 2),
        ("retention", 2),
        ("dispatch", 3),
        ("ops", 4),
        ("state", 5),
        ("api", 6),
        ("cli", 6),
        ("ui", 6),
    ];

    /// Modules compiled for tests only, outside the map.
    const TEST_ONLY: &[&str] = &["testing"];

    /// The top-level modules each `crate::` path in `source` names (comments and the unit-test
    /// module left out).
    fn referenced(source: &str) -> Vec<String> {
        let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let code: String = code
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
        let mut found = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            if code[..at].ends_with('$') {
                continue;
            }
            let rest = &code[at + "crate::".len()..];
            match rest.strip_prefix('{') {
                None => found.push(ident(rest)),
                Some(group) => {
                    // `use crate::{a, b::c, d::{e, f}}`: the names at the group's first level.
                    let (mut depth, mut expect) = (0, true);
                    for (i, c) in group.char_indices() {
                        match c {
                            '{' => depth += 1,
                            '}' if depth == 0 => break,
                            '}' => depth -= 1,
                            ',' if depth == 0 => expect = true,
                            c if expect && depth == 0 && !c.is_whitespace() => {
                                found.push(ident(&group[i..]));
                                expect = false;
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        found
    }

    fn sources(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(&path).unwrap());
            }
        }
    }

    #[test]
    fn top_level_modules_form_the_layer_map() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
        let mut broken = Vec::new();
        let mut seen = 0;
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if name == "lib" || name == "main" || TEST_ONLY.contains(&name.as_str()) {
                continue;
            }
            let Some(&layer) = layers.get(name.as_str()) else {
                panic!("module `{name}` is not in the layer map (lib.rs docs and LAYERS)");
            };
            seen += 1;
            let mut files = Vec::new();
            if path.is_dir() {
                sources(&path, &mut files);
            } else {
                files.push(std::fs::read_to_string(&path).unwrap());
            }
            for used in files.iter().flat_map(|f| referenced(f)) {
                match layers.get(used.as_str()) {
                    Some(&l) if used != name && l >= layer => {
                        broken.push(format!("{name} (layer {layer}) uses {used} (layer {l})"))
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(seen, LAYERS.len(), "every module in the map exists");
        broken.sort();
        broken.dedup();
        assert!(
            broken.is_empty(),
            "references against the layer map:\n{}",
            broken.join("\n")
        );
    }

    #[test]
    fn the_dispatcher_sees_the_store_through_its_queue_and_fifo_capabilities_alone() {
        let mut files = Vec::new();
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dispatch"), &mut files);
        assert!(files.len() >= 5, "the dispatcher's sources are read");
        let others = [
            "Store>",
            "Store;",
            "Store,",
            "Store}",
            "CatalogStore",
            "MessageStore",
            "TokenStore",
            "RetentionStore",
            "OutboxStore",
            "StatsStore",
            "TaskStore",
            "IdempotencyStore",
            "prelude",
        ];
        let mut found = Vec::new();
        for file in &files {
            let code = file.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            for other in others {
                for (at, _) in code.match_indices(other) {
                    // `QueueStore>` and the like are the queue trait itself; `FifoStore` the
                    // FIFO lanes'.
                    if !code[..at].ends_with("Queue") && !code[..at].ends_with("Fifo") {
                        found.push(other);
                    }
                }
            }
        }
        assert!(found.is_empty(), "dispatch names other store capabilities: {found:?}");
        assert!(files.iter().any(|f| f.contains("Arc<dyn QueueStore>")));
    }

    #[test]
    fn references_are_read_from_paths_and_use_groups_but_not_comments() {
        let source = "use crate::{clock::Clock, ops::{a, b}, state};\n\
                      // crate::api in a comment\n\
                      let x = crate::cache::AppCache::new();\n\
                      macro_rules! m { () => { $crate::x } }\n\
                      #[cfg(test)]\nmod tests { use crate::api; }\n";
        assert_eq!(referenced(source), ["clock", "ops", "state", "cache"]);
    }
}
