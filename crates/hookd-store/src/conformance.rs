//! The conformance suite: what every [`Store`] backend must do, written once.
//!
//! A backend is done when the whole suite passes on it. Each test is a plain
//! `pub async fn <sentence>(store: &dyn Store)` that expects a fresh, empty store, so the same
//! bodies run unchanged against SQLite, PostgreSQL or anything else. A backend's integration
//! test turns them into `#[tokio::test]`s with [`store_conformance_tests!`](crate::store_conformance_tests):
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
//! passed to [`Store::claim_due`] rather than by sleeping. Tests only rely on what the [`Store`]
//! documentation promises (lease boundaries, for instance, are probed strictly before and after).
//!
//! Adding a test: write the body here and add its name to the list in the macro.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use hookd_core::id::IdKind;
use hookd_core::model::Environment::{Live, Test};
use hookd_core::model::{
    Application, Attempt, Endpoint, Environment, EventType, Message, MessageStatus, TriggerType,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::{
    AttemptFilter, AttemptRecord, ClaimedDelivery, Cursor, MessageFilter, NewDelivery, Page,
    PageRequest, Store, StoreError, StoreResult, TokenRecord,
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
    Utc.timestamp_opt(1_800_000_000, 0)
        .single()
        .expect("valid base time")
}

/// `secs` seconds after [`base_time`]. Whole seconds survive every backend's time precision.
pub fn at(secs: i64) -> DateTime<Utc> {
    base_time() + Duration::seconds(secs)
}

/// Builds records with ids made at their creation time (so id order is creation order) from a
/// seeded RNG (so a failing run can be repeated exactly).
struct Gen {
    rng: StdRng,
    serial: u32,
}

impl Gen {
    fn new() -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(0x600d_5eed),
            serial: 0,
        }
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

    fn delivery(&mut self, msg: &Message, endpoint_id: &str, due_at: DateTime<Utc>) -> NewDelivery {
        NewDelivery {
            id: self.id(IdKind::Delivery, msg.created_at),
            msg_id: msg.id.clone(),
            endpoint_id: endpoint_id.to_string(),
            app_id: msg.app_id.clone(),
            due_at,
            leased_until: None,
        }
    }

    /// One scheduled attempt of `d` at `when` answered with `code` (0: no response), and the
    /// delivery's state after it.
    fn outcome(
        &mut self,
        d: &NewDelivery,
        when: DateTime<Utc>,
        code: i64,
        delivery_status: MessageStatus,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> AttemptRecord {
        let ok = (200..300).contains(&code);
        AttemptRecord {
            delivery_id: d.id.clone(),
            attempt: Attempt {
                id: self.id(IdKind::Attempt, when),
                msg_id: d.msg_id.clone(),
                endpoint_id: d.endpoint_id.clone(),
                url: "https://receiver.example/hooks".to_string(),
                response: if code == 0 {
                    "connection refused".to_string()
                } else {
                    format!("HTTP {code}")
                },
                response_status_code: code,
                response_duration_ms: 42,
                status: if ok {
                    MessageStatus::Success
                } else {
                    MessageStatus::Fail
                },
                trigger_type: TriggerType::Scheduled,
                attempt_number: 1,
                created_at: when,
            },
            delivery_status,
            next_attempt_at,
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
    store
        .create_application(&app)
        .await
        .expect("create application");
    let ep = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&ep).await.expect("create endpoint");
    (app, ep)
}

/// Stores a message created at `created` with one delivery to `ep`, due then.
async fn send(
    store: &dyn Store,
    g: &mut Gen,
    ep: &Endpoint,
    created: DateTime<Utc>,
) -> (Message, NewDelivery) {
    let msg = g.message(&ep.app_id, "user.created", created);
    let d = g.delivery(&msg, &ep.id, created);
    store
        .create_message(&msg, std::slice::from_ref(&d))
        .await
        .expect("create message");
    (msg, d)
}

/// Claims every due delivery at `now`, leased until `lease_until`; ids sorted.
async fn claim(store: &dyn Store, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Vec<String> {
    let claimed = store
        .claim_due(now, lease_until, 100)
        .await
        .expect("claim due deliveries");
    sorted(claimed.iter().map(|c| c.id.clone()))
}

fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort();
    ids
}

fn keys<T>(page: &Page<T>, key: impl Fn(&T) -> &String) -> Vec<String> {
    page.items.iter().map(|item| key(item).clone()).collect()
}

fn forward_from(key: &str, limit: usize, ascending: bool) -> PageRequest {
    PageRequest {
        limit,
        cursor: Some(Cursor {
            key: key.to_string(),
            backwards: false,
        }),
        ascending,
    }
}

fn backward_from(key: &str, limit: usize, ascending: bool) -> PageRequest {
    PageRequest {
        limit,
        cursor: Some(Cursor {
            key: key.to_string(),
            backwards: true,
        }),
        ascending,
    }
}

fn all_newest_first() -> PageRequest {
    PageRequest::first(crate::page::MAX_LIMIT, false)
}

fn assert_conflict<T: std::fmt::Debug>(result: StoreResult<T>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "{what}: expected Conflict, got {result:?}"
    );
}

fn assert_not_found<T: std::fmt::Debug>(result: StoreResult<T>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "{what}: expected NotFound, got {result:?}"
    );
}

fn claimed<'a>(claims: &'a [ClaimedDelivery], id: &str) -> &'a ClaimedDelivery {
    claims
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} was not claimed: {claims:?}"))
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
    store
        .create_token(&admin)
        .await
        .expect("create admin token");
    store
        .create_token(&scoped)
        .await
        .expect("create scoped token");

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

    assert_eq!(
        store.get_application(Live, &app.id).await.unwrap(),
        Some(app.clone())
    );
    assert_eq!(
        store.get_application(Live, "acme").await.unwrap(),
        Some(app)
    );
    assert_eq!(
        store.get_application(Live, &anonymous.id).await.unwrap(),
        Some(anonymous)
    );
    assert_eq!(store.get_application(Live, "globex").await.unwrap(), None);
    let never_stored = g.id(IdKind::Application, at(2));
    assert_eq!(
        store.get_application(Live, &never_stored).await.unwrap(),
        None
    );
}

/// A uid is unique within an environment, not across environments.
pub async fn application_uid_taken_in_the_environment_is_a_conflict(store: &dyn Store) {
    let mut g = Gen::new();
    let first = g.app(Live, Some("acme"), at(0));
    store.create_application(&first).await.unwrap();

    let second = g.app(Live, Some("acme"), at(1));
    assert_conflict(
        store.create_application(&second).await,
        "same uid, same environment",
    );
    assert_eq!(store.get_application(Live, &second.id).await.unwrap(), None);
    assert_conflict(store.create_application(&first).await, "same id twice");

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
        Some(first)
    );
}

