//! What every request handler and worker shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hookd_store::{Store, StoreResult};

pub use crate::cache::{AppCache, AppEndpoints, EndpointCache, TokenCache};
use crate::clock::Clock;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::operational::Notifier;

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Loaded configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Arc<dyn Store>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Hands work to the delivery engine.
    pub dispatcher: Dispatcher,
    /// Endpoints per application, for fan-out.
    pub endpoints: Arc<EndpointCache>,
    /// Recently verified tokens.
    pub tokens: Arc<TokenCache>,
    /// Recently resolved applications.
    pub apps: Arc<AppCache>,
    /// Queue of operational webhooks.
    pub notifier: Notifier,
    /// Compiled event type schemas.
    pub schemas: Arc<crate::catalog::SchemaCache>,
    /// `hookd listen` sessions connected to this node.
    pub relay: Arc<crate::relay::RelayHub>,
    /// Per-token request rate limit (`None` when turned off).
    pub limiter: Option<Arc<governor::DefaultKeyedRateLimiter<String>>>,
    /// Background tasks running on this node, per application.
    pub tasks: Arc<TaskSlots>,
    /// The last queue count, so scrapes count the queue at most every [`QUEUE_STATS_TTL`].
    queue_stats: Arc<tokio::sync::Mutex<Option<CountedQueue>>>,
}

/// Most background tasks (recover, replays) running at once for one application, per node.
pub const TASKS_PER_APP: usize = 2;
/// Most background tasks running at once on a node.
pub const TASKS_PER_NODE: usize = 32;

/// Background tasks running on this node, by application; bounded per application and in all.
#[derive(Debug, Default)]
pub struct TaskSlots {
    running: std::sync::Mutex<HashMap<String, usize>>,
}

/// A running task's place; given back when dropped.
#[derive(Debug)]
pub struct TaskSlot {
    slots: Arc<TaskSlots>,
    app_id: String,
}

impl TaskSlots {
    /// A place for a task of `app_id`, or `None` when that application or the node is full.
    pub fn try_take(self: &Arc<Self>, app_id: &str) -> Option<TaskSlot> {
        let mut running = self.running.lock().expect("task slots poisoned");
        let total: usize = running.values().sum();
        let mine = running.get(app_id).copied().unwrap_or(0);
        if mine >= TASKS_PER_APP || total >= TASKS_PER_NODE {
            return None;
        }
        *running.entry(app_id.to_string()).or_default() += 1;
        Some(TaskSlot {
            slots: self.clone(),
            app_id: app_id.to_string(),
        })
    }
}

impl Drop for TaskSlot {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.app_id) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.app_id);
            }
        }
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
    ) -> AppState {
        let (endpoints, apps) = caches;
        let limiter = std::num::NonZeroU32::new(config.api.rate_limit_per_sec).map(|rate| {
            let burst = std::num::NonZeroU32::new(config.api.rate_limit_burst.max(config.api.rate_limit_per_sec))
                .unwrap_or(rate);
            Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ))
        });
        AppState {
            limiter,
            queue_stats: Arc::default(),
            tasks: Arc::default(),
            config: Arc::new(config),
            endpoints,
            // Short: a token revoked on another node (or by `hookd token revoke`) stops working
            // within a second; revocations through this node clear the cache at once.
            tokens: Arc::new(TokenCache::new(store.clone(), Duration::from_secs(1))),
            schemas: Arc::new(crate::catalog::SchemaCache::new(store.clone(), Duration::from_secs(10))),
            relay: Arc::default(),
            apps,
            notifier,
            store,
            clock,
            dispatcher,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_tasks_are_bounded_per_application_and_per_node() {
        let slots = Arc::new(TaskSlots::default());
        let mine: Vec<TaskSlot> = (0..TASKS_PER_APP).filter_map(|_| slots.try_take("app_a")).collect();
        assert_eq!(mine.len(), TASKS_PER_APP);
        assert!(slots.try_take("app_a").is_none(), "the application's share is full");
        assert!(
            slots.try_take("app_b").is_some(),
            "another application still starts tasks"
        );
        drop(mine);
        assert!(slots.try_take("app_a").is_some(), "free again once they finish");
        let many: Vec<TaskSlot> = (0..TASKS_PER_NODE * 2)
            .filter_map(|i| slots.try_take(&format!("app_{i}")))
            .collect();
        assert_eq!(many.len(), TASKS_PER_NODE, "the node's bound holds across applications");
    }
}
