//! The conformance suite: what every [`Store`] backend must do, written once.
//!
//! A backend is done when the whole suite passes on it. Each test is a plain
//! `pub async fn <sentence>(store: &dyn Store)` that expects a fresh, empty store, so the same
//! bodies run unchanged against SQLite, PostgreSQL or anything else. A backend's integration
//! test turns them into `#[tokio::test]`s with
//! [`store_conformance_tests!`](crate::store_conformance_tests):
//!
//! ```text
//! async fn fresh_store() -> (SqliteStore, tempfile::TempDir) { /* open a new database */ }
//!
//! hookd_store::store_conformance_tests!(fresh_store);
//! ```
//!
//! The macro's argument is anything callable with no arguments that returns a future of a
//! [`Fixture`]: a store, or a `(store, guard)` pair whose guard (a temporary directory, a
//! throw-away schema) lives exactly as long as the test. It is called once per test, so no two
//! tests share a store. The invoking crate needs `tokio` with the `macros` and `rt` features,
//! because the generated tests are `#[tokio::test]`s; do not glob-import this module there, as
//! each generated test is named after its body.
//!
//! Time and randomness are inputs here as everywhere: timestamps are offsets from a fixed
//! instant ([`at`]), ids come from a seeded RNG, and queue behaviour is driven by the `now`
//! passed to [`Store::claim_due`] rather than by sleeping. Tests rely only on what the
//! [`Store`] documentation promises; lease ends, for instance, are probed strictly before and
//! strictly after, never at the boundary, and claims are compared as sets.
//!
//! Adding a test: write the body here and add its name to the list in the macro.

use std::collections::BTreeMap;
use std::slice;

use chrono::{DateTime, Duration, TimeZone, Utc};
use hookd_core::id::IdKind;
use hookd_core::model::Environment::{Live, Test};
use hookd_core::model::MessageStatus::{Fail, Pending, Sending, Success};
use hookd_core::model::{
    Application, Attempt, Endpoint, Environment, EventType, Message, MessageStatus, TriggerType,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::{
    AttemptFilter, AttemptRecord, ClaimedDelivery, Cursor, DeliveryState, MessageFilter,
    NewDelivery, Page, PageRequest, Store, StoreError, StoreResult, TokenRecord,
};

/// What a backend's factory hands the suite: the store under test, plus anything that must live
/// as long as it does.
pub trait Fixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl<S: Store> Fixture for S {
    fn store(&self) -> &dyn Store {
        self
    }
}

impl<S: Store, G> Fixture for (S, G) {
    fn store(&self) -> &dyn Store {
        &self.0
    }
}

/// Expands to one `#[tokio::test]` per conformance test, each running its body against a fresh
/// store made by `$make` (an async closure or an async fn path returning a [`Fixture`]).
///
/// See the [module documentation](crate::conformance) for an example.
#[macro_export]
macro_rules! store_conformance_tests {
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let fixture = ($make)().await;
                $crate::conformance::$name($crate::conformance::Fixture::store(&fixture)).await;
            }
        )+
    };
    ($make:expr $(,)?) => {
        $crate::store_conformance_tests!(@each $make;
            ping_answers_on_a_fresh_store,
            token_is_found_by_the_hash_of_its_secret,
            application_is_found_by_id_and_by_uid,
            application_uid_taken_in_the_environment_is_a_conflict,
            applications_are_invisible_from_the_other_environment,
            application_update_replaces_every_mutable_field,
            application_delete_removes_it_and_a_second_delete_is_not_found,
            applications_page_by_id_in_both_orders,
            backwards_cursor_returns_the_previous_page_in_list_order,
            endpoint_is_found_by_id_and_by_uid_within_its_application,
            endpoint_uid_is_unique_per_application,
            endpoint_update_replaces_every_mutable_field,
            endpoint_delete_removes_it_and_stops_its_deliveries,
            endpoints_page_by_id_and_all_endpoints_lists_only_the_application,
            event_type_upsert_inserts_then_replaces_by_name,
            event_types_are_scoped_by_environment,
            event_types_list_by_name_and_hide_archived_unless_asked,
            event_type_delete_removes_it_for_good,
            message_is_found_by_id_and_by_event_id,
            duplicate_event_id_is_a_conflict_and_inserts_none_of_its_deliveries,
            messages_list_newest_first_and_filter_by_type_channel_and_time,
            claim_due_leases_only_deliveries_that_are_due_and_unleased,
            claimed_delivery_is_claimed_again_once_its_lease_expires,
            delivery_created_with_a_lease_is_not_claimed_before_the_lease_ends,
            claim_due_takes_the_longest_overdue_first_up_to_the_limit,
            concurrent_claims_never_hand_out_the_same_delivery,
            recorded_attempt_is_readable_and_listed_by_message_and_endpoint,
            delivery_with_a_retry_scheduled_is_not_claimed_before_it_is_due,
            finished_delivery_is_never_claimed_again,
            recording_an_attempt_releases_the_lease,
            release_stale_leases_makes_leased_deliveries_claimable_again,
            manual_schedule_makes_a_finished_delivery_due_as_a_manual_attempt,
            manual_schedule_creates_the_delivery_when_the_endpoint_never_had_one,
            manual_schedule_makes_a_delivery_on_its_schedule_due_now,
            message_deliveries_page_by_endpoint_id,
            endpoint_deliveries_list_newest_message_first_and_filter_by_status,
            attempts_filter_by_status_and_status_code_class,
            deleting_an_application_removes_its_endpoints_messages_deliveries_and_attempts,
        );
    };
}

// ----- inputs -----

/// The instant every test's clock starts at (2027-01-15), far from any boundary.
pub fn base_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid")
}

/// `secs` seconds after [`base_time`]. Whole seconds survive every backend's time precision.
pub fn at(secs: i64) -> DateTime<Utc> {
    base_time() + Duration::seconds(secs)
}

/// Builds records with ids made at their creation time (so id order is creation order) from a
/// seeded RNG (so a failing run repeats exactly).
struct Gen {
    rng: StdRng,
    serial: u32,
}

impl Gen {
    fn new() -> Gen {
        let rng = StdRng::seed_from_u64(0x600d_5eed);
        Gen { rng, serial: 0 }
    }

    fn id(&mut self, kind: IdKind, at: DateTime<Utc>) -> String {
        kind.generate(at, &mut self.rng)
    }

    fn app(&mut self, env: Environment, uid: Option<&str>, created: DateTime<Utc>) -> Application {
        Application {
            id: self.id(IdKind::Application, created),
            env,
            uid: uid.map(str::to_string),
            name: format!("App {}", uid.unwrap_or("without uid")),
            metadata: BTreeMap::from([("plan".to_string(), "pro".to_string())]),
            throttle_rate: None,
            created_at: created,
            updated_at: created,
        }
    }