/// An application created in Live cannot be read, listed or deleted through Test.
pub async fn applications_are_invisible_from_the_other_environment(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, Some("acme"), at(0));
    store.create_application(&app).await.unwrap();

    assert_eq!(store.get_application(Test, &app.id).await.unwrap(), None);
    assert_eq!(store.get_application(Test, "acme").await.unwrap(), None);
    let test_page = store
        .list_applications(Test, &PageRequest::first(50, true))
        .await
        .unwrap();
    assert!(
        test_page.items.is_empty() && !test_page.has_more,
        "Test lists Live apps: {test_page:?}"
    );
    assert_not_found(
        store.delete_application(Test, &app.id).await,
        "delete through Test",
    );

    let live_page = store
        .list_applications(Live, &PageRequest::first(50, true))
        .await
        .unwrap();
    assert_eq!(live_page.items, vec![app.clone()]);
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

    let changed = Application {
        uid: Some("acme-corp".to_string()),
        name: "Acme Corporation".to_string(),
        metadata: BTreeMap::from([
            ("plan".to_string(), "enterprise".to_string()),
            ("region".to_string(), "eu".to_string()),
        ]),
        throttle_rate: Some(5),
        updated_at: at(100),
        ..app.clone()
    };
    store
        .update_application(&changed)
        .await
        .expect("update application");
    assert_eq!(
        store.get_application(Live, &app.id).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        store.get_application(Live, "acme-corp").await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(store.get_application(Live, "acme").await.unwrap(), None);

    let cleared = Application {
        uid: None,
        throttle_rate: None,
        updated_at: at(101),
        ..changed.clone()
    };
    store.update_application(&cleared).await.expect("clear uid");
    assert_eq!(
        store.get_application(Live, &app.id).await.unwrap(),
        Some(cleared.clone())
    );

    let stealing = Application {
        uid: Some("globex".to_string()),
        updated_at: at(102),
        ..cleared.clone()
    };
    assert_conflict(
        store.update_application(&stealing).await,
        "update to a taken uid",
    );
    assert_eq!(
        store.get_application(Live, &app.id).await.unwrap(),
        Some(cleared)
    );

    let ghost = g.app(Live, Some("ghost"), at(3));
    assert_not_found(
        store.update_application(&ghost).await,
        "update of a missing application",
    );
    assert_eq!(store.get_application(Live, "ghost").await.unwrap(), None);
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
        .expect("delete application");
    assert_eq!(store.get_application(Live, &app.id).await.unwrap(), None);
    assert_eq!(store.get_application(Live, "acme").await.unwrap(), None);
    assert_not_found(
        store.delete_application(Live, &app.id).await,
        "second delete",
    );
    let page = store
        .list_applications(Live, &PageRequest::first(50, true))
        .await
        .unwrap();
    assert_eq!(page.items, vec![kept]);

    let reuse = g.app(Live, Some("acme"), at(2));
    store
        .create_application(&reuse)
        .await
        .expect("a deleted application's uid is free again");
}

/// Application lists are keyset pages by id (creation order), oldest or newest first, with
/// `has_more` set exactly when another page follows.
pub async fn applications_page_by_id_in_both_orders(store: &dyn Store) {
    let mut g = Gen::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        let app = g.app(Live, None, at(i * 10));
        store.create_application(&app).await.unwrap();
        ids.push(app.id);
    }
    let list =
        |page: PageRequest| async move { store.list_applications(Live, &page).await.unwrap() };

    let p1 = list(PageRequest::first(2, true)).await;
    assert_eq!(
        (keys(&p1, |a| &a.id), p1.has_more),
        (ids[0..2].to_vec(), true)
    );
    let p2 = list(forward_from(&ids[1], 2, true)).await;
    assert_eq!(
        (keys(&p2, |a| &a.id), p2.has_more),
        (ids[2..4].to_vec(), true)
    );
    let p3 = list(forward_from(&ids[3], 2, true)).await;
    assert_eq!(
        (keys(&p3, |a| &a.id), p3.has_more),
        (ids[4..5].to_vec(), false)
    );
    let past_end = list(forward_from(&ids[4], 2, true)).await;
    assert_eq!((past_end.items.len(), past_end.has_more), (0, false));

    let newest: Vec<String> = ids.iter().rev().cloned().collect();
    let p1 = list(PageRequest::first(2, false)).await;
    assert_eq!(
        (keys(&p1, |a| &a.id), p1.has_more),
        (newest[0..2].to_vec(), true)
    );
    let p2 = list(forward_from(&newest[1], 2, false)).await;
    assert_eq!(
        (keys(&p2, |a| &a.id), p2.has_more),
        (newest[2..4].to_vec(), true)
    );
    let p3 = list(forward_from(&newest[3], 2, false)).await;
    assert_eq!(
        (keys(&p3, |a| &a.id), p3.has_more),
        (newest[4..5].to_vec(), false)
    );

    let exact = list(PageRequest::first(5, true)).await;
    assert_eq!(
        (keys(&exact, |a| &a.id), exact.has_more),
        (ids.clone(), false)
    );
    let roomy = list(PageRequest::first(6, false)).await;
    assert_eq!((keys(&roomy, |a| &a.id), roomy.has_more), (newest, false));
}

/// A backwards cursor (from the first item of a page) returns the page before it, still in list
/// order, with `has_more` telling whether pages lie further back.
pub async fn backwards_cursor_returns_the_previous_page_in_list_order(store: &dyn Store) {
    let mut g = Gen::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        let app = g.app(Live, None, at(i * 10));
        store.create_application(&app).await.unwrap();
        ids.push(app.id);
    }
    let list =
        |page: PageRequest| async move { store.list_applications(Live, &page).await.unwrap() };

    // Oldest first: pages [0 1] [2 3] [4].
    let back = list(backward_from(&ids[4], 2, true)).await;
    assert_eq!(
        (keys(&back, |a| &a.id), back.has_more),
        (ids[2..4].to_vec(), true)
    );
    let back = list(backward_from(&ids[2], 2, true)).await;
    assert_eq!(
        (keys(&back, |a| &a.id), back.has_more),
        (ids[0..2].to_vec(), false)
    );
    let back = list(backward_from(&ids[0], 2, true)).await;
    assert_eq!((back.items.len(), back.has_more), (0, false));

    // Newest first: pages [4 3] [2 1] [0].
    let back = list(backward_from(&ids[0], 2, false)).await;
    assert_eq!(
        (keys(&back, |a| &a.id), back.has_more),
        (vec![ids[2].clone(), ids[1].clone()], true)
    );
    let back = list(backward_from(&ids[2], 2, false)).await;
    assert_eq!(
        (keys(&back, |a| &a.id), back.has_more),
        (vec![ids[4].clone(), ids[3].clone()], false)
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
        event_types: Some(vec!["user.created".to_string(), "invoice.paid".to_string()]),
        channels: Some(vec!["eu".to_string()]),
        throttle_rate: Some(10),
        metadata: BTreeMap::from([("team".to_string(), "billing".to_string())]),
        headers: BTreeMap::from([("X-Api-Key".to_string(), "k1".to_string())]),
        ..g.endpoint(&app.id, Some("orders"), at(2))
    };
    store.create_endpoint(&ep).await.unwrap();

    assert_eq!(
        store.get_endpoint(&app.id, &ep.id).await.unwrap(),
        Some(ep.clone())
    );
    assert_eq!(
        store.get_endpoint(&app.id, "orders").await.unwrap(),
        Some(ep.clone())
    );
    assert_eq!(
        store.get_endpoint(&other_app.id, &ep.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_endpoint(&other_app.id, "orders").await.unwrap(),
        None
    );
    assert_eq!(store.get_endpoint(&app.id, "billing").await.unwrap(), None);
}

