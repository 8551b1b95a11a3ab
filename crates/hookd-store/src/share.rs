//! Each application's share of a bounded write queue.
//!
//! A backend that queues publishes for a writer (SQLite's writer thread, PostgreSQL's group
//! commit) bounds the queue in total and takes a [`Place`] in the publishing application's
//! share before queueing, so when the database slows down one tenant's burst is refused (503)
//! once it holds its share, while other tenants' publishes still queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{StoreError, StoreResult};

/// Publishes waiting or being written, per application.
#[derive(Clone)]
pub struct AppShares {
    /// Count per application; an application with none has no entry, so the map holds at
    /// most one entry per waiting publish.
    waiting: Arc<Mutex<HashMap<String, usize>>>,
    per_app: usize,
}

/// One publish's place in its application's share, given back when dropped.
pub struct Place {
    waiting: Arc<Mutex<HashMap<String, usize>>>,
    app_id: String,
}

impl AppShares {
    /// Shares of `per_app` places each.
    pub fn new(per_app: usize) -> AppShares {
        AppShares {
            waiting: Arc::default(),
            per_app,
        }
    }

    /// A place in `app_id`'s share, or `Unavailable` when it has none left.
    pub fn place(&self, app_id: &str) -> StoreResult<Place> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let n = waiting.entry(app_id.to_string()).or_default();
        if *n >= self.per_app {
            return Err(StoreError::Unavailable(
                "too many of this application's messages are waiting to be stored".into(),
            ));
        }
        *n += 1;
        Ok(Place {
            waiting: self.waiting.clone(),
            app_id: app_id.to_string(),
        })
    }

    /// Applications holding places now.
    #[cfg(test)]
    fn holders(&self) -> usize {
        self.waiting.lock().unwrap().len()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = waiting.get_mut(&self.app_id) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&self.app_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_share_refuses_its_application_alone_and_a_freed_place_is_given_back() {
        let shares = AppShares::new(2);
        let mut held: Vec<Place> = (0..2).map(|_| shares.place("app_a").unwrap()).collect();
        assert!(matches!(shares.place("app_a"), Err(StoreError::Unavailable(_))));
        let other = shares.place("app_b").expect("another application still queues");
        held.pop();
        let again = shares.place("app_a").expect("a freed place is given back");
        drop((again, other));
        assert_eq!(shares.holders(), 1, "app_a still holds one place; app_b none");
        drop(held);
        assert_eq!(
            shares.holders(),
            0,
            "no entry is kept for an application without places"
        );
    }
}