    fn endpoint(&mut self, app_id: &str, uid: Option<&str>, created: DateTime<Utc>) -> Endpoint {
        self.serial += 1;
        Endpoint {
            id: self.id(IdKind::Endpoint, created),
            app_id: app_id.to_string(),
            uid: uid.map(str::to_string),
            url: format!("https://receiver.example/hooks/{}", self.serial),
            description: String::new(),
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: BTreeMap::new(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
            headers: BTreeMap::new(),
            created_at: created,
            updated_at: created,
        }
    }

    fn message(&mut self, app_id: &str, event_type: &str, created: DateTime<Utc>) -> Message {
        self.serial += 1;
        Message {
            id: self.id(IdKind::Message, created),
            app_id: app_id.to_string(),
            event_id: None,
            event_type: event_type.to_string(),
            channels: None,
            payload: Some(format!(r#"{{"n":{}}}"#, self.serial)),
            created_at: created,
            expires_at: created + Duration::days(30),
        }
    }

    fn delivery(&mut self, msg: &Message, endpoint_id: &str, due: DateTime<Utc>) -> NewDelivery {
        NewDelivery {
            id: self.id(IdKind::Delivery, msg.created_at),
            msg_id: msg.id.clone(),
            endpoint_id: endpoint_id.to_string(),
            app_id: msg.app_id.clone(),
            due_at: due,
            leased_until: None,
        }
    }

    /// One scheduled attempt of `d` at `when` answered with `code` (0: no response), and the
    /// delivery's `status` and next attempt after it.
    fn outcome(
        &mut self,
        d: &NewDelivery,
        when: DateTime<Utc>,
        code: i64,
        status: MessageStatus,
        next: Option<DateTime<Utc>>,
    ) -> AttemptRecord {
        let ok = (200..300).contains(&code);
        let attempt = Attempt {
            id: self.id(IdKind::Attempt, when),
            msg_id: d.msg_id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            url: "https://receiver.example/hooks".to_string(),
            response: format!("HTTP {code}"),
            response_status_code: code,
            response_duration_ms: 42,
            status: if ok { Success } else { Fail },
            trigger_type: TriggerType::Scheduled,
            attempt_number: 1,
            created_at: when,
        };
        AttemptRecord {
            delivery_id: d.id.clone(),
            attempt,
            delivery_status: status,
            next_attempt_at: next,
            scheduled_attempts: 1,
        }
    }
}

fn event_type(env: Environment, name: &str, archived: bool, created: DateTime<Utc>) -> EventType {
    EventType {
        name: name.to_string(),
        env,
        description: format!("{name} happened"),
        archived,
        deprecated: false,
        feature_flag: None,
        schemas: None,
        created_at: created,
        updated_at: created,
    }
}

// ----- helpers -----

/// A Live application with one endpoint, both stored.
async fn app_with_endpoint(store: &dyn Store, g: &mut Gen) -> (Application, Endpoint) {
    let app = g.app(Live, None, at(0));
    store.create_application(&app).await.unwrap();
    let ep = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&ep).await.unwrap();
    (app, ep)
}

/// Stores a `user.created` message created at `t` with one delivery to `ep`, due then.
async fn send(store: &dyn Store, g: &mut Gen, ep: &Endpoint, t: i64) -> (Message, NewDelivery) {
    let msg = g.message(&ep.app_id, "user.created", at(t));
    let d = g.delivery(&msg, &ep.id, at(t));
    store
        .create_message(&msg, slice::from_ref(&d))
        .await
        .unwrap();
    (msg, d)
}

/// Claims every due delivery at `now`, leased until `until`; ids sorted.
async fn claim(store: &dyn Store, now: i64, until: i64) -> Vec<String> {
    let claimed = store.claim_due(at(now), at(until), 100).await.unwrap();
    sorted(claimed.into_iter().map(|c| c.id))
}

fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort();
    ids
}

fn claimed<'a>(claims: &'a [ClaimedDelivery], id: &str) -> &'a ClaimedDelivery {
    let found = claims.iter().find(|c| c.id == id);
    found.unwrap_or_else(|| panic!("{id} was not claimed: {claims:?}"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const ASC: bool = true;
const DESC: bool = false;

fn first(limit: usize, ascending: bool) -> PageRequest {
    PageRequest::first(limit, ascending)
}

/// The page after `key`.
fn after(key: &str, limit: usize, ascending: bool) -> PageRequest {
    let cursor = Some(Cursor {
        key: key.to_string(),
        backwards: false,
    });
    PageRequest {
        limit,
        cursor,
        ascending,
    }
}

/// The page before `key` (a `prevIterator`).
fn before(key: &str, limit: usize, ascending: bool) -> PageRequest {
    let cursor = Some(Cursor {
        key: key.to_string(),
        backwards: true,
    });
    PageRequest {
        limit,
        cursor,
        ascending,
    }
}

fn everything() -> PageRequest {
    PageRequest::first(crate::page::MAX_LIMIT, DESC)
}

/// The key a listing pages by, so pages compare as key lists.
trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for Application {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for Endpoint {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for EventType {
    fn key(&self) -> &str {
        &self.name
    }
}

impl Keyed for Message {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for Attempt {
    fn key(&self) -> &str {
        &self.id
    }
}

/// A message's deliveries page by endpoint.
impl Keyed for DeliveryState {
    fn key(&self) -> &str {
        &self.endpoint_id
    }
}

/// An endpoint's deliveries page by message.
impl Keyed for (DeliveryState, Message) {
    fn key(&self) -> &str {
        &self.1.id
    }
}

/// The keys of `items` at the positions `idx`, in that order.
fn pick<T: Keyed>(items: &[T], idx: &[usize]) -> Vec<String> {
    idx.iter().map(|&i| items[i].key().to_string()).collect()
}

fn keys<T: Keyed>(page: &Page<T>) -> Vec<String> {
    page.items
        .iter()
        .map(|item| item.key().to_string())
        .collect()
}

/// A page as its keys and `has_more`.
fn shape<T: Keyed>(page: &Page<T>) -> (Vec<String>, bool) {
    (keys(page), page.has_more)
}

fn assert_conflict<T: std::fmt::Debug>(result: StoreResult<T>, what: &str) {
    let ok = matches!(result, Err(StoreError::Conflict(_)));
    assert!(ok, "{what}: expected Conflict, got {result:?}");
}

fn assert_not_found<T: std::fmt::Debug>(result: StoreResult<T>, what: &str) {
    let ok = matches!(result, Err(StoreError::NotFound));
    assert!(ok, "{what}: expected NotFound, got {result:?}");
}

fn types(names: &[&str]) -> MessageFilter {
    MessageFilter {
        event_types: Some(strings(names)),
        ..Default::default()
    }
}

fn on_channel(channel: &str) -> MessageFilter {
    MessageFilter {
        channel: Some(channel.to_string()),
        ..Default::default()
    }
}

fn created(after: Option<i64>, before: Option<i64>) -> MessageFilter {
    let (after, before) = (after.map(at), before.map(at));
    MessageFilter {
        after,
        before,
        ..Default::default()
    }
}

fn in_status(status: MessageStatus) -> MessageFilter {
    MessageFilter {
        status: Some(status),
        ..Default::default()
    }
}

// ----- lifecycle and tokens -----

/// A fresh store answers the health probe.
pub async fn ping_answers_on_a_fresh_store(store: &dyn Store) {
    store.ping().await.expect("ping");
}

/// Tokens are stored whole (minus the secret) and found by hash; an unknown hash finds nothing.
pub async fn token_is_found_by_the_hash_of_its_secret(store: &dyn Store) {
    let mut g = Gen::new();
    let admin = TokenRecord {
        id: g.id(IdKind::Token, at(0)),
        hash: "a".repeat(64),
        env: Live,
        app_id: None,
        description: "admin".to_string(),
        created_at: at(0),
        expires_at: None,
    };
    let scoped = TokenRecord {
        id: g.id(IdKind::Token, at(1)),
        hash: "b".repeat(64),
        env: Test,
        app_id: Some(g.id(IdKind::Application, at(1))),
        description: "one app".to_string(),
        created_at: at(1),
        expires_at: Some(at(3600)),
    };
    store.create_token(&admin).await.unwrap();
    store.create_token(&scoped).await.unwrap();

    assert_eq!(store.find_token(&admin.hash).await.unwrap(), Some(admin));
    assert_eq!(store.find_token(&scoped.hash).await.unwrap(), Some(scoped));
    assert_eq!(store.find_token(&"c".repeat(64)).await.unwrap(), None);
}

// ----- applications -----

/// An application reads back equal by its id and by its uid; unknown keys find nothing.
pub async fn application_is_found_by_id_and_by_uid(store: &dyn Store) {
    let mut g = Gen::new();
    let mut app = g.app(Live, Some("acme"), at(0));
    app.throttle_rate = Some(20);
    let anonymous = g.app(Live, None, at(1));
    store.create_application(&app).await.unwrap();
    store.create_application(&anonymous).await.unwrap();
    let never_stored = g.id(IdKind::Application, at(2));

    let get = |key: String| async move { store.get_application(Live, &key).await.unwrap() };
    assert_eq!(get(app.id.clone()).await, Some(app.clone()));
    assert_eq!(get("acme".into()).await, Some(app));
    assert_eq!(get(anonymous.id.clone()).await, Some(anonymous));
    assert_eq!(get("globex".into()).await, None);
    assert_eq!(get(never_stored).await, None);
}

/// A uid is unique within an environment, not across environments.
pub async fn application_uid_taken_in_the_environment_is_a_conflict(store: &dyn Store) {
    let mut g = Gen::new();
    let live = g.app(Live, Some("acme"), at(0));
    store.create_application(&live).await.unwrap();

    let clash = g.app(Live, Some("acme"), at(1));
    assert_conflict(
        store.create_application(&clash).await,
        "same uid and environment",
    );
    assert_eq!(store.get_application(Live, &clash.id).await.unwrap(), None);
    assert_conflict(store.create_application(&live).await, "same id twice");

    let sandbox = g.app(Test, Some("acme"), at(2));
    store
        .create_application(&sandbox)
        .await
        .expect("same uid in the other environment");
    assert_eq!(
        store.get_application(Test, "acme").await.unwrap(),
        Some(sandbox)
    );
    assert_eq!(
        store.get_application(Live, "acme").await.unwrap(),
        Some(live)
    );
}

/// An application created in Live cannot be read, listed or deleted through Test.
pub async fn applications_are_invisible_from_the_other_environment(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, Some("acme"), at(0));
    store.create_application(&app).await.unwrap();

    assert_eq!(store.get_application(Test, &app.id).await.unwrap(), None);
    assert_eq!(store.get_application(Test, "acme").await.unwrap(), None);
    let in_test = store
        .list_applications(Test, &first(50, ASC))
        .await
        .unwrap();
    assert_eq!(shape(&in_test), (vec![], false));
    assert_not_found(
        store.delete_application(Test, &app.id).await,
        "delete through Test",
    );

    let in_live = store
        .list_applications(Live, &first(50, ASC))
        .await
        .unwrap();
    assert_eq!(in_live.items, vec![app.clone()]);
    assert_eq!(
        store.get_application(Live, &app.id).await.unwrap(),
        Some(app)
    );
}

/// Update replaces uid, name, metadata, throttle rate and update time; the old uid stops
/// resolving. Unknown ids are `NotFound`, a uid held by another application is `Conflict`.
pub async fn application_update_replaces_every_mutable_field(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, Some("acme"), at(0));
    let other = g.app(Live, Some("globex"), at(1));
    store.create_application(&app).await.unwrap();
    store.create_application(&other).await.unwrap();
    let get = |key: String| async move { store.get_application(Live, &key).await.unwrap() };

    let changed = Application {
        uid: Some("acme-corp".to_string()),
        name: "Acme Corporation".to_string(),
        metadata: BTreeMap::from([("region".to_string(), "eu".to_string())]),
        throttle_rate: Some(5),
        updated_at: at(100),
        ..app.clone()
    };
    store.update_application(&changed).await.expect("update");
    assert_eq!(get(app.id.clone()).await, Some(changed.clone()));
    assert_eq!(get("acme-corp".into()).await, Some(changed.clone()));
    assert_eq!(get("acme".into()).await, None);

    let mut cleared = changed;
    (cleared.uid, cleared.throttle_rate, cleared.updated_at) = (None, None, at(101));
    store.update_application(&cleared).await.expect("clear uid");
    assert_eq!(get(app.id.clone()).await, Some(cleared.clone()));

    let mut stealing = cleared.clone();
    stealing.uid = Some("globex".to_string());
    assert_conflict(
        store.update_application(&stealing).await,
        "update to a taken uid",
    );
    assert_eq!(get(app.id.clone()).await, Some(cleared));

    let ghost = g.app(Live, Some("ghost"), at(3));
    assert_not_found(
        store.update_application(&ghost).await,
        "update of a missing app",
    );
    assert_eq!(get("ghost".into()).await, None);
}

/// Delete removes the application and frees its uid; deleting again is `NotFound`.
pub async fn application_delete_removes_it_and_a_second_delete_is_not_found(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, Some("acme"), at(0));
    let kept = g.app(Live, Some("globex"), at(1));
    store.create_application(&app).await.unwrap();
    store.create_application(&kept).await.unwrap();

    store
        .delete_application(Live, &app.id)
        .await
        .expect("delete");
    assert_eq!(store.get_application(Live, &app.id).await.unwrap(), None);
    assert_eq!(store.get_application(Live, "acme").await.unwrap(), None);
    assert_not_found(
        store.delete_application(Live, &app.id).await,
        "second delete",
    );
    let left = store
        .list_applications(Live, &first(50, ASC))
        .await
        .unwrap();
    assert_eq!(left.items, vec![kept]);

    let reuse = g.app(Live, Some("acme"), at(2));
    store
        .create_application(&reuse)
        .await
        .expect("a deleted application's uid is free");
}

/// Five Live applications created ten seconds apart, oldest first.
async fn five_apps(store: &dyn Store) -> Vec<Application> {
    let mut g = Gen::new();
    let mut apps = Vec::new();
    for i in 0..5 {
        let app = g.app(Live, None, at(i * 10));
        store.create_application(&app).await.unwrap();
        apps.push(app);
    }
    apps
}

/// Application lists are keyset pages by id (creation order), oldest or newest first, with
/// `has_more` set exactly when another page follows.
pub async fn applications_page_by_id_in_both_orders(store: &dyn Store) {
    let a = five_apps(store).await;
    let list = |page| async move { shape(&store.list_applications(Live, &page).await.unwrap()) };

    assert_eq!(list(first(2, ASC)).await, (pick(&a, &[0, 1]), true));
    assert_eq!(
        list(after(&a[1].id, 2, ASC)).await,
        (pick(&a, &[2, 3]), true)
    );
    assert_eq!(list(after(&a[3].id, 2, ASC)).await, (pick(&a, &[4]), false));
    assert_eq!(list(after(&a[4].id, 2, ASC)).await, (vec![], false));

    assert_eq!(list(first(2, DESC)).await, (pick(&a, &[4, 3]), true));
    assert_eq!(
        list(after(&a[3].id, 2, DESC)).await,
        (pick(&a, &[2, 1]), true)
    );
    assert_eq!(
        list(after(&a[1].id, 2, DESC)).await,
        (pick(&a, &[0]), false)
    );

    assert_eq!(
        list(first(5, ASC)).await,
        (pick(&a, &[0, 1, 2, 3, 4]), false)
    );
    assert_eq!(
        list(first(6, DESC)).await,
        (pick(&a, &[4, 3, 2, 1, 0]), false)
    );
}

/// A backwards cursor (from the first item of a page) returns the page before it, still in list
/// order, with `has_more` telling whether pages lie further back.
pub async fn backwards_cursor_returns_the_previous_page_in_list_order(store: &dyn Store) {
    let a = five_apps(store).await;
    let list = |page| async move { shape(&store.list_applications(Live, &page).await.unwrap()) };

    // Oldest first, the pages are [0 1] [2 3] [4].
    assert_eq!(
        list(before(&a[4].id, 2, ASC)).await,
        (pick(&a, &[2, 3]), true)
    );
    assert_eq!(
        list(before(&a[2].id, 2, ASC)).await,
        (pick(&a, &[0, 1]), false)
    );
    assert_eq!(list(before(&a[0].id, 2, ASC)).await, (vec![], false));

    // Newest first, the pages are [4 3] [2 1] [0].
    assert_eq!(
        list(before(&a[0].id, 2, DESC)).await,
        (pick(&a, &[2, 1]), true)
    );
    assert_eq!(
        list(before(&a[2].id, 2, DESC)).await,
        (pick(&a, &[4, 3]), false)
    );
}

// ----- endpoints -----

/// An endpoint reads back equal (filters, headers, metadata included) by id and by uid, but only
/// through its own application.
pub async fn endpoint_is_found_by_id_and_by_uid_within_its_application(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();

    let ep = Endpoint {
        description: "orders".to_string(),
        event_types: Some(strings(&["user.created", "invoice.paid"])),
        channels: Some(strings(&["eu"])),
        throttle_rate: Some(10),
        metadata: BTreeMap::from([("team".to_string(), "billing".to_string())]),
        headers: BTreeMap::from([("X-Api-Key".to_string(), "k1".to_string())]),
        ..g.endpoint(&app.id, Some("orders"), at(2))
    };
    store.create_endpoint(&ep).await.unwrap();

    let get = |app_id: &str, key: &str| {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        async move { store.get_endpoint(&app_id, &key).await.unwrap() }
    };
    assert_eq!(get(&app.id, &ep.id).await, Some(ep.clone()));
    assert_eq!(get(&app.id, "orders").await, Some(ep.clone()));
    assert_eq!(get(&other_app.id, &ep.id).await, None);
    assert_eq!(get(&other_app.id, "orders").await, None);
    assert_eq!(get(&app.id, "billing").await, None);
}

/// An endpoint uid is unique within its application; another application may reuse it.
pub async fn endpoint_uid_is_unique_per_application(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();

    let taken = g.endpoint(&app.id, Some("orders"), at(2));
    store.create_endpoint(&taken).await.unwrap();
    let clash = g.endpoint(&app.id, Some("orders"), at(3));
    assert_conflict(
        store.create_endpoint(&clash).await,
        "same uid, same application",
    );
    assert_eq!(store.get_endpoint(&app.id, &clash.id).await.unwrap(), None);

    let elsewhere = g.endpoint(&other_app.id, Some("orders"), at(4));
    store
        .create_endpoint(&elsewhere)
        .await
        .expect("same uid in another application");
    let found = store.get_endpoint(&other_app.id, "orders").await.unwrap();
    assert_eq!(found, Some(elsewhere));
    assert_eq!(
        store.get_endpoint(&app.id, "orders").await.unwrap(),
        Some(taken)
    );
}

/// Update replaces every mutable field, secret and headers included; unknown ids are
/// `NotFound`, a uid held by another endpoint of the application is `Conflict`.
pub async fn endpoint_update_replaces_every_mutable_field(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let sibling = g.endpoint(&app.id, Some("sibling"), at(1));
    store.create_endpoint(&sibling).await.unwrap();
    let get = |key: String| {
        let app_id = app.id.clone();
        async move { store.get_endpoint(&app_id, &key).await.unwrap() }
    };

    let changed = Endpoint {
        uid: Some("orders".to_string()),
        url: "https://new.example/in".to_string(),
        description: "moved".to_string(),
        disabled: true,
        event_types: Some(strings(&["invoice.paid"])),
        channels: Some(strings(&["us", "eu"])),
        throttle_rate: Some(3),
        metadata: BTreeMap::from([("owner".to_string(), "ops".to_string())]),
        secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_string(),
        headers: BTreeMap::from([("Authorization".to_string(), "Bearer x".to_string())]),
        updated_at: at(50),
        ..ep.clone()
    };
    store.update_endpoint(&changed).await.expect("update");
    assert_eq!(get(ep.id.clone()).await, Some(changed.clone()));
    assert_eq!(get("orders".into()).await, Some(changed.clone()));

    let mut cleared = changed;
    (cleared.uid, cleared.event_types, cleared.channels) = (None, None, None);
    (cleared.headers, cleared.updated_at) = (BTreeMap::new(), at(51));
    store
        .update_endpoint(&cleared)
        .await
        .expect("clear optional fields");
    assert_eq!(get(ep.id.clone()).await, Some(cleared.clone()));
    assert_eq!(get("orders".into()).await, None);

    let mut stealing = cleared.clone();
    stealing.uid = Some("sibling".to_string());
    assert_conflict(
        store.update_endpoint(&stealing).await,
        "update to a sibling's uid",
    );
    assert_eq!(get(ep.id.clone()).await, Some(cleared));

    let ghost = g.endpoint(&app.id, None, at(3));
    assert_not_found(
        store.update_endpoint(&ghost).await,
        "update of a missing endpoint",
    );
}

/// Deleting an endpoint removes it and stops its pending deliveries; deleting again, or through
/// another application, is `NotFound`.
pub async fn endpoint_delete_removes_it_and_stops_its_deliveries(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();
    let kept = g.endpoint(&app.id, None, at(1));
    store.create_endpoint(&kept).await.unwrap();
    let msg = g.message(&app.id, "user.created", at(2));
    let doomed = g.delivery(&msg, &ep.id, at(2));
    let survivor = g.delivery(&msg, &kept.id, at(2));
    store
        .create_message(&msg, &[doomed, survivor.clone()])
        .await
        .unwrap();

    let wrong_app = store.delete_endpoint(&other_app.id, &ep.id).await;
    assert_not_found(wrong_app, "delete through another application");
    store
        .delete_endpoint(&app.id, &ep.id)
        .await
        .expect("delete");
    assert_eq!(store.get_endpoint(&app.id, &ep.id).await.unwrap(), None);
    assert_not_found(
        store.delete_endpoint(&app.id, &ep.id).await,
        "second delete",
    );

    assert_eq!(claim(store, 10, 40).await, vec![survivor.id]);
    assert_eq!(store.all_endpoints(&app.id).await.unwrap(), vec![kept]);
}

/// Endpoint lists are keyset pages by id in both orders; `all_endpoints` returns every endpoint
/// of the application and no other.
pub async fn endpoints_page_by_id_and_all_endpoints_lists_only_the_application(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, None, at(0));
    let other_app = g.app(Live, None, at(0));
    store.create_application(&app).await.unwrap();
    store.create_application(&other_app).await.unwrap();
    let mut e = Vec::new();
    for i in 0..3 {
        e.push(g.endpoint(&app.id, None, at(i + 1)));
        store.create_endpoint(&e[i as usize]).await.unwrap();
    }
    let foreign = g.endpoint(&other_app.id, None, at(2));
    store.create_endpoint(&foreign).await.unwrap();
    let list = |page| {
        let app_id = app.id.clone();
        async move { store.list_endpoints(&app_id, &page).await.unwrap() }
    };

    assert_eq!(shape(&list(first(2, ASC)).await), (pick(&e, &[0, 1]), true));
    assert_eq!(
        shape(&list(after(&e[1].id, 2, ASC)).await),
        (pick(&e, &[2]), false)
    );
    assert_eq!(
        shape(&list(before(&e[2].id, 2, ASC)).await),
        (pick(&e, &[0, 1]), false)
    );
    let newest = list(first(50, DESC)).await;
    assert_eq!(newest.items, vec![e[2].clone(), e[1].clone(), e[0].clone()]);
    assert!(!newest.has_more);

    let mut all = store.all_endpoints(&app.id).await.unwrap();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(all, e);
}

// ----- event types -----

/// Upsert inserts a new name and replaces every field of an existing one.
pub async fn event_type_upsert_inserts_then_replaces_by_name(store: &dyn Store) {
    let created = event_type(Live, "user.created", false, at(0));
    store.upsert_event_type(&created).await.expect("insert");
    let found = store.get_event_type(Live, "user.created").await.unwrap();
    assert_eq!(found, Some(created.clone()));

    let replaced = EventType {
        description: "A user signed up".to_string(),
        archived: true,
        deprecated: true,
        feature_flag: Some("beta".to_string()),
        schemas: Some(serde_json::json!({"1": {"type": "object", "required": ["id"]}})),
        updated_at: at(60),
        ..created
    };
    store.upsert_event_type(&replaced).await.expect("replace");
    let found = store.get_event_type(Live, "user.created").await.unwrap();
    assert_eq!(found, Some(replaced));
    assert_eq!(
        store.get_event_type(Live, "user.deleted").await.unwrap(),
        None
    );
}

/// The same name lives independently in each environment.
pub async fn event_types_are_scoped_by_environment(store: &dyn Store) {
    let live = event_type(Live, "user.created", false, at(0));
    store.upsert_event_type(&live).await.unwrap();
    assert_eq!(
        store.get_event_type(Test, "user.created").await.unwrap(),
        None
    );
    let in_test = store
        .list_event_types(Test, true, &first(50, ASC))
        .await
        .unwrap();
    assert_eq!(shape(&in_test), (vec![], false));
    let delete = store.delete_event_type(Test, "user.created").await;
    assert_not_found(delete, "delete through Test");

    let mut test = event_type(Test, "user.created", false, at(1));
    test.description = "sandbox copy".to_string();
    store.upsert_event_type(&test).await.unwrap();
    assert_eq!(
        store.get_event_type(Test, "user.created").await.unwrap(),
        Some(test)
    );
    assert_eq!(
        store.get_event_type(Live, "user.created").await.unwrap(),
        Some(live)
    );
}

/// Event types list by name in both orders with keyset cursors; archived ones only on request.
pub async fn event_types_list_by_name_and_hide_archived_unless_asked(store: &dyn Store) {
    let a = event_type(Live, "a.first", false, at(0));
    let b = event_type(Live, "b.archived", true, at(1));
    let c = event_type(Live, "c.third", false, at(2));
    for et in [&c, &a, &b] {
        store.upsert_event_type(et).await.unwrap();
    }
    let ets = [a.clone(), b.clone(), c.clone()];
    let list = |archived: bool, page: PageRequest| async move {
        store.list_event_types(Live, archived, &page).await.unwrap()
    };

    let visible = list(false, first(50, ASC)).await;
    assert_eq!((visible.items, visible.has_more), (vec![a, c], false));
    let all = list(true, first(50, ASC)).await;
    assert_eq!(all.items, ets);

    let page = list(true, first(2, ASC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[0, 1]), true));
    let page = list(true, after("b.archived", 2, ASC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[2]), false));
    let page = list(true, before("c.third", 1, ASC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[1]), true));
    let page = list(false, first(1, DESC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[2]), true));
    let page = list(false, after("c.third", 1, DESC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[0]), false));
}