/// An endpoint uid is unique within its application; another application may reuse it.
pub async fn endpoint_uid_is_unique_per_application(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();

    let first = g.endpoint(&app.id, Some("orders"), at(2));
    store.create_endpoint(&first).await.unwrap();
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
    assert_eq!(
        store.get_endpoint(&other_app.id, "orders").await.unwrap(),
        Some(elsewhere)
    );
    assert_eq!(
        store.get_endpoint(&app.id, "orders").await.unwrap(),
        Some(first)
    );
}

/// Update replaces every mutable field, secret and headers included; unknown ids are
/// `NotFound`, a uid held by another endpoint of the application is `Conflict`.
pub async fn endpoint_update_replaces_every_mutable_field(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let sibling = g.endpoint(&app.id, Some("sibling"), at(1));
    store.create_endpoint(&sibling).await.unwrap();

    let changed = Endpoint {
        uid: Some("orders".to_string()),
        url: "https://new.example/in".to_string(),
        description: "moved".to_string(),
        disabled: true,
        event_types: Some(vec!["invoice.paid".to_string()]),
        channels: Some(vec!["us".to_string(), "eu".to_string()]),
        throttle_rate: Some(3),
        metadata: BTreeMap::from([("owner".to_string(), "ops".to_string())]),
        secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_string(),
        headers: BTreeMap::from([("Authorization".to_string(), "Bearer x".to_string())]),
        updated_at: at(50),
        ..ep.clone()
    };
    store
        .update_endpoint(&changed)
        .await
        .expect("update endpoint");
    assert_eq!(
        store.get_endpoint(&app.id, &ep.id).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        store.get_endpoint(&app.id, "orders").await.unwrap(),
        Some(changed.clone())
    );

    let reverted = Endpoint {
        uid: None,
        event_types: None,
        channels: None,
        headers: BTreeMap::new(),
        updated_at: at(51),
        ..changed
    };
    store
        .update_endpoint(&reverted)
        .await
        .expect("clear optional fields");
    assert_eq!(
        store.get_endpoint(&app.id, &ep.id).await.unwrap(),
        Some(reverted.clone())
    );

    let stealing = Endpoint {
        uid: Some("sibling".to_string()),
        updated_at: at(52),
        ..reverted.clone()
    };
    assert_conflict(
        store.update_endpoint(&stealing).await,
        "update to a sibling's uid",
    );
    assert_eq!(
        store.get_endpoint(&app.id, &ep.id).await.unwrap(),
        Some(reverted)
    );

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

    assert_not_found(
        store.delete_endpoint(&other_app.id, &ep.id).await,
        "delete through another application",
    );
    store
        .delete_endpoint(&app.id, &ep.id)
        .await
        .expect("delete endpoint");
    assert_eq!(store.get_endpoint(&app.id, &ep.id).await.unwrap(), None);
    assert_not_found(
        store.delete_endpoint(&app.id, &ep.id).await,
        "second delete",
    );

    assert_eq!(claim(store, at(10), at(40)).await, vec![survivor.id]);
    let remaining = store.all_endpoints(&app.id).await.unwrap();
    assert_eq!(remaining, vec![kept]);
}

/// Endpoint lists are keyset pages by id in both orders; `all_endpoints` returns every endpoint
/// of the application and no other.
pub async fn endpoints_page_by_id_and_all_endpoints_lists_only_the_application(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, None, at(0));
    let other_app = g.app(Live, None, at(0));
    store.create_application(&app).await.unwrap();
    store.create_application(&other_app).await.unwrap();
    let mut eps = Vec::new();
    for i in 0..3 {
        let ep = g.endpoint(&app.id, None, at(i + 1));
        store.create_endpoint(&ep).await.unwrap();
        eps.push(ep);
    }
    store
        .create_endpoint(&g.endpoint(&other_app.id, None, at(2)))
        .await
        .unwrap();
    let ids: Vec<String> = eps.iter().map(|e| e.id.clone()).collect();

    let p1 = store
        .list_endpoints(&app.id, &PageRequest::first(2, true))
        .await
        .unwrap();
    assert_eq!(
        (keys(&p1, |e| &e.id), p1.has_more),
        (ids[0..2].to_vec(), true)
    );
    let p2 = store
        .list_endpoints(&app.id, &forward_from(&ids[1], 2, true))
        .await
        .unwrap();
    assert_eq!(
        (keys(&p2, |e| &e.id), p2.has_more),
        (ids[2..3].to_vec(), false)
    );
    let back = store
        .list_endpoints(&app.id, &backward_from(&ids[2], 2, true))
        .await
        .unwrap();
    assert_eq!(
        (keys(&back, |e| &e.id), back.has_more),
        (ids[0..2].to_vec(), false)
    );
    let newest = store
        .list_endpoints(&app.id, &PageRequest::first(50, false))
        .await
        .unwrap();
    assert_eq!(newest.items, eps.iter().rev().cloned().collect::<Vec<_>>());
    assert!(!newest.has_more);

    let mut all = store.all_endpoints(&app.id).await.unwrap();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(all, eps);
}

// ----- event types -----

/// Upsert inserts a new name and replaces every field of an existing one.
pub async fn event_type_upsert_inserts_then_replaces_by_name(store: &dyn Store) {
    let created = event_type(Live, "user.created", false, at(0));
    store.upsert_event_type(&created).await.expect("insert");
    assert_eq!(
        store.get_event_type(Live, "user.created").await.unwrap(),
        Some(created.clone())
    );

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
    assert_eq!(
        store.get_event_type(Live, "user.created").await.unwrap(),
        Some(replaced)
    );
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
    let test_list = store
        .list_event_types(Test, true, &PageRequest::first(50, true))
        .await
        .unwrap();
    assert!(
        test_list.items.is_empty(),
        "Test lists Live event types: {test_list:?}"
    );
    assert_not_found(
        store.delete_event_type(Test, "user.created").await,
        "delete through Test",
    );

    let test = EventType {
        description: "sandbox copy".to_string(),
        ..event_type(Test, "user.created", false, at(1))
    };
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
    let list = |archived: bool, page: PageRequest| async move {
        store.list_event_types(Live, archived, &page).await.unwrap()
    };

    let visible = list(false, PageRequest::first(50, true)).await;
    assert_eq!(
        (visible.items, visible.has_more),
        (vec![a.clone(), c.clone()], false)
    );
    let everything = list(true, PageRequest::first(50, true)).await;
    assert_eq!(everything.items, vec![a.clone(), b.clone(), c.clone()]);

    let p1 = list(true, PageRequest::first(2, true)).await;
    assert_eq!(
        (keys(&p1, |e| &e.name), p1.has_more),
        (vec![a.name.clone(), b.name.clone()], true)
    );
    let p2 = list(true, forward_from(&b.name, 2, true)).await;
    assert_eq!(
        (keys(&p2, |e| &e.name), p2.has_more),
        (vec![c.name.clone()], false)
    );
    let desc = list(false, PageRequest::first(1, false)).await;
    assert_eq!(
        (keys(&desc, |e| &e.name), desc.has_more),
        (vec![c.name.clone()], true)
    );
    let desc2 = list(false, forward_from(&c.name, 1, false)).await;
    assert_eq!(
        (keys(&desc2, |e| &e.name), desc2.has_more),
        (vec![a.name.clone()], false)
    );
    let back = list(true, backward_from(&c.name, 1, true)).await;
    assert_eq!(
        (keys(&back, |e| &e.name), back.has_more),
        (vec![b.name.clone()], true)
    );
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
        .list_event_types(Live, true, &PageRequest::first(50, true))
        .await
        .unwrap();
    assert!(
        listed.items.is_empty(),
        "deleted type still listed: {listed:?}"
    );
    assert_not_found(
        store.delete_event_type(Live, "user.created").await,
        "second delete",
    );
}

