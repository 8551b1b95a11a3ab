//! The services every use-case works with: a narrow view of what the composition roots hold.

use std::sync::Arc;

use hookd_store::share::{AppShares, Place};
use hookd_store::Store;

use crate::cache::{AppCache, EndpointCache};
use crate::catalog::SchemaCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::operational::Notifier;

/// What use-cases need: the store, time, the caches, the delivery engine's handle, the
/// operational sink and the node's background-task slots. Cheap to clone. The HTTP surface's
/// own state (token cache, rate limiter, relay sessions, the queue count for `/metrics`) is not
/// here: [`AppState`](crate::state::AppState) adds it.
#[derive(Clone)]
pub struct Services {
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
    /// Recently resolved applications.
    pub apps: Arc<AppCache>,
    /// Queue of operational webhooks.
    pub notifier: Notifier,
    /// Compiled event type schemas.
    pub schemas: Arc<SchemaCache>,
    /// Background tasks running on this node, per application.
    pub tasks: Arc<TaskSlots>,
}

/// Most background tasks (recover, replays) running at once for one application, per node.
pub const TASKS_PER_APP: usize = 2;
/// Most background tasks running at once on a node.
pub const TASKS_PER_NODE: usize = 32;

/// Background tasks running on this node, by application; bounded per application and in all.
#[derive(Debug)]
pub struct TaskSlots(AppShares);

/// A running task's place; given back when dropped.
pub type TaskSlot = Place;

impl Default for TaskSlots {
    fn default() -> TaskSlots {
        TaskSlots(AppShares::new(TASKS_PER_APP, TASKS_PER_NODE))
    }
}

impl TaskSlots {
    /// A place for a task of `app_id`, or `None` when that application or the node is full.
    pub fn try_take(&self, app_id: &str) -> Option<TaskSlot> {
        self.0.try_place(app_id)
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