/// Deleting an event type removes it; deleting again is `NotFound`.
pub async fn event_type_delete_removes_it_for_good(store: &dyn Store) {
    let et = event_type(Live, "user.created", false, at(0));
    store.upsert_event_type(&et).await.unwrap();
    store
        .delete_event_type(Live, "user.created")
        .await
        .expect("delete");
    assert_eq!(
        store.get_event_type(Live, "user.created").await.unwrap(),
        None
    );
    let listed = store
        .list_event_types(Live, true, &first(50, ASC))
        .await
        .unwrap();
    assert_eq!(shape(&listed), (vec![], false));
    let again = store.delete_event_type(Live, "user.created").await;
    assert_not_found(again, "second delete");
}

// ----- messages -----

/// A message reads back equal by id and by event id, only through its application.
pub async fn message_is_found_by_id_and_by_event_id(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();
    let mut msg = g.message(&app.id, "user.created", at(5));
    msg.event_id = Some("evt-1".to_string());
    msg.channels = Some(strings(&["eu", "vip"]));
    msg.payload = Some(r#"{"id": 1,  "name":"Ada"}"#.to_string());
    let d = g.delivery(&msg, &ep.id, at(5));
    store
        .create_message(&msg, &[d])
        .await
        .expect("create message");

    let get = |app_id: &str, key: &str| {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        async move { store.get_message(&app_id, &key).await.unwrap() }
    };
    assert_eq!(get(&app.id, &msg.id).await, Some(msg.clone()));
    assert_eq!(get(&app.id, "evt-1").await, Some(msg.clone()));
    assert_eq!(get(&other_app.id, &msg.id).await, None);
    assert_eq!(get(&other_app.id, "evt-1").await, None);
    assert_eq!(get(&app.id, "evt-2").await, None);
}

/// A second message with a taken event id is `Conflict`, and none of its deliveries are stored;
/// another application may use the same event id.
pub async fn duplicate_event_id_is_a_conflict_and_inserts_none_of_its_deliveries(
    store: &dyn Store,
) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let ep2 = g.endpoint(&app.id, None, at(1));
    store.create_endpoint(&ep2).await.unwrap();
    let mut original = g.message(&app.id, "user.created", at(2));
    original.event_id = Some("evt-1".to_string());
    let delivered = g.delivery(&original, &ep.id, at(2));
    store
        .create_message(&original, slice::from_ref(&delivered))
        .await
        .unwrap();

    let mut retry = g.message(&app.id, "user.created", at(3));
    retry.event_id = Some("evt-1".to_string());
    let rejected = [
        g.delivery(&retry, &ep.id, at(3)),
        g.delivery(&retry, &ep2.id, at(3)),
    ];
    let result = store.create_message(&retry, &rejected).await;
    assert_conflict(result, "same event id, same application");

    assert_eq!(store.get_message(&app.id, &retry.id).await.unwrap(), None);
    assert_eq!(
        store.get_message(&app.id, "evt-1").await.unwrap(),
        Some(original)
    );
    assert_eq!(store.get_delivery(&retry.id, &ep.id).await.unwrap(), None);
    assert_eq!(store.get_delivery(&retry.id, &ep2.id).await.unwrap(), None);
    let listed = store
        .list_message_deliveries(&retry.id, &first(50, ASC))
        .await
        .unwrap();
    assert_eq!(shape(&listed), (vec![], false));
    assert_eq!(claim(store, 10, 40).await, vec![delivered.id]);

    let other_app = g.app(Live, None, at(4));
    store.create_application(&other_app).await.unwrap();
    let mut elsewhere = g.message(&other_app.id, "user.created", at(5));
    elsewhere.event_id = Some("evt-1".to_string());
    store
        .create_message(&elsewhere, &[])
        .await
        .expect("same event id in another app");
    let found = store.get_message(&other_app.id, "evt-1").await.unwrap();
    assert_eq!(found, Some(elsewhere));
}