// ----- messages -----

/// A message reads back equal by id and by event id, only through its application.
pub async fn message_is_found_by_id_and_by_event_id(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();
    let msg = Message {
        event_id: Some("evt-1".to_string()),
        channels: Some(vec!["eu".to_string(), "vip".to_string()]),
        payload: Some(r#"{"id": 1,  "name":"Ada"}"#.to_string()),
        ..g.message(&app.id, "user.created", at(5))
    };
    let d = g.delivery(&msg, &ep.id, at(5));
    store
        .create_message(&msg, &[d])
        .await
        .expect("create message");

    assert_eq!(
        store.get_message(&app.id, &msg.id).await.unwrap(),
        Some(msg.clone())
    );
    assert_eq!(
        store.get_message(&app.id, "evt-1").await.unwrap(),
        Some(msg.clone())
    );
    assert_eq!(
        store.get_message(&other_app.id, &msg.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_message(&other_app.id, "evt-1").await.unwrap(),
        None
    );
    assert_eq!(store.get_message(&app.id, "evt-2").await.unwrap(), None);
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
    let first = Message {
        event_id: Some("evt-1".to_string()),
        ..g.message(&app.id, "user.created", at(2))
    };
    let first_delivery = g.delivery(&first, &ep.id, at(2));
    store
        .create_message(&first, std::slice::from_ref(&first_delivery))
        .await
        .unwrap();

    let retry = Message {
        event_id: Some("evt-1".to_string()),
        ..g.message(&app.id, "user.created", at(3))
    };
    let rejected = [
        g.delivery(&retry, &ep.id, at(3)),
        g.delivery(&retry, &ep2.id, at(3)),
    ];
    assert_conflict(
        store.create_message(&retry, &rejected).await,
        "same event id, same application",
    );

    assert_eq!(store.get_message(&app.id, &retry.id).await.unwrap(), None);
    assert_eq!(
        store.get_message(&app.id, "evt-1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get_delivery(&retry.id, &ep.id).await.unwrap(), None);
    assert_eq!(store.get_delivery(&retry.id, &ep2.id).await.unwrap(), None);
    let listed = store
        .list_message_deliveries(&retry.id, &PageRequest::first(50, true))
        .await
        .unwrap();
    assert!(
        listed.items.is_empty(),
        "rejected message has deliveries: {listed:?}"
    );
    assert_eq!(claim(store, at(10), at(40)).await, vec![first_delivery.id]);

    let other_app = g.app(Live, None, at(4));
    store.create_application(&other_app).await.unwrap();
    let elsewhere = Message {
        event_id: Some("evt-1".to_string()),
        ..g.message(&other_app.id, "user.created", at(5))
    };
    store
        .create_message(&elsewhere, &[])
        .await
        .expect("same event id in another application");
    assert_eq!(
        store.get_message(&other_app.id, "evt-1").await.unwrap(),
        Some(elsewhere)
    );
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
    for (i, (event_type, channels)) in specs.into_iter().enumerate() {
        let msg = Message {
            channels: channels.map(|c| c.iter().map(|s| s.to_string()).collect()),
            ..g.message(&app.id, event_type, at(10 * i as i64))
        };
        store.create_message(&msg, &[]).await.unwrap();
        m.push(msg);
    }
    store
        .create_message(&g.message(&other_app.id, "user.created", at(15)), &[])
        .await
        .unwrap();
    let ids = |idx: &[usize]| idx.iter().map(|&i| m[i].id.clone()).collect::<Vec<_>>();
    let list = |filter: MessageFilter, page: PageRequest| {
        let app_id = app.id.clone();
        async move { store.list_messages(&app_id, &filter, &page).await.unwrap() }
    };
    let by = |filter: MessageFilter| list(filter, all_newest_first());

    let all = by(MessageFilter::default()).await;
    assert_eq!(all.items, m.iter().rev().cloned().collect::<Vec<_>>());
    assert!(!all.has_more);
    let oldest_first = list(MessageFilter::default(), PageRequest::first(50, true)).await;
    assert_eq!(keys(&oldest_first, |x| &x.id), ids(&[0, 1, 2, 3]));

    let p1 = list(MessageFilter::default(), PageRequest::first(3, false)).await;
    assert_eq!((keys(&p1, |x| &x.id), p1.has_more), (ids(&[3, 2, 1]), true));
    let p2 = list(MessageFilter::default(), forward_from(&m[1].id, 3, false)).await;
    assert_eq!((keys(&p2, |x| &x.id), p2.has_more), (ids(&[0]), false));

    let types = |t: &[&str]| Some(t.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let f = by(MessageFilter {
        event_types: types(&["user.created"]),
        ..Default::default()
    })
    .await;
    assert_eq!(keys(&f, |x| &x.id), ids(&[2, 0]));
    let f = by(MessageFilter {
        event_types: types(&["user.created", "invoice.paid"]),
        ..Default::default()
    })
    .await;
    assert_eq!(keys(&f, |x| &x.id), ids(&[3, 2, 0]));
    let f = by(MessageFilter {
        channel: Some("eu".to_string()),
        ..Default::default()
    })
    .await;
    assert_eq!(keys(&f, |x| &x.id), ids(&[2, 0]));
    let f = by(MessageFilter {
        channel: Some("us".to_string()),
        ..Default::default()
    })
    .await;
    assert_eq!(keys(&f, |x| &x.id), ids(&[2, 1]));
    let f = by(MessageFilter {
        channel: Some("apac".to_string()),
        ..Default::default()
    })
    .await;
    assert!(f.items.is_empty(), "unknown channel matched: {f:?}");
    let f = by(MessageFilter {
        before: Some(at(20)),
        ..Default::default()
    })
    .await;
    assert_eq!(keys(&f, |x| &x.id), ids(&[1, 0]));
    let f = by(MessageFilter {
        after: Some(at(10)),
        ..Default::default()
    })
    .await;
    assert_eq!(keys(&f, |x| &x.id), ids(&[3, 2]));
    let f = by(MessageFilter {
        after: Some(at(0)),
        before: Some(at(30)),
        ..Default::default()
    })
    .await;
    assert_eq!(keys(&f, |x| &x.id), ids(&[2, 1]));
    let f = by(MessageFilter {
        event_types: types(&["user.created"]),
        channel: Some("us".to_string()),
        ..Default::default()
    })
    .await;
    assert_eq!(keys(&f, |x| &x.id), ids(&[2]));
}

// ----- the queue -----

/// A claim leases exactly the deliveries that are due and hold no live lease, reporting what a
/// worker needs; claiming again while the lease holds returns nothing.
pub async fn claim_due_leases_only_deliveries_that_are_due_and_unleased(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let msg = g.message(&app.id, "user.created", at(0));
    let ep_future = g.endpoint(&app.id, None, at(0));
    let ep_leased = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&ep_future).await.unwrap();
    store.create_endpoint(&ep_leased).await.unwrap();
    let due = g.delivery(&msg, &ep.id, at(0));
    let future = g.delivery(&msg, &ep_future.id, at(100));
    let leased = NewDelivery {
        leased_until: Some(at(60)),
        ..g.delivery(&msg, &ep_leased.id, at(0))
    };
    store
        .create_message(&msg, &[due.clone(), future, leased])
        .await
        .unwrap();

    let claims = store.claim_due(at(10), at(40), 100).await.unwrap();
    assert_eq!(
        claims,
        vec![ClaimedDelivery {
            id: due.id.clone(),
            msg_id: msg.id.clone(),
            endpoint_id: ep.id.clone(),
            app_id: app.id.clone(),
            scheduled_attempts: 0,
            total_attempts: 0,
            trigger: TriggerType::Scheduled,
        }]
    );
    assert_eq!(claim(store, at(20), at(50)).await, Vec::<String>::new());
    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("claimed delivery exists");
    assert_eq!((state.id, state.status), (due.id, MessageStatus::Pending));
}

/// A worker that never reports back only delays its delivery until the lease runs out.
pub async fn claimed_delivery_is_claimed_again_once_its_lease_expires(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, at(0)).await;

    assert_eq!(claim(store, at(0), at(30)).await, vec![d.id.clone()]);
    assert_eq!(claim(store, at(29), at(60)).await, Vec::<String>::new());
    assert_eq!(claim(store, at(31), at(60)).await, vec![d.id.clone()]);
    assert_eq!(claim(store, at(59), at(90)).await, Vec::<String>::new());
}

/// A delivery handed straight to the local dispatcher (created leased) is left alone by pollers
/// until that lease ends.
pub async fn delivery_created_with_a_lease_is_not_claimed_before_the_lease_ends(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let msg = g.message(&app.id, "user.created", at(0));
    let d = NewDelivery {
        leased_until: Some(at(60)),
        ..g.delivery(&msg, &ep.id, at(0))
    };
    store
        .create_message(&msg, std::slice::from_ref(&d))
        .await
        .unwrap();

    assert_eq!(claim(store, at(0), at(30)).await, Vec::<String>::new());
    assert_eq!(claim(store, at(59), at(90)).await, Vec::<String>::new());
    assert_eq!(claim(store, at(61), at(90)).await, vec![d.id]);
}

/// With more due than the limit, a claim takes the longest overdue first, and the next claim
/// takes the rest without repeating any.
pub async fn claim_due_takes_the_longest_overdue_first_up_to_the_limit(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    // Sent newest first so that insertion order cannot pass for due order.
    let (_, late) = send(store, &mut g, &ep, at(20)).await;
    let (_, middle) = send(store, &mut g, &ep, at(10)).await;
    let (_, early) = send(store, &mut g, &ep, at(0)).await;

    let first = store.claim_due(at(30), at(90), 2).await.unwrap();
    assert_eq!(
        sorted(first.iter().map(|c| c.id.clone())),
        sorted([early.id, middle.id])
    );
    let second = store.claim_due(at(30), at(90), 2).await.unwrap();
    assert_eq!(sorted(second.iter().map(|c| c.id.clone())), vec![late.id]);
    assert!(store.claim_due(at(30), at(90), 2).await.unwrap().is_empty());
}

/// Claims racing each other split the due deliveries between them: none is handed out twice,
/// and together with a final claim they hand out all of them.
pub async fn concurrent_claims_never_hand_out_the_same_delivery(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let mut expected = Vec::new();
    for i in 0..12 {
        expected.push(send(store, &mut g, &ep, at(i)).await.1.id);
    }

    let race = || store.claim_due(at(100), at(200), 4);
    let (a, b, c, d) = tokio::join!(race(), race(), race(), race());
    let mut seen: Vec<String> = [a, b, c, d]
        .into_iter()
        .flat_map(|claims| claims.expect("concurrent claim"))
        .map(|c| c.id)
        .collect();
    let handed_out = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), handed_out, "a delivery was claimed twice");
    seen.extend(claim(store, at(100), at(200)).await);
    assert_eq!(sorted(seen), sorted(expected));
}

/// A recorded attempt reads back by id under its message and lists by message and by endpoint;
/// the delivery takes the state the outcome names.
pub async fn recorded_attempt_is_readable_and_listed_by_message_and_endpoint(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, at(0)).await;
    let (other_msg, _) = send(store, &mut g, &ep, at(1)).await;
    let other_ep = g.endpoint(&app.id, None, at(1));
    store.create_endpoint(&other_ep).await.unwrap();

    assert_eq!(claim(store, at(0), at(30)).await.first(), Some(&d.id));
    let outcome = g.outcome(&d, at(1), 503, MessageStatus::Sending, Some(at(60)));
    store
        .record_attempts(std::slice::from_ref(&outcome))
        .await
        .expect("record attempt");
    let attempt = outcome.attempt.clone();

    assert_eq!(
        store.get_attempt(&msg.id, &attempt.id).await.unwrap(),
        Some(attempt.clone())
    );
    assert_eq!(
        store.get_attempt(&other_msg.id, &attempt.id).await.unwrap(),
        None
    );
    let filter = |msg_id: Option<&str>, endpoint_id: Option<&str>| AttemptFilter {
        app_id: app.id.clone(),
        msg_id: msg_id.map(str::to_string),
        endpoint_id: endpoint_id.map(str::to_string),
        ..Default::default()
    };
    let by_msg = store
        .list_attempts(&filter(Some(&msg.id), None), &all_newest_first())
        .await
        .unwrap();
    assert_eq!(
        (by_msg.items, by_msg.has_more),
        (vec![attempt.clone()], false)
    );
    let by_ep = store
        .list_attempts(&filter(None, Some(&ep.id)), &all_newest_first())
        .await
        .unwrap();
    assert_eq!(by_ep.items, vec![attempt.clone()]);
    let both = store
        .list_attempts(&filter(Some(&msg.id), Some(&ep.id)), &all_newest_first())
        .await
        .unwrap();
    assert_eq!(both.items, vec![attempt]);
    let none = store
        .list_attempts(&filter(Some(&other_msg.id), None), &all_newest_first())
        .await
        .unwrap();
    assert!(
        none.items.is_empty(),
        "attempt listed under another message: {none:?}"
    );
    let none = store
        .list_attempts(&filter(None, Some(&other_ep.id)), &all_newest_first())
        .await
        .unwrap();
    assert!(
        none.items.is_empty(),
        "attempt listed under another endpoint: {none:?}"
    );

    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!(
        (state.id, state.status, state.next_attempt_at),
        (d.id, MessageStatus::Sending, Some(at(60)))
    );
}

