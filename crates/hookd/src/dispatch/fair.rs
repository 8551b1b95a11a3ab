//! What one endpoint and one application may hold in this process's memory.
//!
//! Every delivery the engine takes (handed over fresh by the API, or claimed by the poller)
//! must first get a [`Hold`]: a place in its endpoint's share, its application's share and the
//! total. The shares are small next to the total, so one tenant's backlog (a throttled, slow,
//! failing or hostile endpoint with a burst behind it) can fill only its own share; the rest
//! of the total is always there for everybody else.
//!
//! A delivery that finds its share full is not queued in memory: its lease is given back and it
//! waits in the database. The poller then claims with [`ClaimBounds`] built from these shares,
//! so it asks the database only for what each endpoint and application can still take (and
//! nothing of an endpoint whose circuit is open or whose pacing is booked ahead): the
//! database, not a shared in-memory queue, is where a tenant's excess waits.
//!
//! Both maps hold only endpoints and applications with a delivery held right now, so they are
//! bounded by the total.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use hookd_store::ClaimBounds;
use tokio::sync::Notify;

/// The shares and what is held of them.
#[derive(Debug)]
pub(super) struct Fairness {
    /// Most deliveries held in total.
    total: usize,
    /// Most deliveries of one endpoint (before its pacing or circuit lowers it).
    endpoint_share: usize,
    /// Most deliveries of one application.
    app_share: usize,
    held: Mutex<Held>,
    /// The poller's wake-up: rung when an endpoint with work waiting in the database gets room.
    wake: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    endpoints: HashMap<String, usize>,
    apps: HashMap<String, usize>,
    /// Endpoints with more due work in the database than they could take (a delivery found
    /// their share full, or the last claim filled their room). At most `total` entries.
    waiting: HashSet<String>,
}

/// A delivery's place in memory; given back when dropped.
#[derive(Debug)]
pub(super) struct Hold {
    fair: Arc<Fairness>,
    endpoint: String,
    app: String,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = self.fair.held.lock().expect("fairness poisoned");
        held.total -= 1;
        release(&mut held.endpoints, &self.endpoint);
        release(&mut held.apps, &self.app);
        if held.waiting.contains(&self.endpoint) {
            // Room for work that waits in the database: claim it now, not at the next poll.
            self.fair.wake.notify_one();
        }
    }
}