/// Messages list newest first by default, in pages, filtered by event type, channel and a
/// strict creation-time window, and never include another application's messages.
pub async fn messages_list_newest_first_and_filter_by_type_channel_and_time(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(0));
    store.create_application(&other_app).await.unwrap();
    let specs: [(&str, Option<&[&str]>); 4] = [
        ("user.created", Some(&["eu"])),
        ("user.deleted", Some(&["us"])),
        ("user.created", Some(&["us", "eu"])),
        ("invoice.paid", None),
    ];
    let mut m = Vec::new();
    for (i, (event_type, channels)) in (0..).zip(specs) {
        let mut msg = g.message(&app.id, event_type, at(10 * i));
        msg.channels = channels.map(strings);
        store.create_message(&msg, &[]).await.unwrap();
        m.push(msg);
    }
    let foreign = g.message(&other_app.id, "user.created", at(15));
    store.create_message(&foreign, &[]).await.unwrap();
    let list = |filter: MessageFilter, page: PageRequest| {
        let app_id = app.id.clone();
        async move { store.list_messages(&app_id, &filter, &page).await.unwrap() }
    };
    let find = |filter: MessageFilter| async move { keys(&list(filter, everything()).await) };

    let all = list(MessageFilter::default(), everything()).await;
    assert_eq!(
        (all.items, all.has_more),
        (m.iter().rev().cloned().collect(), false)
    );
    let page = list(MessageFilter::default(), first(50, ASC)).await;
    assert_eq!(shape(&page), (pick(&m, &[0, 1, 2, 3]), false));
    let page = list(MessageFilter::default(), first(3, DESC)).await;
    assert_eq!(shape(&page), (pick(&m, &[3, 2, 1]), true));
    let page = list(MessageFilter::default(), after(&m[1].id, 3, DESC)).await;
    assert_eq!(shape(&page), (pick(&m, &[0]), false));

    assert_eq!(find(types(&["user.created"])).await, pick(&m, &[2, 0]));
    let two_types = types(&["user.created", "invoice.paid"]);
    assert_eq!(find(two_types).await, pick(&m, &[3, 2, 0]));
    assert_eq!(find(on_channel("eu")).await, pick(&m, &[2, 0]));
    assert_eq!(find(on_channel("us")).await, pick(&m, &[2, 1]));
    assert_eq!(find(on_channel("apac")).await, pick(&m, &[]));
    assert_eq!(find(created(None, Some(20))).await, pick(&m, &[1, 0]));
    assert_eq!(find(created(Some(10), None)).await, pick(&m, &[3, 2]));
    assert_eq!(find(created(Some(0), Some(30))).await, pick(&m, &[2, 1]));
    let both = MessageFilter {
        channel: Some("us".to_string()),
        ..types(&["user.created"])
    };
    assert_eq!(find(both).await, pick(&m, &[2]));
}

