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
//! A backend that needs a server (PostgreSQL) may not have one where the tests run. Its factory
//! then returns `None` (an `Option` of a fixture is a fixture too), after saying on stderr why,
//! and each generated test returns without running its body.
//!
//! Two tests describe what [`QueueStore::release_stale_leases`] does on an *embedded* store, the only
//! process using its database: leases are released and running tasks failed at start. A store
//! shared by several nodes must do neither, so those tests run only when the backend asks for
//! them with `store_conformance_tests!(fresh_store, embedded)`; the plain form runs everything
//! else. A shared backend proves the opposite behaviour in its own tests.
//!
//! Time and randomness are inputs here as everywhere: timestamps are offsets from a fixed
//! instant ([`at`]), ids come from a seeded RNG, and queue behaviour is driven by the `now`
//! passed to [`QueueStore::claim_due`] rather than by sleeping. Tests rely only on what the
//! [`Store`] documentation promises; lease ends, for instance, are probed strictly before and
//! strictly after, never at the boundary, and claims are compared as sets.
//!
//! The suite is organised like the store: one file per capability trait, [`tokens`]
//! ([`TokenStore`](crate::TokenStore)), [`catalog`] ([`CatalogStore`](crate::CatalogStore)),
//! [`messages`] ([`MessageStore`](crate::MessageStore)), [`queue`] and [`queue_outcomes`]
//! ([`QueueStore`](crate::QueueStore): claims and leases, then what an attempt's outcome does),
//! [`retention`] ([`RetentionStore`](crate::RetentionStore)), [`outbox`]
//! ([`OutboxStore`](crate::OutboxStore)), [`stats`] ([`StatsStore`](crate::StatsStore)),
//! [`sessions`] ([`SessionStore`](crate::SessionStore)), [`polls`] ([`PollStore`](crate::PollStore)),
//! [`fifo`] ([`FifoStore`](crate::FifoStore)),
//! [`tasks`] ([`TaskStore`](crate::TaskStore))
//! and [`idempotency`]
//! ([`IdempotencyStore`](crate::IdempotencyStore), with the write gate). Adding a test: write the
//! body in the file of the capability it exercises and add its name to that capability's group
//! in the macro's list.

mod catalog;
mod fifo;
mod idempotency;
mod messages;
mod outbox;
mod polls;
mod queue;
mod queue_outcomes;
mod retention;
mod sessions;
mod stats;
mod tasks;
mod tokens;

pub use catalog::*;
pub use fifo::*;
pub use idempotency::*;
pub use messages::*;
pub use outbox::*;
pub use polls::*;
pub use queue::*;
pub use queue_outcomes::*;
pub use retention::*;
pub use sessions::*;
pub use stats::*;
pub use tasks::*;
pub use tokens::*;

