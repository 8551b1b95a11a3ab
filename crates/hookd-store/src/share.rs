//! Places shared out per application, bounded per application and in all.
//!
//! A backend that queues publishes for a writer (SQLite's writer thread, PostgreSQL's group
//! commit) takes a [`Place`] in the publishing application's share before queueing, so when the
//! database slows down one tenant's burst is refused (503) once it holds its share, while other
//! tenants' publishes still queue. The API's background tasks are bounded the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{StoreError, StoreResult};

/// Places held now, per application and in all.
#[derive(Debug, Clone)]
pub struct AppShares {
    held: Arc<Mutex<Held>>,
    per_app: usize,
    total: usize,
}

#[derive(Debug, Default)]
struct Held {
    /// An application holding none has no entry, so the map has at most one entry per place.
    /// Its places share the key's text.
    by_app: HashMap<Arc<str>, usize>,
    total: usize,
}

/// One place in an application's share, given back when dropped.
#[derive(Debug)]
pub struct Place {
    held: Arc<Mutex<Held>>,
    app_id: Arc<str>,
}

impl AppShares {
    /// Shares of `per_app` places each, `total` in all.
    pub fn new(per_app: usize, total: usize) -> AppShares {
        AppShares {
            held: Arc::default(),
            per_app,
            total,
        }
    }

    /// A place in `app_id`'s share, or `None` when that share or the total is full.
    pub fn try_place(&self, app_id: &str) -> Option<Place> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        // One lookup for the check and the key: an application already holding places lends
        // its key, so no allocation.
        let holding = held.by_app.get_key_value(app_id).map(|(key, n)| (key.clone(), *n));
        if held.total >= self.total || holding.as_ref().is_some_and(|(_, n)| *n >= self.per_app) {
            return None;
        }
        held.total += 1;
        let key = holding.map_or_else(|| Arc::from(app_id), |(key, _)| key);
        *held.by_app.entry(key.clone()).or_default() += 1;
        Some(Place {
            held: self.held.clone(),
            app_id: key,
        })
    }

    /// A place for one of `app_id`'s publishes waiting to be stored, or `Unavailable` (503)
    /// when it has none left.
    pub fn publish_place(&self, app_id: &str) -> StoreResult<Place> {
        self.try_place(app_id).ok_or_else(|| {
            StoreError::Unavailable("too many of this application's messages are waiting to be stored".into())
        })
    }

    /// Applications holding places now.
    #[cfg(test)]
    fn holders(&self) -> usize {
        self.held.lock().unwrap().by_app.len()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.total -= 1;
        if let Some(n) = held.by_app.get_mut(&self.app_id) {
            *n -= 1;
            if *n == 0 {
                held.by_app.remove(&self.app_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_share_refuses_its_application_alone_and_a_freed_place_is_given_back() {
        let shares = AppShares::new(2, usize::MAX);
        let mut held: Vec<Place> = (0..2).map(|_| shares.publish_place("app_a").unwrap()).collect();
        assert!(matches!(shares.publish_place("app_a"), Err(StoreError::Unavailable(_))));
        let other = shares.publish_place("app_b").expect("another application still queues");
        held.pop();
        let again = shares.publish_place("app_a").expect("a freed place is given back");
        drop((again, other));
        assert_eq!(shares.holders(), 1, "app_a still holds one place; app_b none");
        drop(held);
        assert_eq!(
            shares.holders(),
            0,
            "no entry is kept for an application without places"
        );
    }

    #[test]
    fn the_total_bounds_every_application_together() {
        let shares = AppShares::new(2, 3);
        let held: Vec<Place> = ["a", "b", "c"].iter().filter_map(|app| shares.try_place(app)).collect();
        assert_eq!(held.len(), 3);
        assert!(shares.try_place("d").is_none(), "the total is full");
        drop(held);
        assert!(shares.try_place("d").is_some(), "free again once given back");
    }
}