/// After a failed attempt with a retry scheduled, the delivery waits for its retry time (not
/// just for the lease) and then comes back with its attempt counts.
pub async fn delivery_with_a_retry_scheduled_is_not_claimed_before_it_is_due(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, at(0)).await;
    assert_eq!(claim(store, at(0), at(30)).await, vec![d.id.clone()]);
    store
        .record_attempts(&[g.outcome(&d, at(1), 500, MessageStatus::Sending, Some(at(60)))])
        .await
        .unwrap();

    assert_eq!(claim(store, at(45), at(100)).await, Vec::<String>::new());
    let claims = store.claim_due(at(61), at(100), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    assert_eq!(
        (c.scheduled_attempts, c.total_attempts, c.trigger),
        (1, 1, TriggerType::Scheduled)
    );
}

/// A delivery whose outcome left no next attempt is finished and never claimed again.
pub async fn finished_delivery_is_never_claimed_again(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, at(0)).await;
    let (failed_msg, failed) = send(store, &mut g, &ep, at(0)).await;
    assert_eq!(
        claim(store, at(0), at(30)).await,
        sorted([d.id.clone(), failed.id.clone()])
    );
    store
        .record_attempts(&[
            g.outcome(&d, at(1), 204, MessageStatus::Success, None),
            g.outcome(&failed, at(1), 410, MessageStatus::Fail, None),
        ])
        .await
        .unwrap();

    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!(
        (state.status, state.next_attempt_at),
        (MessageStatus::Success, None)
    );
    let state = store
        .get_delivery(&failed_msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!(
        (state.status, state.next_attempt_at),
        (MessageStatus::Fail, None)
    );
    assert_eq!(
        claim(store, at(10_000_000), at(10_000_030)).await,
        Vec::<String>::new()
    );
}