use std::collections::BTreeMap;
use std::slice;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use hookd_core::id::IdKind;
use hookd_core::model::Environment::{Live, Test};
use hookd_core::model::MessageStatus::{Fail, Pending, Sending, Success};
use hookd_core::model::{
    Application, Attempt, Endpoint, Environment, EventType, Message, MessageStatus, SentHeaders, TriggerType,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::{
    AttemptFilter, AttemptRecord, ClaimBounds, ClaimedDelivery, Cursor, DeliveryState, MessageFilter, NewDelivery,
    OutboxEvent, Page, PageRequest, QueueStats, Store, StoreError, StoreResult, TokenRecord,
};

/// What a backend's factory hands the suite: the store under test, plus anything that must live
/// as long as it does.
pub trait Fixture {
    /// The store under test; `None` when the backend cannot run here (no server configured), and
    /// the test returns without running.
    fn store(&self) -> Option<&dyn Store>;
}

impl<S: Store> Fixture for S {
    fn store(&self) -> Option<&dyn Store> {
        Some(self)
    }
}

impl<S: Store, G> Fixture for (S, G) {
    fn store(&self) -> Option<&dyn Store> {
        Some(&self.0)
    }
}

/// `None` is the fixture of a backend that is not available where the tests run.
impl<F: Fixture> Fixture for Option<F> {
    fn store(&self) -> Option<&dyn Store> {
        self.as_ref().and_then(Fixture::store)
    }
}

/// Expands to one `#[tokio::test]` per conformance test, each running its body against a fresh
/// store made by `$make` (an async closure or an async fn path returning a [`Fixture`]).
///
/// `store_conformance_tests!(make)` runs every test a store shared by several nodes must pass;
/// `store_conformance_tests!(make, embedded)` adds the tests of what an embedded store (the only
/// process using its database) does at start in [`QueueStore::release_stale_leases`].
///
/// See the [module documentation](crate::conformance) for an example.
#[macro_export]
macro_rules! store_conformance_tests {
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let fixture = ($make)().await;
                let Some(store) = $crate::conformance::Fixture::store(&fixture) else {
                    return;
                };
                $crate::conformance::$name(store).await;
            }
        )+
    };
    (@shared $make:expr; $($extra:ident),* $(,)?) => {
        $crate::store_conformance_tests!(@each $make;
            // TokenStore
            token_is_found_by_the_hash_of_its_secret,
            tokens_list_delete_and_expire_by_application,
            // CatalogStore
            application_is_found_by_id_and_by_uid,
            application_uid_taken_in_the_environment_is_a_conflict,
            applications_are_invisible_from_the_other_environment,
            application_update_replaces_every_mutable_field,
            application_delete_removes_it_and_a_second_delete_is_not_found,
            applications_page_by_id_in_both_orders,
            backwards_cursor_returns_the_previous_page_in_list_order,
            applications_are_found_by_part_of_their_name,
            deleting_an_application_removes_its_endpoints_messages_deliveries_and_attempts,
            endpoint_is_found_by_id_and_by_uid_within_its_application,
            endpoint_uid_is_unique_per_application,
            endpoint_update_replaces_every_mutable_field,
            endpoint_old_secrets_and_failing_since_round_trip,
            endpoint_delete_removes_it_and_stops_its_deliveries,
            endpoints_page_by_id_and_all_endpoints_lists_only_the_application,
            troubled_endpoints_are_the_failing_and_disabled_ones_longest_failing_first,
            event_type_upsert_inserts_then_replaces_by_name,
            event_types_are_scoped_by_environment,
            event_types_list_by_name_and_hide_archived_unless_asked,
            event_type_delete_removes_it_for_good,
            // MessageStore
            message_is_found_by_id_and_by_event_id,
            duplicate_event_id_is_a_conflict_and_inserts_none_of_its_deliveries,
            concurrent_publishes_succeed_or_fail_each_on_its_own,
            messages_list_newest_first_and_filter_by_type_channel_and_time,
            manual_schedule_makes_a_finished_delivery_due_as_a_manual_attempt,
            manual_schedule_creates_the_delivery_when_the_endpoint_never_had_one,
            manual_schedule_makes_a_delivery_on_its_schedule_due_now,
            message_deliveries_page_by_endpoint_id,
            endpoint_deliveries_list_newest_message_first_and_filter_by_status,
            attempts_filter_by_status_and_status_code_class,
            recorded_attempt_is_readable_and_listed_by_message_and_endpoint,
            attempt_headers_round_trip_in_order,
            receiver_text_with_nul_invalid_utf8_and_long_headers_is_stored_safely,
            failed_deliveries_are_marked_reviewed_and_a_resend_clears_the_mark,
            messages_filter_by_the_status_of_any_of_their_deliveries,
            // QueueStore: claims and leases
            ping_answers_on_a_fresh_store,
            claim_due_leases_only_deliveries_that_are_due_and_unleased,
            claim_due_takes_the_longest_overdue_first_up_to_the_limit,
            delivery_created_with_a_lease_is_not_claimed_before_the_lease_ends,
            delivery_with_a_retry_scheduled_is_not_claimed_before_it_is_due,
            finished_delivery_is_never_claimed_again,
            concurrent_claims_never_hand_out_the_same_delivery,
            fair_claim_takes_each_endpoints_room_and_skips_full_endpoints_and_applications,
            fair_claim_bounds_each_application_across_its_endpoints,
            claimed_delivery_is_claimed_again_once_its_lease_expires,
            released_leases_make_deliveries_claimable_at_once,
            recording_an_attempt_releases_the_lease,
            renewing_extends_only_leases_still_held,
            a_late_record_under_a_lease_taken_over_changes_nothing,
            a_batch_with_a_late_record_applies_the_others_once,
            parked_delivery_is_never_claimed,
            unpark_endpoint_makes_only_that_endpoints_parked_deliveries_due_now,
            hasten_endpoint_makes_only_that_endpoints_waiting_retries_due_now,
            deferred_delivery_is_released_and_due_only_at_the_new_time,
            delivery_parked_by_a_recorded_attempt_waits_for_its_endpoint_to_be_unparked,
            // QueueStore: outcomes
            a_batch_applies_as_its_records_would_one_by_one,
            a_resend_during_an_attempt_in_flight_survives_its_record,
            claimed_message_is_read_only_while_the_claim_is_current,
            claimed_messages_are_read_at_once_and_shared_by_a_fan_out,
            a_claim_reads_its_messages_with_it,
            a_claims_row_is_checked_against_its_delivery,
            an_attempt_of_a_deleted_delivery_is_dropped_and_its_batch_kept,
            exhausted_delivery_marks_its_endpoint_failing_from_the_first_exhaustion,
            successful_attempt_clears_its_endpoints_failing_since,
            manual_failures_do_not_mark_an_endpoint_failing,
            disabling_an_endpoint_is_conditional_and_happens_once,
            // RetentionStore
            payloads_expire_in_batches_and_expunges_remove_content,
            a_payload_outlives_its_retention_while_a_delivery_still_needs_it,
            expunging_an_application_removes_only_its_payloads,
            pruning_deletes_old_finished_messages_in_batches_and_keeps_unfinished_ones,
            // OutboxStore
            outbox_events_are_stored_with_their_record_and_removed_once_published,
            // PollStore
            destinations_round_trip_and_are_listed_apart_from_endpoints,
            the_stream_reads_an_applications_messages_in_order_from_any_position,
            a_poll_records_attempts_and_the_consumers_position_within_the_bound,
            // FifoStore
            fifo_lanes_hold_their_deliveries_in_order_under_one_lease,
            a_lanes_waiting_delivery_keeps_its_message,
            // SessionStore
            session_is_found_by_its_hash_until_it_expires_or_is_deleted,
            sessions_beyond_their_groups_keep_are_deleted_oldest_first,
            expire_all_ends_an_applications_portal_sessions_or_those_of_named_links,
            expired_sessions_are_deleted_in_batches,
            deleting_an_application_ends_its_portal_sessions,
            // StatsStore
            delivery_counts_cover_an_inclusive_window_of_creation_times,
            attempt_counts_cover_an_inclusive_window_of_attempt_times,
            missing_replay_picks_messages_never_sent_to_the_endpoint_in_id_order,
            deliveries_replay_filters_by_status_type_channel_and_latest_response_class,
            queue_stats_count_due_claimed_scheduled_and_parked_deliveries,
            traffic_minutes_add_up_per_environment_and_are_pruned_by_age,
            queue_counts_stop_at_their_cap_and_say_so,
            // TaskStore
            task_is_found_by_id_only_in_its_applications_environment,
            task_update_replaces_status_data_and_update_time,
            tasks_list_by_id_filtered_by_status_and_kind_in_pages,
            running_tasks_silent_since_before_the_cut_off_are_failed,
            // IdempotencyStore and the write gate
            idempotency_key_is_in_progress_until_its_claim_goes_stale,
            completed_idempotency_key_replays_its_response_until_it_expires,
            released_idempotency_key_starts_again_but_a_completed_one_is_kept,
            a_stale_owners_late_release_or_completion_leaves_the_new_claim_alone,
            a_request_closed_by_its_deadline_writes_nothing_and_one_that_wrote_is_awaited,
            expired_idempotency_keys_are_deleted_in_batches,
            $($extra,)*
        );
    };
    ($make:expr, embedded $(,)?) => {
        $crate::store_conformance_tests!(@shared $make;
            release_stale_leases_makes_leased_deliveries_claimable_again,
            release_stale_leases_fails_tasks_left_running,
        );
    };
    ($make:expr $(,)?) => {
        $crate::store_conformance_tests!(@shared $make;);
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
            old_secrets: Vec::new(),
            failing_since: None,
            created_at: created,
            updated_at: created,
            destination: None,
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
            lease_token: 0,
            lane: None,
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
            request_headers: SentHeaders::from_pairs([("webhook-id", d.msg_id.as_str())]),
            response_headers: vec![("content-type".to_string(), "text/plain".to_string())],
            created_at: when,
        };
        AttemptRecord {
            delivery_id: d.id.clone(),
            attempt,
            delivery_status: status,
            next_attempt_at: next,
            scheduled_attempts: 1,
            park: false,
            lease_token: 0,
            row: None,
            events: Vec::new(),
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
        group_name: None,
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
    store.create_message(&msg, slice::from_ref(&d)).await.unwrap();
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
    page.items.iter().map(|item| item.key().to_string()).collect()
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

// ----- shared by several capabilities' tests -----

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

/// A delivery's next attempt time, read back through [`MessageStore::get_delivery`].
async fn next_attempt(store: &dyn Store, d: &NewDelivery) -> Option<DateTime<Utc>> {
    let state = store.get_delivery(&d.msg_id, &d.endpoint_id).await.unwrap();
    state
        .unwrap_or_else(|| panic!("delivery {} is gone", d.id))
        .next_attempt_at
}

/// An endpoint's `failing_since`, read back through [`CatalogStore::get_endpoint`].
async fn failing_since(store: &dyn Store, ep: &Endpoint) -> Option<DateTime<Utc>> {
    let found = store.get_endpoint(&ep.app_id, &ep.id).await.unwrap();
    found
        .unwrap_or_else(|| panic!("endpoint {} is gone", ep.id))
        .failing_since
}

/// Records `outcome` alone.
async fn record(store: &dyn Store, outcome: AttemptRecord) {
    store.record_attempts(&[outcome]).await.expect("record");
}

/// The attempt of a receiver answering `410 Gone`: the delivery fails and is parked.
fn gone(g: &mut Gen, d: &NewDelivery, when: i64) -> AttemptRecord {
    AttemptRecord {
        park: true,
        ..g.outcome(d, at(when), 410, Fail, None)
    }
}

/// A manual attempt (a resend) of `d` at `when` answered with `code`; the delivery finishes.
fn manual(g: &mut Gen, d: &NewDelivery, when: i64, code: i64) -> AttemptRecord {
    let status = if (200..300).contains(&code) { Success } else { Fail };
    let mut outcome = g.outcome(d, at(when), code, status, None);
    outcome.attempt.trigger_type = TriggerType::Manual;
    outcome
}

/// An outbox event built for the suite.
fn outbox_event(id: &str, app_id: &str, when: i64) -> OutboxEvent {
    OutboxEvent {
        id: id.to_string(),
        kind: "message.attempt.exhausted".to_string(),
        app_id: app_id.to_string(),
        data: serde_json::json!({"appId": app_id, "n": when}),
        created_at: at(when),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every test body in the suite's files is in the macro's list, once, and nothing else is.
    #[test]
    fn every_test_body_is_listed_in_the_macro_once() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/conformance");
        let mut bodies = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for line in source.lines() {
                if let Some(rest) = line.strip_prefix("pub async fn ") {
                    bodies.insert(rest.split('(').next().unwrap().to_string());
                }
            }
        }
        let module = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
        let start = module.find("macro_rules! store_conformance_tests").unwrap();
        let end = start + module[start..].find("\n}\n").unwrap();
        let listed: Vec<String> = module[start..end]
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.ends_with(',')
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ',')
            })
            .map(|l| l.trim_end_matches(',').to_string())
            .collect();
        let unique: BTreeSet<String> = listed.iter().cloned().collect();
        assert_eq!(unique.len(), listed.len(), "a test is listed twice");
        assert!(bodies.len() > 80, "the suite's files are read");
        assert_eq!(unique, bodies, "listed tests and test bodies differ");
    }
}
