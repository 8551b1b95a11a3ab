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
//! An application whose share was full while its deliveries went to the database hands over
//! nothing new until a claim finds none of its due work left: its fresh deliveries wait behind
//! the older ones, so its backlog goes out oldest first, and publishes cannot take the room a
//! claim counted on between its walk and its hand-over.
//!
//! Both maps hold only endpoints and applications with a delivery held right now, so they are
//! bounded by the total.

use hookd_store::ids::{HashMap, HashSet};
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
    /// Applications likewise; the poller is woken when one has drained to half its share.
    /// At most `total` entries.
    waiting_apps: HashSet<String>,
    /// Work waits in the database because the total was used up; the poller is woken when
    /// half of it is free again.
    waiting_total: bool,
    /// Applications with deliveries left in the database because their share was full, until
    /// a claim finds no more of theirs due. Their fresh deliveries are not handed over: they
    /// wait in the database too, behind the older ones, so an application's backlog goes out
    /// oldest first, and a claim's room is not taken by publishes between its walk and its
    /// hand-over (which would send its deliveries back to be claimed again). At most `total`
    /// entries.
    backlogged: HashSet<String>,
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
        // Room for work that waits in the database: claim it now, not at the next poll. An
        // endpoint, an application or the node is reported only once it has drained to half
        // its share, so a full one does not make every finished delivery trigger a claim of
        // one row: the claim it triggers finds room for half a share.
        let mut wake = held.endpoints.get(&self.endpoint).copied().unwrap_or(0) <= self.fair.endpoint_share / 2
            && held.waiting.remove(&self.endpoint);
        if held.waiting_total && held.total <= self.fair.total / 2 {
            held.waiting_total = false;
            wake = true;
        }
        if held.apps.get(&self.app).copied().unwrap_or(0) <= self.fair.app_share / 2
            && held.waiting_apps.remove(&self.app)
        {
            wake = true;
        }
        if wake {
            self.fair.wake.notify_one();
        }
    }
}

/// Marks `app` as having work waiting, within the bound of `total` entries; returns whether
/// it is marked.
fn note_app(held: &mut Held, app: &str, total: usize) -> bool {
    if held.waiting_apps.contains(app) {
        return true;
    }
    held.waiting_apps.len() < total && held.waiting_apps.insert(app.to_string())
}