// ----- the queue -----

/// A claim leases exactly the deliveries that are due and hold no live lease, reporting what a
/// worker needs; claiming again while the lease holds returns nothing.
pub async fn claim_due_leases_only_deliveries_that_are_due_and_unleased(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let msg = g.message(&app.id, "user.created", at(0));
    let (ep_future, ep_leased) = (
        g.endpoint(&app.id, None, at(0)),
        g.endpoint(&app.id, None, at(0)),
    );
    store.create_endpoint(&ep_future).await.unwrap();
    store.create_endpoint(&ep_leased).await.unwrap();
    let due = g.delivery(&msg, &ep.id, at(0));
    let future = g.delivery(&msg, &ep_future.id, at(100));
    let mut leased = g.delivery(&msg, &ep_leased.id, at(0));
    leased.leased_until = Some(at(60));
    store
        .create_message(&msg, &[due.clone(), future, leased])
        .await
        .unwrap();

    let claims = store.claim_due(at(10), at(40), 100).await.unwrap();
    let expected = ClaimedDelivery {
        id: due.id.clone(),
        msg_id: msg.id.clone(),
        endpoint_id: ep.id.clone(),
        app_id: app.id.clone(),
        scheduled_attempts: 0,
        total_attempts: 0,
        trigger: TriggerType::Scheduled,
    };
    assert_eq!(claims, vec![expected]);
    assert_eq!(claim(store, 20, 50).await, Vec::<String>::new());
    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!((state.id, state.status), (due.id, Pending));
}

