//! What every request handler shares: the use-cases' [`Services`] plus the HTTP surface's own
//! state.

use std::sync::Arc;
use std::time::Duration;

use hookd_store::{Store, StoreResult};

pub use crate::cache::{AppCache, AppEndpoints, EndpointCache, TokenCache};
use crate::clock::Clock;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::operational::Notifier;
pub use crate::ops::services::{Services, TaskSlot, TaskSlots, TASKS_PER_APP, TASKS_PER_NODE};

/// Shared application state; one reference count to clone (every request's extractors and
/// middleware clone it). Dereferences to [`SharedState`] and through it to the [`Services`] it
/// holds, so a handler passes `&state` to a use-case.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What an [`AppState`] points to.
pub struct SharedState {
    /// What use-cases need.
    pub services: Services,
    /// Recently verified tokens.
    pub tokens: Arc<TokenCache>,
    /// `hookd listen` sessions connected to this node.
    pub relay: Arc<crate::relay::RelayHub>,
    /// Per-token request rate limit (`None` when turned off).
    pub limiter: Option<Arc<governor::DefaultKeyedRateLimiter<String>>>,
    /// The last queue count, so scrapes count the queue at most every [`QUEUE_STATS_TTL`].
    queue_stats: Arc<tokio::sync::Mutex<Option<CountedQueue>>>,
}

impl std::ops::Deref for SharedState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// A queue count and when (by hookd's clock) it was taken.
type CountedQueue = (chrono::DateTime<chrono::Utc>, hookd_store::QueueStats);

/// Most pending (and, separately, parked) deliveries a queue count looks at: a scrape costs the
/// same however long the queue is; beyond it the counts read as this many and
/// `hookd_queue_counts_capped` is 1.
pub const QUEUE_COUNT_CAP: usize = 100_000;

/// How long a queue count serves `/metrics` before it is taken again: however many scrapers,
/// the queue table is counted at most this often.
pub const QUEUE_STATS_TTL: Duration = Duration::from_secs(10);

impl AppState {
    /// The queue as counted at most [`QUEUE_STATS_TTL`] ago.
    pub async fn queue_stats(&self) -> StoreResult<hookd_store::QueueStats> {
        let now = self.clock.now();
        let mut cached = self.queue_stats.lock().await;
        if let Some((at, stats)) = cached.as_ref() {
            if (now - *at).to_std().is_ok_and(|age| age < QUEUE_STATS_TTL) {
                return Ok(stats.clone());
            }
        }
        let stats = self.store.queue_stats(now, QUEUE_COUNT_CAP).await?;
        *cached = Some((now, stats.clone()));
        Ok(stats)
    }
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        dispatcher: Dispatcher,
        caches: (Arc<EndpointCache>, Arc<AppCache>),
        notifier: Notifier,
        relay: Arc<crate::relay::RelayHub>,
    ) -> AppState {
        let (endpoints, apps) = caches;
        let limiter = std::num::NonZeroU32::new(config.api.rate_limit_per_sec).map(|rate| {
            let burst = std::num::NonZeroU32::new(config.api.rate_limit_burst.max(config.api.rate_limit_per_sec))
                .unwrap_or(rate);
            Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ))
        });
        AppState(Arc::new(SharedState {
            limiter,
            queue_stats: Arc::default(),
            // Short: a token revoked on another node (or by `hookd token revoke`) stops working
            // within a second; revocations through this node clear the cache at once.
            tokens: Arc::new(TokenCache::new(store.clone(), Duration::from_secs(1))),
            relay,
            services: Services {
                tasks: Arc::default(),
                config: Arc::new(config),
                endpoints,
                schemas: Arc::new(crate::catalog::SchemaCache::new(store.clone(), Duration::from_secs(10))),
                apps,
                notifier,
                store,
                clock,
                dispatcher,
            },
        }))
    }
}