/// Marks `app` as having deliveries waiting in the database that its fresh ones must queue
/// behind, within the bound of `total` entries.
fn mark_backlogged(held: &mut Held, app: &str, total: usize) {
    if held.backlogged.len() < total && !held.backlogged.contains(app) {
        held.backlogged.insert(app.to_string());
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

    /// Notes that `app` has more due work in the database than the last claim took.
    pub fn note_app_waiting(&self, app: &str) {
        let mut held = self.held.lock().expect("fairness poisoned");
        note_app(&mut held, app, self.total);
    }

    /// Notes that work waits in the database while the total is used up.
    pub fn note_total_waiting(&self) {
        self.held.lock().expect("fairness poisoned").waiting_total = true;
    }

    /// Places for one delivery to each of `endpoints` (all of `app`), all or none: `None` when
    /// the total, the application's share or any endpoint's share has no room for them, or
    /// when the application has older deliveries waiting in the database (refused for its
    /// share, which marks it until a claim finds none of them left). Taken
    /// when deliveries are created, so they are handed over with their places and never find
    /// their share full afterwards. When refused, the deliveries wait in the database: once
    /// they are committed the caller reports them ([`Fairness::note_left_in_store`]), and the
    /// poller is woken when the full share has drained to half.
    pub fn try_hold_all(self: &Arc<Self>, app: &str, endpoints: &[&str]) -> Option<Vec<Hold>> {
        let mut held = self.held.lock().expect("fairness poisoned");
        let n = endpoints.len();
        if held.backlogged.contains(app) {
            return None;
        }
        if held.apps.get(app).copied().unwrap_or(0) + n > self.app_share {
            // Marked now, not once the refused deliveries are committed: a place freed in
            // between must not let a later message of this application go out ahead of them.
            mark_backlogged(&mut held, app, self.total);
            return None;
        }
        if held.total + n > self.total
            // An endpoint is named at most once per message, so one place each is enough.
            || endpoints.iter().any(|e| {
                held.endpoints.get(*e).copied().unwrap_or(0) >= self.endpoint_share
            })
        {
            // Not marked waiting here: the deliveries are not in the database until the caller
            // commits them, so it reports them then ([`Fairness::note_left_in_store`]).
            return None;
        }
        held.total += n;
        *held.apps.entry(app.to_string()).or_default() += n;
        let holds = endpoints
            .iter()
            .map(|e| {
                *held.endpoints.entry(e.to_string()).or_default() += 1;
                Hold {
                    fair: self.clone(),
                    endpoint: e.to_string(),
                    app: app.to_string(),
                }
            })
            .collect();
        Some(holds)
    }

    /// Notes that a message's deliveries to `endpoints` (all of `app`), refused places by
    /// [`Fairness::try_hold_all`], are committed and wait in the database: whatever share was
    /// full is marked as having work waiting, so the first release that brings it down to half
    /// wakes the poller. Returns true when the poller must be woken now instead, because no
    /// release is coming (nothing of that share is held, or the share has room again).
    ///
    /// Called after the commit, not at the refusal: a claim that ran in between (and forgot
    /// what waited) could not have seen these deliveries.
    pub fn note_left_in_store(&self, app: &str, endpoints: &[&str]) -> bool {
        let mut held = self.held.lock().expect("fairness poisoned");
        let n = endpoints.len();
        if held.waiting_total || held.total + n > self.total {
            held.waiting_total = true;
            return held.total == 0;
        }
        let of_app = held.apps.get(app).copied().unwrap_or(0);
        if held.backlogged.contains(app) || held.waiting_apps.contains(app) || of_app + n > self.app_share {
            mark_backlogged(&mut held, app, self.total);
            let noted = note_app(&mut held, app, self.total);
            return of_app == 0 || !noted;
        }
        let mut wake = true;
        for e in endpoints {
            let of_endpoint = held.endpoints.get(*e).copied().unwrap_or(0);
            if held.waiting.contains(*e) {
                // A release of this endpoint's will wake the poller, if it holds anything.
                wake &= of_endpoint == 0;
            } else if of_endpoint >= self.endpoint_share && held.waiting.len() < self.total {
                held.waiting.insert(e.to_string());
                wake = false;
            }
        }
        // Otherwise the shares have room again (or the waiting set is full): claim now.
        wake
    }

    /// Notes what a claim with `bounds` took of each application (`taken`): an application
    /// that got less than its room has nothing more due in the database that the claim could
    /// see, so its fresh deliveries are handed over again. Only a claim that was not cut short
    /// by its batch size (`full`) can tell.
    pub fn note_claimed(&self, bounds: &ClaimBounds, taken: &HashMap<&str, usize>, full: bool) {
        if full {
            return;
        }
        let mut held = self.held.lock().expect("fairness poisoned");
        if held.backlogged.is_empty() {
            return;
        }
        held.backlogged.retain(|app| {
            let room = if bounds.skip_apps.contains(app) {
                0
            } else {
                bounds.app_room.get(app).copied().unwrap_or(bounds.per_app)
            };
            room == 0 || taken.get(app.as_str()).copied().unwrap_or(0) >= room
        });
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
        if held.total >= self.total {
            held.waiting_total = true;
            return None;
        }
        if of_app >= self.app_share {
            note_app(&mut held, app, self.total);
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
    /// Forgets which endpoints and applications had work waiting, except those the claim
    /// skips: the claim about to be made looks again at the others, and the skipped ones
    /// still wait for room.
    pub fn claim_bounds(&self, limits: &HashMap<String, usize>) -> ClaimBounds {
        let mut held = self.held.lock().expect("fairness poisoned");
        held.waiting_total = false;
        let mut endpoint_room: HashMap<String, usize> = limits
            .iter()
            .map(|(id, limit)| (id.clone(), self.endpoint_limit(Some(*limit))))
            .collect();
        for (id, n) in &held.endpoints {
            let limit = self.endpoint_limit(limits.get(id).copied());
            endpoint_room.insert(id.clone(), limit.saturating_sub(*n));
        }
        let skip_apps: Vec<String> = held
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
        held.waiting.retain(|e| endpoint_room.get(e) == Some(&0));
        held.waiting_apps.retain(|a| skip_apps.contains(a));
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
    use hookd_store::ids::HashMapExt;

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

    async fn woken(wake: &Notify) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(20), wake.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_full_application_wakes_the_poller_once_it_has_drained_to_half_its_share() {
        let wake = Arc::new(Notify::new());
        let fair = Fairness::new(100, 10, 4, wake.clone());
        let mut holds: Vec<Hold> = (0..4)
            .map(|i| fair.try_hold(&format!("ep{i}"), "app", None).unwrap())
            .collect();
        assert!(
            fair.try_hold("ep9", "app", None).is_none(),
            "the application's share is full"
        );
        holds.pop();
        assert!(!woken(&wake).await, "three of four held: not yet");
        holds.pop();
        assert!(woken(&wake).await, "half the share free: claim its waiting work");
        holds.pop();
        assert!(!woken(&wake).await, "woken once per wait");
    }

    #[tokio::test]
    async fn a_full_node_wakes_the_poller_once_half_of_it_is_free() {
        let wake = Arc::new(Notify::new());
        let fair = Fairness::new(4, 4, 4, wake.clone());
        let mut holds = fair.try_hold_all("app", &["e1", "e2", "e3", "e4"]).unwrap();
        assert!(fair.try_hold("e5", "other", None).is_none());
        holds.pop();
        assert!(!woken(&wake).await);
        holds.pop();
        assert!(woken(&wake).await);
    }

    #[tokio::test]
    async fn a_refused_message_marks_its_share_and_the_share_wakes_the_poller_once_at_half() {
        let wake = Arc::new(Notify::new());
        let fair = Fairness::new(100, 4, 100, wake.clone());
        let mut holds: Vec<Hold> = (0..4)
            .flat_map(|_| fair.try_hold_all("app", &["ep"]).unwrap())
            .collect();
        assert!(
            fair.try_hold_all("app", &["ep"]).is_none(),
            "the endpoint's share is full"
        );
        assert!(
            !fair.note_left_in_store("app", &["ep"]),
            "its releases will wake the poller: no wake-up per refused message"
        );
        holds.pop();
        assert!(!woken(&wake).await, "three of four held: not yet");
        holds.pop();
        assert!(
            woken(&wake).await,
            "half the share free: claim its waiting work in one go"
        );
        holds.pop();
        assert!(!woken(&wake).await, "woken once per wait");
        assert_eq!(fair.claim_bounds(&HashMap::new()).endpoint_room["ep"], 3);
    }

    #[test]
    fn a_refused_message_asks_for_a_wake_now_when_no_release_will_bring_one() {
        let fair = Fairness::new(10, 5, 10, Arc::default());
        let endpoints: Vec<String> = (0..11).map(|i| format!("e{i}")).collect();
        let endpoints: Vec<&str> = endpoints.iter().map(String::as_str).collect();
        assert!(fair.try_hold_all("big", &endpoints).is_none(), "beyond the total");
        assert!(
            fair.note_left_in_store("big", &endpoints),
            "nothing held: nothing else wakes it"
        );
        let fair = Fairness::new(100, 5, 3, Arc::default());
        assert!(fair.try_hold_all("wide", &endpoints[..4]).is_none(), "beyond the share");
        assert!(fair.note_left_in_store("wide", &endpoints[..4]));
        let _held = fair.try_hold_all("app", &["e1"]).unwrap();
        assert!(
            fair.note_left_in_store("app", &["e1"]),
            "the shares had room by the time of the commit: claim now"
        );
    }

    #[tokio::test]
    async fn a_claim_forgets_the_waiting_work_it_can_take_and_keeps_what_it_skips() {
        let wake = Arc::new(Notify::new());
        let fair = Fairness::new(100, 2, 100, wake.clone());
        let mut full: Vec<Hold> = (0..2)
            .flat_map(|_| fair.try_hold_all("app", &["full"]).unwrap())
            .collect();
        let roomy = fair.try_hold_all("app", &["roomy"]).unwrap();
        assert!(fair.try_hold_all("app", &["full"]).is_none());
        assert!(!fair.note_left_in_store("app", &["full"]));
        assert!(
            fair.try_hold("roomy", "app", Some(1)).is_none(),
            "paced to one: its work waits too"
        );
        let bounds = fair.claim_bounds(&HashMap::new());
        assert_eq!(bounds.endpoint_room["full"], 0);
        assert_eq!(bounds.endpoint_room["roomy"], 1);
        drop(roomy);
        assert!(
            !woken(&wake).await,
            "the claim looked for this endpoint's work: nothing of it is known to wait any more"
        );
        full.pop();
        assert!(
            woken(&wake).await,
            "the claim skipped this endpoint: its work still waits, and its room wakes the poller"
        );
    }

    #[test]
    fn an_application_with_work_waiting_hands_over_nothing_new_until_a_claim_finds_none_left() {
        let fair = Fairness::new(100, 10, 4, Arc::default());
        let held: Vec<Hold> = (0..4)
            .flat_map(|i| fair.try_hold_all("app", &[format!("e{i}").as_str()]).unwrap())
            .collect();
        assert!(
            fair.try_hold_all("app", &["e0"]).is_none(),
            "the application's share is full"
        );
        drop(held);
        assert!(
            fair.try_hold_all("app", &["e0"]).is_none(),
            "room again before the refused message is even committed: the new one goes behind it"
        );
        fair.note_left_in_store("app", &["e0"]);
        assert!(
            fair.try_hold_all("app", &["e0"]).is_none(),
            "room again, but older deliveries wait in the database: the new one goes behind them"
        );
        assert!(
            fair.try_hold_all("other", &["f0"]).is_some(),
            "another application is not held back"
        );
        let bounds = fair.claim_bounds(&HashMap::new());
        assert_eq!(bounds.app_room.get("app").copied().unwrap_or(bounds.per_app), 4);
        fair.note_claimed(&bounds, &HashMap::from_iter([("app", 4)]), false);
        assert!(
            fair.try_hold_all("app", &["e0"]).is_none(),
            "the claim took its whole room: more may wait"
        );
        fair.note_claimed(&bounds, &HashMap::from_iter([("app", 1)]), true);
        assert!(
            fair.try_hold_all("app", &["e0"]).is_none(),
            "a claim cut short by its batch size cannot tell"
        );
        fair.note_claimed(&bounds, &HashMap::from_iter([("app", 1)]), false);
        assert!(
            fair.try_hold_all("app", &["e0"]).is_some(),
            "the claim found less than its room: nothing older waits, hand over again"
        );
    }

    #[test]
    fn applications_marked_as_waiting_are_bounded_by_the_total() {
        let fair = Fairness::new(3, 10, 1, Arc::default());
        for i in 0..10 {
            let app = format!("app{i}");
            assert!(fair.try_hold_all(&app, &["x", "y"]).is_none(), "wider than its share");
            fair.note_left_in_store(&app, &["x", "y"]);
        }
        let held = fair.held.lock().unwrap();
        assert_eq!(held.backlogged.len(), 3, "marked up to the total, no further");
        assert!(held.waiting_apps.len() <= 3);
    }

    #[test]
    fn places_for_a_messages_deliveries_are_taken_all_or_none() {
        let fair = Fairness::new(10, 1, 3, Arc::new(Notify::new()));
        let three = fair.try_hold_all("app", &["e1", "e2", "e3"]).expect("room for three");
        assert_eq!(fair.room(), 7);
        assert!(
            fair.try_hold_all("app", &["e4"]).is_none(),
            "beyond the application's share: none taken"
        );
        assert!(
            fair.try_hold_all("other", &["e1", "e5"]).is_none(),
            "e1's share is full: e5 is not taken either"
        );
        assert_eq!(fair.room(), 7, "a refused reservation holds nothing");
        assert!(fair.try_hold_all("other", &["e5", "e6"]).is_some());
        drop(three);
        assert_eq!(fair.room(), 10);
        assert!(fair.try_hold_all("big", &["a"; 11]).is_none(), "beyond the total");
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
        let limits = HashMap::from_iter([("paced".to_string(), 2), ("open".to_string(), 0)]);
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