/// Recording an attempt clears the lease at once, so an immediate retry is claimable before the
/// old lease would have run out.
pub async fn recording_an_attempt_releases_the_lease(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, at(0)).await;
    assert_eq!(claim(store, at(0), at(300)).await, vec![d.id.clone()]);
    store
        .record_attempts(&[g.outcome(&d, at(1), 0, MessageStatus::Sending, Some(at(2)))])
        .await
        .unwrap();

    assert_eq!(claim(store, at(3), at(300)).await, vec![d.id]);
}

/// After a restart, deliveries leased by the dead process (claimed, or created leased) are
/// claimable at once.
pub async fn release_stale_leases_makes_leased_deliveries_claimable_again(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (_, claimed_before) = send(store, &mut g, &ep, at(0)).await;
    assert_eq!(
        claim(store, at(0), at(1000)).await,
        vec![claimed_before.id.clone()]
    );
    let msg = g.message(&app.id, "user.created", at(1));
    let handed_over = NewDelivery {
        leased_until: Some(at(1000)),
        ..g.delivery(&msg, &ep.id, at(1))
    };
    store
        .create_message(&msg, std::slice::from_ref(&handed_over))
        .await
        .unwrap();
    let (_, finished) = send(store, &mut g, &ep, at(2)).await;
    assert_eq!(
        claim(store, at(2), at(1000)).await,
        vec![finished.id.clone()]
    );
    store
        .record_attempts(&[g.outcome(&finished, at(3), 200, MessageStatus::Success, None)])
        .await
        .unwrap();
    assert_eq!(claim(store, at(10), at(1000)).await, Vec::<String>::new());

    assert_eq!(
        store.release_stale_leases().await.expect("release leases"),
        2
    );
    assert_eq!(
        claim(store, at(10), at(1000)).await,
        sorted([claimed_before.id, handed_over.id])
    );
}

/// Resending a finished delivery makes it due now as one manual attempt, after which it stays
/// finished. The existing delivery's id is returned, not the one proposed.
pub async fn manual_schedule_makes_a_finished_delivery_due_as_a_manual_attempt(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, at(0)).await;
    store
        .record_attempts(&[g.outcome(&d, at(1), 500, MessageStatus::Fail, None)])
        .await
        .unwrap();
    assert_eq!(claim(store, at(50), at(80)).await, Vec::<String>::new());

    let proposal = NewDelivery {
        id: g.id(IdKind::Delivery, at(50)),
        due_at: at(50),
        ..d.clone()
    };
    let id = store
        .schedule_manual(&proposal, at(50))
        .await
        .expect("schedule manual");
    assert_eq!(id, d.id);
    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!(
        (state.id.as_str(), state.next_attempt_at),
        (d.id.as_str(), Some(at(50)))
    );

    let claims = store.claim_due(at(50), at(80), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    assert_eq!(
        (c.trigger, c.scheduled_attempts, c.total_attempts),
        (TriggerType::Manual, 1, 1)
    );

    let mut manual = g.outcome(&d, at(51), 500, MessageStatus::Fail, None);
    manual.attempt.trigger_type = TriggerType::Manual;
    manual.attempt.attempt_number = 2;
    store
        .record_attempts(std::slice::from_ref(&manual))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_attempt(&msg.id, &manual.attempt.id)
            .await
            .unwrap(),
        Some(manual.attempt)
    );
    let state = store
        .get_delivery(&msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!(
        (state.status, state.next_attempt_at),
        (MessageStatus::Fail, None)
    );
    assert_eq!(
        claim(store, at(10_000), at(10_030)).await,
        Vec::<String>::new()
    );
}

/// Sending a message to an endpoint it never went to creates the delivery, pending and due now
/// as a manual attempt.
pub async fn manual_schedule_creates_the_delivery_when_the_endpoint_never_had_one(
    store: &dyn Store,
) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, _) = send(store, &mut g, &ep, at(0)).await;
    let newcomer = g.endpoint(&app.id, None, at(5));
    store.create_endpoint(&newcomer).await.unwrap();
    assert_eq!(
        store.get_delivery(&msg.id, &newcomer.id).await.unwrap(),
        None
    );

    let d = g.delivery(&msg, &newcomer.id, at(50));
    assert_eq!(
        store
            .schedule_manual(&d, at(50))
            .await
            .expect("schedule manual"),
        d.id
    );
    let state = store
        .get_delivery(&msg.id, &newcomer.id)
        .await
        .unwrap()
        .expect("created delivery");
    assert_eq!(
        (
            state.id.as_str(),
            state.msg_id.as_str(),
            state.status,
            state.next_attempt_at
        ),
        (
            d.id.as_str(),
            msg.id.as_str(),
            MessageStatus::Pending,
            Some(at(50))
        )
    );
    assert!(
        !claim(store, at(49), at(80)).await.contains(&d.id),
        "claimed before it was due"
    );

    let claims = store.claim_due(at(50), at(80), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    assert_eq!(
        (c.msg_id.as_str(), c.endpoint_id.as_str(), c.app_id.as_str()),
        (msg.id.as_str(), newcomer.id.as_str(), app.id.as_str())
    );
    assert_eq!(
        (c.trigger, c.scheduled_attempts, c.total_attempts),
        (TriggerType::Manual, 0, 0)
    );
}