/// A worker that never reports back only delays its delivery until the lease runs out.
pub async fn claimed_delivery_is_claimed_again_once_its_lease_expires(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, 0).await;

    assert_eq!(claim(store, 0, 30).await, vec![d.id.clone()]);
    assert_eq!(claim(store, 29, 60).await, Vec::<String>::new());
    assert_eq!(claim(store, 31, 60).await, vec![d.id.clone()]);
    assert_eq!(claim(store, 59, 90).await, Vec::<String>::new());
}

/// A delivery handed straight to the local dispatcher (created leased) is left alone by pollers
/// until that lease ends.
pub async fn delivery_created_with_a_lease_is_not_claimed_before_the_lease_ends(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let msg = g.message(&app.id, "user.created", at(0));
    let mut d = g.delivery(&msg, &ep.id, at(0));
    d.leased_until = Some(at(60));
    store
        .create_message(&msg, slice::from_ref(&d))
        .await
        .unwrap();

    assert_eq!(claim(store, 0, 30).await, Vec::<String>::new());
    assert_eq!(claim(store, 59, 90).await, Vec::<String>::new());
    assert_eq!(claim(store, 61, 90).await, vec![d.id]);
}

/// With more due than the limit, a claim takes the longest overdue first, and the next claim
/// takes the rest without repeating any.
pub async fn claim_due_takes_the_longest_overdue_first_up_to_the_limit(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    // Sent newest first so that insertion order cannot pass for due order.
    let (_, late) = send(store, &mut g, &ep, 20).await;
    let (_, middle) = send(store, &mut g, &ep, 10).await;
    let (_, early) = send(store, &mut g, &ep, 0).await;
    let claim_two = || async move {
        let claims = store.claim_due(at(30), at(90), 2).await.unwrap();
        sorted(claims.into_iter().map(|c| c.id))
    };

    assert_eq!(claim_two().await, sorted([early.id, middle.id]));
    assert_eq!(claim_two().await, vec![late.id]);
    assert_eq!(claim_two().await, Vec::<String>::new());
}

/// Claims racing each other split the due deliveries between them: none is handed out twice,
/// and together with a final claim they hand out all of them.
pub async fn concurrent_claims_never_hand_out_the_same_delivery(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let mut expected = Vec::new();
    for i in 0..12 {
        expected.push(send(store, &mut g, &ep, i).await.1.id);
    }

    let race = || store.claim_due(at(100), at(200), 4);
    let (a, b, c, d) = tokio::join!(race(), race(), race(), race());
    let claims = [a, b, c, d].into_iter().flat_map(|claims| claims.unwrap());
    let mut seen: Vec<String> = claims.map(|c| c.id).collect();
    let handed_out = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), handed_out, "a delivery was claimed twice");
    seen.extend(claim(store, 100, 200).await);
    assert_eq!(sorted(seen), sorted(expected));
}

/// A recorded attempt reads back by id under its message and lists by message and by endpoint;
/// the delivery takes the state the outcome names.
pub async fn recorded_attempt_is_readable_and_listed_by_message_and_endpoint(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let (other_msg, _) = send(store, &mut g, &ep, 1).await;
    let other_ep = g.endpoint(&app.id, None, at(1));
    store.create_endpoint(&other_ep).await.unwrap();

    assert_eq!(claim(store, 0, 30).await, vec![d.id.clone()]);
    let outcome = g.outcome(&d, at(1), 503, Sending, Some(at(60)));
    store
        .record_attempts(slice::from_ref(&outcome))
        .await
        .expect("record");
    let attempt = outcome.attempt;

    let found = store.get_attempt(&msg.id, &attempt.id).await.unwrap();
    assert_eq!(found, Some(attempt.clone()));
    assert_eq!(
        store.get_attempt(&other_msg.id, &attempt.id).await.unwrap(),
        None
    );
    let list = |msg_id: Option<&str>, endpoint_id: Option<&str>| {
        let filter = AttemptFilter {
            app_id: app.id.clone(),
            msg_id: msg_id.map(str::to_string),
            endpoint_id: endpoint_id.map(str::to_string),
            ..Default::default()
        };
        async move { store.list_attempts(&filter, &everything()).await.unwrap() }
    };
    let by_msg = list(Some(&msg.id), None).await;
    assert_eq!(
        (by_msg.items, by_msg.has_more),
        (vec![attempt.clone()], false)
    );
    assert_eq!(list(None, Some(&ep.id)).await.items, vec![attempt.clone()]);
    assert_eq!(list(Some(&msg.id), Some(&ep.id)).await.items, vec![attempt]);
    assert_eq!(
        list(Some(&other_msg.id), None).await.items,
        Vec::<Attempt>::new()
    );
    assert_eq!(
        list(None, Some(&other_ep.id)).await.items,
        Vec::<Attempt>::new()
    );

    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    let expected = (d.id, Sending, Some(at(60)));
    assert_eq!((state.id, state.status, state.next_attempt_at), expected);
}

/// After a failed attempt with a retry scheduled, the delivery waits for its retry time (not
/// just for the lease) and then comes back with its attempt counts.
pub async fn delivery_with_a_retry_scheduled_is_not_claimed_before_it_is_due(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, 0).await;
    assert_eq!(claim(store, 0, 30).await, vec![d.id.clone()]);
    let retry_at_60 = g.outcome(&d, at(1), 500, Sending, Some(at(60)));
    store.record_attempts(&[retry_at_60]).await.unwrap();

    assert_eq!(claim(store, 45, 100).await, Vec::<String>::new());
    let claims = store.claim_due(at(61), at(100), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    let counts = (c.scheduled_attempts, c.total_attempts, c.trigger);
    assert_eq!(counts, (1, 1, TriggerType::Scheduled));
}

/// A delivery whose outcome left no next attempt is finished and never claimed again.
pub async fn finished_delivery_is_never_claimed_again(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let (failed_msg, failed) = send(store, &mut g, &ep, 0).await;
    assert_eq!(
        claim(store, 0, 30).await,
        sorted([d.id.clone(), failed.id.clone()])
    );
    let outcomes = [
        g.outcome(&d, at(1), 204, Success, None),
        g.outcome(&failed, at(1), 410, Fail, None),
    ];
    store.record_attempts(&outcomes).await.unwrap();

    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Success, None));
    let state = store
        .get_delivery(&failed_msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Fail, None));
    assert_eq!(
        claim(store, 10_000_000, 10_000_030).await,
        Vec::<String>::new()
    );
}