fn release(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Fairness {
    /// `total` in all; `endpoint_share` and `app_share` for one endpoint and one application.
    /// `wake` is rung when an endpoint whose work waits in the database gets room.
    pub fn new(total: usize, endpoint_share: usize, app_share: usize, wake: Arc<Notify>) -> Arc<Fairness> {
        Arc::new(Fairness {
            total: total.max(1),
            endpoint_share: endpoint_share.clamp(1, total.max(1)),
            app_share: app_share.clamp(1, total.max(1)),
            held: Mutex::new(Held::default()),
            wake,
        })
    }

    /// Notes that `endpoint` has more due work in the database than the last claim took.
    pub fn note_waiting(&self, endpoint: &str) {
        let mut held = self.held.lock().expect("fairness poisoned");
        if held.waiting.len() < self.total {
            held.waiting.insert(endpoint.to_string());
        }
    }

    /// The endpoint's share: `limit` (from its pacing or circuit) when that is lower.
    fn endpoint_limit(&self, limit: Option<usize>) -> usize {
        limit.map_or(self.endpoint_share, |l| l.min(self.endpoint_share))
    }

    /// A place for a delivery of `endpoint` in `app`, or `None` when the endpoint's share (at
    /// most `limit`), the application's share or the total is used up.
    pub fn try_hold(self: &Arc<Self>, endpoint: &str, app: &str, limit: Option<usize>) -> Option<Hold> {
        let endpoint_limit = self.endpoint_limit(limit);
        let mut held = self.held.lock().expect("fairness poisoned");
        let of_endpoint = held.endpoints.get(endpoint).copied().unwrap_or(0);
        let of_app = held.apps.get(app).copied().unwrap_or(0);
        if held.total >= self.total || of_app >= self.app_share {
            return None;
        }
        if of_endpoint >= endpoint_limit {
            // Only a full endpoint share marks work waiting for this endpoint: a full
            // application or node must not make every finished delivery trigger a claim.
            if held.waiting.len() < self.total {
                held.waiting.insert(endpoint.to_string());
            }
            return None;
        }
        held.total += 1;
        *held.endpoints.entry(endpoint.to_string()).or_default() += 1;
        *held.apps.entry(app.to_string()).or_default() += 1;
        Some(Hold {
            fair: self.clone(),
            endpoint: endpoint.to_string(),
            app: app.to_string(),
        })
    }

    /// Room left in total.
    pub fn room(&self) -> usize {
        self.total - self.held.lock().expect("fairness poisoned").total
    }

    /// What a claim may take: each held endpoint's remaining room, `limits` lowering any
    /// endpoint's share (`Some(0)` skips it), and the applications whose share is used up.
    /// Forgets which endpoints had work waiting: the claim about to be made looks again.
    pub fn claim_bounds(&self, limits: &HashMap<String, usize>) -> ClaimBounds {
        let mut held = self.held.lock().expect("fairness poisoned");
        held.waiting.clear();
        let mut endpoint_room: HashMap<String, usize> = limits
            .iter()
            .map(|(id, limit)| (id.clone(), self.endpoint_limit(Some(*limit))))
            .collect();
        for (id, n) in &held.endpoints {
            let limit = self.endpoint_limit(limits.get(id).copied());
            endpoint_room.insert(id.clone(), limit.saturating_sub(*n));
        }
        let skip_apps = held
            .apps
            .iter()
            .filter(|(_, n)| **n >= self.app_share)
            .map(|(id, _)| id.clone())
            .collect();
        let app_room = held
            .apps
            .iter()
            .map(|(id, n)| (id.clone(), self.app_share.saturating_sub(*n)))
            .collect();
        ClaimBounds {
            per_endpoint: self.endpoint_share,
            endpoint_room,
            skip_apps,
            per_app: self.app_share,
            app_room,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_for_an_endpoint_with_work_waiting_wakes_the_poller() {
        let wake = Arc::new(Notify::new());
        let fair = Fairness::new(10, 1, 10, wake.clone());
        let first = fair.try_hold("ep", "app", None).unwrap();
        let quiet = fair.try_hold("calm", "app", None).unwrap();
        drop(quiet);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), wake.notified())
                .await
                .is_err(),
            "nothing waits for `calm`: no wake-up"
        );
        assert!(
            fair.try_hold("ep", "app", None).is_none(),
            "full: the delivery goes back"
        );
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified())
            .await
            .expect("the poller is woken for the waiting work");
    }

    #[test]
    fn one_endpoint_cannot_take_more_than_its_share_and_others_still_fit() {
        let fair = Fairness::new(10, 3, 5, Arc::default());
        let mine: Vec<Hold> = (0..3).filter_map(|_| fair.try_hold("ep_a", "app_1", None)).collect();
        assert_eq!(mine.len(), 3);
        assert!(
            fair.try_hold("ep_a", "app_1", None).is_none(),
            "the endpoint's share is full"
        );
        let other = fair.try_hold("ep_b", "app_2", None);
        assert!(other.is_some(), "another tenant still fits");
        assert_eq!(fair.room(), 6);
        drop(mine);
        assert_eq!(fair.room(), 9);
        assert!(
            fair.try_hold("ep_a", "app_1", None).is_some(),
            "room again once released"
        );
    }

    #[test]
    fn one_application_cannot_take_more_than_its_share_across_its_endpoints() {
        let fair = Fairness::new(100, 3, 5, Arc::default());
        let held: Vec<Hold> = ["e1", "e2", "e3"]
            .iter()
            .flat_map(|ep| {
                (0..3)
                    .filter_map(|_| fair.try_hold(ep, "app_1", None))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(held.len(), 5, "the application's share bounds its endpoints together");
        let bounds = fair.claim_bounds(&HashMap::new());
        assert_eq!(bounds.skip_apps, vec!["app_1".to_string()]);
        assert!(fair.try_hold("e9", "app_2", None).is_some());
    }

    #[test]
    fn a_lower_limit_from_pacing_or_a_circuit_narrows_the_share_and_the_claim() {
        let fair = Fairness::new(100, 10, 50, Arc::default());
        let _a = fair.try_hold("paced", "app", Some(2)).unwrap();
        let _b = fair.try_hold("paced", "app", Some(2)).unwrap();
        assert!(fair.try_hold("paced", "app", Some(2)).is_none());
        let _c = fair.try_hold("busy", "app", None).unwrap();
        let limits = HashMap::from([("paced".to_string(), 2), ("open".to_string(), 0)]);
        let bounds = fair.claim_bounds(&limits);
        assert_eq!(bounds.per_endpoint, 10);
        assert_eq!(bounds.endpoint_room["paced"], 0, "paced and full: skipped");
        assert_eq!(bounds.endpoint_room["open"], 0, "open circuit: skipped");
        assert_eq!(bounds.endpoint_room["busy"], 9);
        assert!(bounds.skip_apps.is_empty());
    }

    #[test]
    fn the_total_bounds_everyone() {
        let fair = Fairness::new(4, 4, 4, Arc::default());
        let held: Vec<Hold> = (0..10)
            .filter_map(|i| fair.try_hold(&format!("ep{i}"), &format!("app{i}"), None))
            .collect();
        assert_eq!(held.len(), 4);
        assert_eq!(fair.room(), 0);
    }
}