/// Resending a delivery still waiting on its schedule makes it due now.
pub async fn manual_schedule_makes_a_delivery_on_its_schedule_due_now(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let msg = g.message(&app.id, "user.created", at(0));
    let d = g.delivery(&msg, &ep.id, at(1000));
    store
        .create_message(&msg, std::slice::from_ref(&d))
        .await
        .unwrap();
    assert_eq!(claim(store, at(10), at(40)).await, Vec::<String>::new());

    assert_eq!(store.schedule_manual(&d, at(10)).await.unwrap(), d.id);
    assert_eq!(claim(store, at(10), at(40)).await, vec![d.id]);
}

/// A message's deliveries list as keyset pages by endpoint id, with their state.
pub async fn message_deliveries_page_by_endpoint_id(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, e0) = app_with_endpoint(store, &mut g).await;
    let e1 = g.endpoint(&app.id, None, at(1));
    let e2 = g.endpoint(&app.id, None, at(2));
    store.create_endpoint(&e1).await.unwrap();
    store.create_endpoint(&e2).await.unwrap();
    let msg = g.message(&app.id, "user.created", at(10));
    let ds: Vec<NewDelivery> = [&e2, &e0, &e1]
        .iter()
        .map(|e| g.delivery(&msg, &e.id, at(10)))
        .collect();
    store.create_message(&msg, &ds).await.unwrap();
    send(store, &mut g, &e0, at(11)).await;
    let eps = [e0.id.clone(), e1.id.clone(), e2.id.clone()];

    let p1 = store
        .list_message_deliveries(&msg.id, &PageRequest::first(2, true))
        .await
        .unwrap();
    assert_eq!(
        (keys(&p1, |d| &d.endpoint_id), p1.has_more),
        (eps[0..2].to_vec(), true)
    );
    let p2 = store
        .list_message_deliveries(&msg.id, &forward_from(&eps[1], 2, true))
        .await
        .unwrap();
    assert_eq!(
        (keys(&p2, |d| &d.endpoint_id), p2.has_more),
        (eps[2..3].to_vec(), false)
    );
    let desc = store
        .list_message_deliveries(&msg.id, &PageRequest::first(50, false))
        .await
        .unwrap();
    assert_eq!(
        keys(&desc, |d| &d.endpoint_id),
        vec![eps[2].clone(), eps[1].clone(), eps[0].clone()]
    );

    for state in &desc.items {
        let expected = ds
            .iter()
            .find(|d| d.endpoint_id == state.endpoint_id)
            .expect("listed a stored delivery");
        assert_eq!(
            (
                state.id.as_str(),
                state.msg_id.as_str(),
                state.status,
                state.next_attempt_at
            ),
            (
                expected.id.as_str(),
                msg.id.as_str(),
                MessageStatus::Pending,
                Some(at(10))
            )
        );
    }
}

/// An endpoint's deliveries list with their messages, newest message first, in pages, filtered
/// by delivery status and by message filters.
pub async fn endpoint_deliveries_list_newest_message_first_and_filter_by_status(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_ep = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&other_ep).await.unwrap();
    let (m0, d0) = send(store, &mut g, &ep, at(0)).await;
    let m1 = g.message(&app.id, "invoice.paid", at(10));
    let d1 = g.delivery(&m1, &ep.id, at(10));
    store
        .create_message(&m1, &[d1.clone(), g.delivery(&m1, &other_ep.id, at(10))])
        .await
        .unwrap();
    let (m2, d2) = send(store, &mut g, &ep, at(20)).await;
    send(store, &mut g, &other_ep, at(30)).await;
    store
        .record_attempts(&[
            g.outcome(&d0, at(1), 200, MessageStatus::Success, None),
            g.outcome(&d1, at(11), 400, MessageStatus::Fail, None),
        ])
        .await
        .unwrap();

    let list = |filter: MessageFilter, page: PageRequest| {
        let ep_id = ep.id.clone();
        async move {
            store
                .list_endpoint_deliveries(&ep_id, &filter, &page)
                .await
                .unwrap()
        }
    };
    let msgs = |page: &Page<(crate::DeliveryState, Message)>| {
        page.items
            .iter()
            .map(|(_, m)| m.id.clone())
            .collect::<Vec<_>>()
    };

    let all = list(MessageFilter::default(), all_newest_first()).await;
    assert_eq!(
        all.items.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>(),
        vec![m2.clone(), m1.clone(), m0.clone()]
    );
    let states: Vec<_> = all
        .items
        .iter()
        .map(|(d, _)| (d.id.clone(), d.endpoint_id.clone(), d.status))
        .collect();
    assert_eq!(
        states,
        vec![
            (d2.id.clone(), ep.id.clone(), MessageStatus::Pending),
            (d1.id.clone(), ep.id.clone(), MessageStatus::Fail),
            (d0.id.clone(), ep.id.clone(), MessageStatus::Success),
        ]
    );

    let p1 = list(MessageFilter::default(), PageRequest::first(2, false)).await;
    assert_eq!(
        (msgs(&p1), p1.has_more),
        (vec![m2.id.clone(), m1.id.clone()], true)
    );
    let p2 = list(MessageFilter::default(), forward_from(&m1.id, 2, false)).await;
    assert_eq!((msgs(&p2), p2.has_more), (vec![m0.id.clone()], false));
    let oldest = list(MessageFilter::default(), PageRequest::first(50, true)).await;
    assert_eq!(
        msgs(&oldest),
        vec![m0.id.clone(), m1.id.clone(), m2.id.clone()]
    );

    let status = |s: MessageStatus| MessageFilter {
        status: Some(s),
        ..Default::default()
    };
    assert_eq!(
        msgs(&list(status(MessageStatus::Success), all_newest_first()).await),
        vec![m0.id.clone()]
    );
    assert_eq!(
        msgs(&list(status(MessageStatus::Fail), all_newest_first()).await),
        vec![m1.id.clone()]
    );
    assert_eq!(
        msgs(&list(status(MessageStatus::Pending), all_newest_first()).await),
        vec![m2.id.clone()]
    );
    assert!(list(status(MessageStatus::Sending), all_newest_first())
        .await
        .items
        .is_empty());

    let typed = MessageFilter {
        event_types: Some(vec!["user.created".to_string()]),
        ..Default::default()
    };
    assert_eq!(
        msgs(&list(typed, all_newest_first()).await),
        vec![m2.id.clone(), m0.id.clone()]
    );
    let recent = MessageFilter {
        after: Some(at(0)),
        ..Default::default()
    };
    assert_eq!(
        msgs(&list(recent, all_newest_first()).await),
        vec![m2.id, m1.id]
    );
}