/// Recording an attempt clears the lease at once, so an immediate retry is claimable before the
/// old lease would have run out.
pub async fn recording_an_attempt_releases_the_lease(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, 0).await;
    assert_eq!(claim(store, 0, 300).await, vec![d.id.clone()]);
    let retry_at_2 = g.outcome(&d, at(1), 0, Sending, Some(at(2)));
    store.record_attempts(&[retry_at_2]).await.unwrap();

    assert_eq!(claim(store, 3, 300).await, vec![d.id]);
}

/// After a restart, deliveries leased by the dead process (claimed, or created leased) are
/// claimable at once; finished ones stay finished.
pub async fn release_stale_leases_makes_leased_deliveries_claimable_again(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (_, claimed_before) = send(store, &mut g, &ep, 0).await;
    assert_eq!(claim(store, 0, 1000).await, vec![claimed_before.id.clone()]);
    let msg = g.message(&app.id, "user.created", at(1));
    let mut handed_over = g.delivery(&msg, &ep.id, at(1));
    handed_over.leased_until = Some(at(1000));
    store
        .create_message(&msg, slice::from_ref(&handed_over))
        .await
        .unwrap();
    let (_, finished) = send(store, &mut g, &ep, 2).await;
    assert_eq!(claim(store, 2, 1000).await, vec![finished.id.clone()]);
    let success = g.outcome(&finished, at(3), 200, Success, None);
    store.record_attempts(&[success]).await.unwrap();
    assert_eq!(claim(store, 10, 1000).await, Vec::<String>::new());

    assert_eq!(store.release_stale_leases().await.expect("release"), 2);
    let expected = sorted([claimed_before.id, handed_over.id]);
    assert_eq!(claim(store, 10, 1000).await, expected);
}

/// Resending a finished delivery makes it due now as one manual attempt, after which it stays
/// finished. The existing delivery's id is returned, not the one proposed.
pub async fn manual_schedule_makes_a_finished_delivery_due_as_a_manual_attempt(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let gave_up = g.outcome(&d, at(1), 500, Fail, None);
    store.record_attempts(&[gave_up]).await.unwrap();
    assert_eq!(claim(store, 50, 80).await, Vec::<String>::new());

    let mut proposal = d.clone();
    (proposal.id, proposal.due_at) = (g.id(IdKind::Delivery, at(50)), at(50));
    let id = store
        .schedule_manual(&proposal, at(50))
        .await
        .expect("schedule");
    assert_eq!(id, d.id);
    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!((&state.id, state.next_attempt_at), (&d.id, Some(at(50))));

    let claims = store.claim_due(at(50), at(80), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    assert_eq!(
        (c.trigger, c.scheduled_attempts, c.total_attempts),
        (TriggerType::Manual, 1, 1)
    );

    let mut manual = g.outcome(&d, at(51), 500, Fail, None);
    (manual.attempt.trigger_type, manual.attempt.attempt_number) = (TriggerType::Manual, 2);
    store
        .record_attempts(slice::from_ref(&manual))
        .await
        .unwrap();
    let found = store
        .get_attempt(&msg.id, &manual.attempt.id)
        .await
        .unwrap();
    assert_eq!(found, Some(manual.attempt));
    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Fail, None));
    assert_eq!(claim(store, 10_000, 10_030).await, Vec::<String>::new());
}

/// Sending a message to an endpoint it never went to creates the delivery, pending and due now
/// as a manual attempt.
pub async fn manual_schedule_creates_the_delivery_when_the_endpoint_never_had_one(
    store: &dyn Store,
) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, _) = send(store, &mut g, &ep, 0).await;
    let newcomer = g.endpoint(&app.id, None, at(5));
    store.create_endpoint(&newcomer).await.unwrap();
    assert_eq!(
        store.get_delivery(&msg.id, &newcomer.id).await.unwrap(),
        None
    );

    let d = g.delivery(&msg, &newcomer.id, at(50));
    assert_eq!(
        store.schedule_manual(&d, at(50)).await.expect("schedule"),
        d.id
    );
    let state = store
        .get_delivery(&msg.id, &newcomer.id)
        .await
        .unwrap()
        .expect("created");
    let expected = (&d.id, &msg.id, Pending, Some(at(50)));
    assert_eq!(
        (
            &state.id,
            &state.msg_id,
            state.status,
            state.next_attempt_at
        ),
        expected
    );
    assert!(
        !claim(store, 49, 80).await.contains(&d.id),
        "claimed before it was due"
    );

    let claims = store.claim_due(at(50), at(80), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    let expected = (&msg.id, &newcomer.id, &app.id, TriggerType::Manual, 0, 0);
    let got = (
        &c.msg_id,
        &c.endpoint_id,
        &c.app_id,
        c.trigger,
        c.scheduled_attempts,
        c.total_attempts,
    );
    assert_eq!(got, expected);
}

/// Resending a delivery still waiting on its schedule makes it due now.
pub async fn manual_schedule_makes_a_delivery_on_its_schedule_due_now(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let msg = g.message(&app.id, "user.created", at(0));
    let d = g.delivery(&msg, &ep.id, at(1000));
    store
        .create_message(&msg, slice::from_ref(&d))
        .await
        .unwrap();
    assert_eq!(claim(store, 10, 40).await, Vec::<String>::new());

    assert_eq!(store.schedule_manual(&d, at(10)).await.unwrap(), d.id);
    assert_eq!(claim(store, 10, 40).await, vec![d.id]);
}

/// A message's deliveries list as keyset pages by endpoint id, with their state.
pub async fn message_deliveries_page_by_endpoint_id(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, e0) = app_with_endpoint(store, &mut g).await;
    let (e1, e2) = (
        g.endpoint(&app.id, None, at(1)),
        g.endpoint(&app.id, None, at(2)),
    );
    store.create_endpoint(&e1).await.unwrap();
    store.create_endpoint(&e2).await.unwrap();
    let eps = [e0, e1, e2];
    let msg = g.message(&app.id, "user.created", at(10));
    let ds: Vec<NewDelivery> = [2, 0, 1]
        .map(|i| g.delivery(&msg, &eps[i].id, at(10)))
        .into();
    store.create_message(&msg, &ds).await.unwrap();
    send(store, &mut g, &eps[0], 11).await;
    let list = |page| {
        let msg_id = msg.id.clone();
        async move { store.list_message_deliveries(&msg_id, &page).await.unwrap() }
    };

    assert_eq!(
        shape(&list(first(2, ASC)).await),
        (pick(&eps, &[0, 1]), true)
    );
    assert_eq!(
        shape(&list(after(&eps[1].id, 2, ASC)).await),
        (pick(&eps, &[2]), false)
    );
    let newest = list(first(50, DESC)).await;
    assert_eq!(shape(&newest), (pick(&eps, &[2, 1, 0]), false));

    let expected: Vec<_> = [0, 2, 1]
        .map(|i| (ds[i].id.clone(), Pending, Some(at(10))))
        .into();
    let states = newest
        .items
        .into_iter()
        .map(|s| (s.id, s.status, s.next_attempt_at));
    assert_eq!(states.collect::<Vec<_>>(), expected);
}

/// An endpoint's deliveries list with their messages, newest message first, in pages, filtered
/// by delivery status and by message filters.
pub async fn endpoint_deliveries_list_newest_message_first_and_filter_by_status(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_ep = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&other_ep).await.unwrap();
    let (m0, d0) = send(store, &mut g, &ep, 0).await;
    let m1 = g.message(&app.id, "invoice.paid", at(10));
    let d1 = g.delivery(&m1, &ep.id, at(10));
    let to_other = g.delivery(&m1, &other_ep.id, at(10));
    store
        .create_message(&m1, &[d1.clone(), to_other])
        .await
        .unwrap();
    let (m2, d2) = send(store, &mut g, &ep, 20).await;
    send(store, &mut g, &other_ep, 30).await;
    let outcomes = [
        g.outcome(&d0, at(1), 200, Success, None),
        g.outcome(&d1, at(11), 400, Fail, None),
    ];
    store.record_attempts(&outcomes).await.unwrap();
    let m = [m0, m1, m2];
    let list = |filter: MessageFilter, page: PageRequest| {
        let ep_id = ep.id.clone();
        async move {
            store
                .list_endpoint_deliveries(&ep_id, &filter, &page)
                .await
                .unwrap()
        }
    };
    let find = |filter: MessageFilter| async move { keys(&list(filter, everything()).await) };

    let all = list(MessageFilter::default(), everything()).await;
    let messages: Vec<Message> = all.items.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(messages, vec![m[2].clone(), m[1].clone(), m[0].clone()]);
    let states = all.items.into_iter();
    let states: Vec<_> = states
        .map(|(d, _)| (d.id, d.endpoint_id, d.status))
        .collect();
    let expected =
        [(d2, Pending), (d1, Fail), (d0, Success)].map(|(d, s)| (d.id, ep.id.clone(), s));
    assert_eq!(states, expected);

    let page = list(MessageFilter::default(), first(2, DESC)).await;
    assert_eq!(shape(&page), (pick(&m, &[2, 1]), true));
    let page = list(MessageFilter::default(), after(&m[1].id, 2, DESC)).await;
    assert_eq!(shape(&page), (pick(&m, &[0]), false));
    let page = list(MessageFilter::default(), first(50, ASC)).await;
    assert_eq!(shape(&page), (pick(&m, &[0, 1, 2]), false));

    assert_eq!(find(in_status(Success)).await, pick(&m, &[0]));
    assert_eq!(find(in_status(Fail)).await, pick(&m, &[1]));
    assert_eq!(find(in_status(Pending)).await, pick(&m, &[2]));
    assert_eq!(find(in_status(Sending)).await, pick(&m, &[]));
    assert_eq!(find(types(&["user.created"])).await, pick(&m, &[2, 0]));
    assert_eq!(find(created(Some(0), None)).await, pick(&m, &[2, 1]));
}

/// Attempts list newest first per application and filter by attempt status and by status code
/// class (0 meaning no response); several outcomes record in one call.
pub async fn attempts_filter_by_status_and_status_code_class(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(0));
    store.create_application(&other_app).await.unwrap();
    let other_ep = g.endpoint(&other_app.id, None, at(0));
    store.create_endpoint(&other_ep).await.unwrap();
    let (_, foreign) = send(store, &mut g, &other_ep, 0).await;
    let mut sent = Vec::new();
    for i in 0..4 {
        sent.push(send(store, &mut g, &ep, i).await);
    }
    let d = |i: usize| &sent[i].1;
    let outcomes = [
        g.outcome(d(0), at(100), 200, Success, None),
        g.outcome(d(1), at(101), 500, Sending, Some(at(1000))),
        g.outcome(d(2), at(102), 0, Sending, Some(at(1000))),
        g.outcome(d(3), at(103), 404, Fail, None),
    ];
    store
        .record_attempts(&outcomes)
        .await
        .expect("record four outcomes at once");
    let elsewhere = g.outcome(&foreign, at(104), 200, Success, None);
    store.record_attempts(&[elsewhere]).await.unwrap();
    let a: Vec<Attempt> = outcomes.iter().map(|o| o.attempt.clone()).collect();
    let of_app = AttemptFilter {
        app_id: app.id.clone(),
        ..Default::default()
    };
    let list = |filter: AttemptFilter, page: PageRequest| async move {
        store.list_attempts(&filter, &page).await.unwrap()
    };
    let find = |filter: AttemptFilter| async move { keys(&list(filter, everything()).await) };

    let all = list(of_app.clone(), everything()).await;
    assert_eq!(all.items, a.iter().rev().cloned().collect::<Vec<_>>());
    let page = list(of_app.clone(), first(3, DESC)).await;
    assert_eq!(shape(&page), (pick(&a, &[3, 2, 1]), true));
    let page = list(of_app.clone(), after(&a[1].id, 3, DESC)).await;
    assert_eq!(shape(&page), (pick(&a, &[0]), false));

    let status = |s| AttemptFilter {
        status: Some(s),
        ..of_app.clone()
    };
    assert_eq!(find(status(Success)).await, pick(&a, &[0]));
    assert_eq!(find(status(Fail)).await, pick(&a, &[3, 2, 1]));
    let class = |c| AttemptFilter {
        status_code_class: Some(c),
        ..of_app.clone()
    };
    assert_eq!(find(class(200)).await, pick(&a, &[0]));
    assert_eq!(find(class(300)).await, pick(&a, &[]));
    assert_eq!(find(class(400)).await, pick(&a, &[3]));
    assert_eq!(find(class(500)).await, pick(&a, &[1]));
    assert_eq!(find(class(0)).await, pick(&a, &[2]));
    let failed_5xx = AttemptFilter {
        status: Some(Fail),
        ..class(500)
    };
    assert_eq!(find(failed_5xx).await, pick(&a, &[1]));
    let foreign_ep = AttemptFilter {
        endpoint_id: Some(other_ep.id.clone()),
        ..of_app
    };
    assert_eq!(find(foreign_ep).await, pick(&a, &[]));

    let mut states = Vec::new();
    for (msg, _) in &sent {
        let state = store
            .get_delivery(&msg.id, &ep.id)
            .await
            .unwrap()
            .expect("delivery");
        states.push((state.status, state.next_attempt_at));
    }
    let retry = Some(at(1000));
    assert_eq!(
        states,
        [
            (Success, None),
            (Sending, retry),
            (Sending, retry),
            (Fail, None)
        ]
    );
}

/// Deleting an application takes its endpoints, messages, deliveries and attempts with it and
/// leaves other applications untouched.
pub async fn deleting_an_application_removes_its_endpoints_messages_deliveries_and_attempts(
    store: &dyn Store,
) {
    let mut g = Gen::new();
    let (doomed, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 1).await;
    let (_, pending) = send(store, &mut g, &ep, 2).await;
    let outcome = g.outcome(&d, at(3), 200, Success, None);
    store
        .record_attempts(slice::from_ref(&outcome))
        .await
        .unwrap();
    let kept = g.app(Live, None, at(4));
    store.create_application(&kept).await.unwrap();
    let kept_ep = g.endpoint(&kept.id, None, at(4));
    store.create_endpoint(&kept_ep).await.unwrap();
    let (kept_msg, kept_d) = send(store, &mut g, &kept_ep, 5).await;

    store
        .delete_application(Live, &doomed.id)
        .await
        .expect("delete");

    assert_eq!(store.get_application(Live, &doomed.id).await.unwrap(), None);
    assert_eq!(store.get_endpoint(&doomed.id, &ep.id).await.unwrap(), None);
    assert_eq!(
        store.all_endpoints(&doomed.id).await.unwrap(),
        Vec::<Endpoint>::new()
    );
    assert_eq!(store.get_message(&doomed.id, &msg.id).await.unwrap(), None);
    let unfiltered = MessageFilter::default();
    let msgs = store
        .list_messages(&doomed.id, &unfiltered, &everything())
        .await
        .unwrap();
    assert_eq!(shape(&msgs), (vec![], false));
    assert_eq!(store.get_delivery(&msg.id, &ep.id).await.unwrap(), None);
    let deliveries = store
        .list_endpoint_deliveries(&ep.id, &unfiltered, &everything())
        .await;
    assert_eq!(shape(&deliveries.unwrap()), (vec![], false));
    assert_eq!(
        store
            .get_attempt(&msg.id, &outcome.attempt.id)
            .await
            .unwrap(),
        None
    );
    let of_doomed = AttemptFilter {
        app_id: doomed.id.clone(),
        ..Default::default()
    };
    let attempts = store
        .list_attempts(&of_doomed, &everything())
        .await
        .unwrap();
    assert_eq!(shape(&attempts), (vec![], false));

    let claims = claim(store, 100, 200).await;
    assert!(
        !claims.contains(&pending.id),
        "a deleted application's delivery was claimed"
    );
    assert_eq!(claims, vec![kept_d.id]);
    let found = store.get_message(&kept.id, &kept_msg.id).await.unwrap();
    assert_eq!(found, Some(kept_msg));
    assert_eq!(store.all_endpoints(&kept.id).await.unwrap(), vec![kept_ep]);
}