/// Attempts list newest first per application and filter by attempt status and by status code
/// class (0 meaning no response); several outcomes record in one call.
pub async fn attempts_filter_by_status_and_status_code_class(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (other_app_ep, other_d) = {
        let other_app = g.app(Live, None, at(0));
        store.create_application(&other_app).await.unwrap();
        let other_ep = g.endpoint(&other_app.id, None, at(0));
        store.create_endpoint(&other_ep).await.unwrap();
        let (_, d) = send(store, &mut g, &other_ep, at(0)).await;
        (other_ep, d)
    };
    let mut ds = Vec::new();
    for i in 0..4 {
        ds.push(send(store, &mut g, &ep, at(i)).await);
    }
    let outcomes = [
        g.outcome(&ds[0].1, at(100), 200, MessageStatus::Success, None),
        g.outcome(
            &ds[1].1,
            at(101),
            500,
            MessageStatus::Sending,
            Some(at(1000)),
        ),
        g.outcome(&ds[2].1, at(102), 0, MessageStatus::Sending, Some(at(1000))),
        g.outcome(&ds[3].1, at(103), 404, MessageStatus::Fail, None),
    ];
    store
        .record_attempts(&outcomes)
        .await
        .expect("record four outcomes at once");
    store
        .record_attempts(&[g.outcome(&other_d, at(104), 200, MessageStatus::Success, None)])
        .await
        .unwrap();
    let ids = |idx: &[usize]| {
        idx.iter()
            .map(|&i| outcomes[i].attempt.id.clone())
            .collect::<Vec<_>>()
    };
    let list = |filter: AttemptFilter| async move {
        store
            .list_attempts(&filter, &all_newest_first())
            .await
            .unwrap()
    };
    let of_app = AttemptFilter {
        app_id: app.id.clone(),
        ..Default::default()
    };

    let all = list(of_app.clone()).await;
    assert_eq!(
        all.items,
        outcomes
            .iter()
            .rev()
            .map(|o| o.attempt.clone())
            .collect::<Vec<_>>()
    );
    let p1 = store
        .list_attempts(&of_app, &PageRequest::first(3, false))
        .await
        .unwrap();
    assert_eq!((keys(&p1, |a| &a.id), p1.has_more), (ids(&[3, 2, 1]), true));
    let p2 = store
        .list_attempts(&of_app, &forward_from(&outcomes[1].attempt.id, 3, false))
        .await
        .unwrap();
    assert_eq!((keys(&p2, |a| &a.id), p2.has_more), (ids(&[0]), false));

    let status = |s| AttemptFilter {
        status: Some(s),
        ..of_app.clone()
    };
    assert_eq!(
        keys(&list(status(MessageStatus::Success)).await, |a| &a.id),
        ids(&[0])
    );
    assert_eq!(
        keys(&list(status(MessageStatus::Fail)).await, |a| &a.id),
        ids(&[3, 2, 1])
    );
    let class = |c| AttemptFilter {
        status_code_class: Some(c),
        ..of_app.clone()
    };
    assert_eq!(keys(&list(class(200)).await, |a| &a.id), ids(&[0]));
    assert_eq!(keys(&list(class(400)).await, |a| &a.id), ids(&[3]));
    assert_eq!(keys(&list(class(500)).await, |a| &a.id), ids(&[1]));
    assert_eq!(keys(&list(class(0)).await, |a| &a.id), ids(&[2]));
    assert!(list(class(300)).await.items.is_empty());
    let failed_5xx = AttemptFilter {
        status: Some(MessageStatus::Fail),
        status_code_class: Some(500),
        ..of_app.clone()
    };
    assert_eq!(keys(&list(failed_5xx).await, |a| &a.id), ids(&[1]));

    let states: Vec<_> = {
        let mut v = Vec::new();
        for (msg, _) in &ds {
            let s = store
                .get_delivery(&msg.id, &ep.id)
                .await
                .unwrap()
                .expect("delivery");
            v.push((s.status, s.next_attempt_at));
        }
        v
    };
    assert_eq!(
        states,
        vec![
            (MessageStatus::Success, None),
            (MessageStatus::Sending, Some(at(1000))),
            (MessageStatus::Sending, Some(at(1000))),
            (MessageStatus::Fail, None),
        ]
    );
    let foreign = list(AttemptFilter {
        endpoint_id: Some(other_app_ep.id.clone()),
        ..of_app
    })
    .await;
    assert!(
        foreign.items.is_empty(),
        "another application's attempt listed: {foreign:?}"
    );
}

/// Deleting an application takes its endpoints, messages, deliveries and attempts with it and
/// leaves other applications untouched.
pub async fn deleting_an_application_removes_its_endpoints_messages_deliveries_and_attempts(
    store: &dyn Store,
) {
    let mut g = Gen::new();
    let (doomed, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, at(1)).await;
    let (_, pending) = send(store, &mut g, &ep, at(2)).await;
    let outcome = g.outcome(&d, at(3), 200, MessageStatus::Success, None);
    store
        .record_attempts(std::slice::from_ref(&outcome))
        .await
        .unwrap();

    let kept = g.app(Live, None, at(4));
    store.create_application(&kept).await.unwrap();
    let kept_ep = g.endpoint(&kept.id, None, at(4));
    store.create_endpoint(&kept_ep).await.unwrap();
    let (kept_msg, kept_d) = send(store, &mut g, &kept_ep, at(5)).await;

    store
        .delete_application(Live, &doomed.id)
        .await
        .expect("delete application");

    assert_eq!(store.get_application(Live, &doomed.id).await.unwrap(), None);
    assert_eq!(store.get_endpoint(&doomed.id, &ep.id).await.unwrap(), None);
    assert!(store.all_endpoints(&doomed.id).await.unwrap().is_empty());
    assert_eq!(store.get_message(&doomed.id, &msg.id).await.unwrap(), None);
    let msgs = store
        .list_messages(&doomed.id, &MessageFilter::default(), &all_newest_first())
        .await
        .unwrap();
    assert!(msgs.items.is_empty(), "messages survived: {msgs:?}");
    assert_eq!(store.get_delivery(&msg.id, &ep.id).await.unwrap(), None);
    assert_eq!(
        store
            .get_attempt(&msg.id, &outcome.attempt.id)
            .await
            .unwrap(),
        None
    );
    let attempts = store
        .list_attempts(
            &AttemptFilter {
                app_id: doomed.id.clone(),
                ..Default::default()
            },
            &all_newest_first(),
        )
        .await
        .unwrap();
    assert!(attempts.items.is_empty(), "attempts survived: {attempts:?}");
    let endpoint_deliveries = store
        .list_endpoint_deliveries(&ep.id, &MessageFilter::default(), &all_newest_first())
        .await
        .unwrap();
    assert!(
        endpoint_deliveries.items.is_empty(),
        "deliveries survived: {endpoint_deliveries:?}"
    );

    let claims = claim(store, at(100), at(200)).await;
    assert!(
        !claims.contains(&pending.id),
        "a deleted application's delivery was claimed"
    );
    assert_eq!(claims, vec![kept_d.id]);
    assert_eq!(
        store.get_message(&kept.id, &kept_msg.id).await.unwrap(),
        Some(kept_msg)
    );
    assert_eq!(store.all_endpoints(&kept.id).await.unwrap(), vec![kept_ep]);
}
