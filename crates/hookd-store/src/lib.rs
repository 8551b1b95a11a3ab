//! hookd-store: the storage seam.
//!
//! What hookd asks of a database is a set of capability traits ([`QueueStore`],
//! [`CatalogStore`], [`MessageStore`], [`TokenStore`], [`IdempotencyStore`], [`TaskStore`],
//! [`StatsStore`], [`RetentionStore`], [`OutboxStore`], [`SessionStore`]); [`Store`] is all of
//! them at once, for code that needs everything. Backends (embedded SQLite, and PostgreSQL for several nodes)
//! implement them and prove it with the shared conformance suite in [`conformance`] (feature
//! `testing`), organised by capability too. Handlers and the dispatcher never see a driver type:
//! backend errors arrive as [`StoreError`].
//!
//! The database is also the delivery queue. A *delivery* (message × endpoint) is due when its
//! `next_attempt_at` has passed and it holds no live lease; [`QueueStore::claim_due`] leases a batch,
//! and [`QueueStore::record_attempts`] writes the attempts and each delivery's next state in one
//! transaction, clearing the lease. A worker that dies only delays its deliveries until the
//! lease runs out.
//!
//! Module map: [`error`], [`page`] (keyset pagination), [`records`] (inputs and outputs that
//! are not plain domain records), [`sql`] (the statements both backends share, with a dialect
//! for what differs), [`batch`] (the one algorithm of `record_attempts`), [`gate`] (the
//! request's write gate), [`secrets`] (sealing at rest), [`conformance`].

pub mod batch;
pub mod error;
pub mod gate;
pub mod ids;
pub mod page;
pub mod records;
pub mod secrets;
pub mod share;
pub mod sql;

#[cfg(feature = "testing")]
pub mod conformance;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookd_core::model::{Application, Attempt, Endpoint, Environment, EventType, Message};

pub use error::{StorageFull, StoreError};
pub use page::{Cursor, Page, PageRequest};
pub use records::*;

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything hookd persists, as one trait for code that needs all of it: every capability
/// trait at once. All methods are safe to call concurrently.
///
/// Lookups `…_by_key` accept either the id or the caller's uid (event id for messages), the
/// way Svix paths do. Every application and event type is scoped by [`Environment`]; records
/// below an application inherit its environment.
pub trait Store:
    QueueStore
    + TokenStore
    + CatalogStore
    + MessageStore
    + RetentionStore
    + OutboxStore
    + StatsStore
    + TaskStore
    + IdempotencyStore
    + SessionStore
    + PollStore
    + FifoStore
{
}

impl<T> Store for T where
    T: QueueStore
        + TokenStore
        + CatalogStore
        + MessageStore
        + RetentionStore
        + OutboxStore
        + StatsStore
        + TaskStore
        + IdempotencyStore
        + SessionStore
        + PollStore
        + FifoStore
        + ?Sized
{
}

/// The capability traits, for `use hookd_store::prelude::*` where store methods are called.
pub mod prelude {
    pub use crate::{
        CatalogStore, FifoStore, IdempotencyStore, MessageStore, OutboxStore, PollStore, QueueStore, RetentionStore,
        SessionStore, StatsStore, Store, TaskStore, TokenStore,
    };
}

/// The delivery queue: claiming, leasing, recording attempts and moving deliveries. What the delivery engine needs of the database.
#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// Called once at start by the only process using this store (embedded backends): leases
    /// left by a killed process are released so its deliveries resume at once, and background
    /// tasks it left `running` (in every environment), which nothing will finish now, are marked
    /// `failed` with the reason under `"error"` in their data, their other progress kept.
    /// Returns the number of leases released (tasks are not counted). Backends shared by several
    /// nodes leave leases to expire, and running tasks alone, instead.
    async fn release_stale_leases(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Cheap liveness probe for `/api/v1/health`.
    async fn ping(&self) -> StoreResult<()>;

    /// Resolves when another process may have made work due now (a message whose deliveries
    /// it did not take itself, a resend, an endpoint enabled): PostgreSQL uses LISTEN/NOTIFY so
    /// idle nodes wake at once. Embedded backends have no other process, and never resolve.
    /// An error means the listening connection broke; callers retry after a pause, and the
    /// dispatcher's polling covers the gap.
    async fn wait_for_work(&self) -> StoreResult<()> {
        std::future::pending().await
    }

    /// Starts listening for [`QueueStore::wait_for_work`] signals now, so none sent after this
    /// returns is missed (called once at start, before the API serves). No-op by default.
    async fn listen_for_work(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Leases up to `limit` due deliveries until `lease_until`, the longest overdue first,
    /// with no per-endpoint bound (see [`QueueStore::claim_due_within`]).
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let bounds = ClaimBounds {
            per_endpoint: limit,
            ..ClaimBounds::default()
        };
        self.claim_due_within(now, lease_until, limit, &bounds).await
    }

    /// Leases up to `limit` due deliveries until `lease_until`, the longest overdue first, but
    /// never more of one endpoint or one application than its room in `bounds`, and none of a
    /// skipped endpoint or application: one tenant's backlog cannot fill a claim while others
    /// wait. Each claimed delivery gets a fresh lease token and its due time moves to
    /// `lease_until`, so it is due again by itself if its lease runs out, and later claims
    /// never walk leased rows. Only the
    /// [`CLAIM_SCAN_FACTOR`]` × limit` longest overdue candidates (skipped endpoints and
    /// applications left out) are considered per call, so a claim's cost does not grow with
    /// the queue.
    async fn claim_due_within(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        bounds: &ClaimBounds,
    ) -> StoreResult<Vec<ClaimedDelivery>>;

    /// Claims as [`QueueStore::claim_due_within`] does and reads the claimed deliveries'
    /// messages as [`QueueStore::claimed_messages`] does. A backend that can read them in the
    /// claim's own transaction does so: under the leases it has just taken, they are current
    /// without a second look at the deliveries.
    async fn claim_due_with_messages(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        bounds: &ClaimBounds,
    ) -> StoreResult<ClaimedBatch> {
        let deliveries = self.claim_due_within(now, lease_until, limit, bounds).await?;
        let messages = self.claimed_messages(&deliveries).await;
        Ok(ClaimedBatch { deliveries, messages })
    }

    /// Records attempts and the resulting delivery states in one transaction, releasing leases.
    /// Fenced: a record whose `lease_token` is not 0 and no longer the delivery's (another
    /// claim took it over after this lease ran out) is dropped, attempt and state alike. The
    /// `events` of every applied record go to the outbox in the same transaction.
    /// Endpoint health for auto-disable is kept in the same transaction: a successful attempt
    /// clears the endpoint's `failing_since`; a scheduled attempt that leaves its delivery
    /// `Fail` sets it to the attempt's time unless it is already set. A parked record leaves
    /// the delivery without a due time whatever `next_attempt_at` says.
    async fn record_attempts(&self, outcomes: &[AttemptRecord]) -> StoreResult<()>;

    /// [`QueueStore::record_attempts`] for records the caller hands over, shared rather than
    /// borrowed: a backend that writes on a thread of its own (SQLite's writer) takes them
    /// there without copying each record. The attempt recorder calls this one.
    async fn record_shared_attempts(&self, outcomes: std::sync::Arc<[AttemptRecord]>) -> StoreResult<()> {
        self.record_attempts(&outcomes).await
    }

    /// Extends the leases this process still holds to `lease_until`: each `(delivery id,
    /// lease token)` whose delivery still holds that lease (see
    /// [`ClaimedDelivery::lease_token`]). Called well within the lease for every delivery in
    /// memory, so leases can be short and a dead node's work is taken over within one lease.
    /// Returns how many leases were extended.
    async fn renew_leases(&self, leases: &[(String, i64)], lease_until: DateTime<Utc>) -> StoreResult<u64>;

    /// Gives back the leases of deliveries this process claimed but will not attempt (it is
    /// shutting down), so any node can send them at once instead of after the lease.
    /// Fenced: each `(delivery id, lease token)` is released only while the delivery still holds
    /// that lease (token 0: whatever it holds), so a late release can never free a lease another
    /// claim has taken since. Released deliveries are due at `now`.
    async fn release_leases(&self, leases: &[(String, i64)], now: DateTime<Utc>) -> StoreResult<()>;

    /// Keeps a leased delivery without a due time (its endpoint is disabled), releasing the lease.
    /// Fenced like [`QueueStore::release_leases`]: only while the delivery still holds the lease
    /// `lease_token` (0: whatever it holds).
    async fn park_delivery(&self, delivery_id: &str, lease_token: i64) -> StoreResult<()>;

    /// Makes every parked delivery of an endpoint due at `now` (it was enabled again).
    async fn unpark_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Makes every delivery of an endpoint that waits for a later retry due at `now` (a
    /// `hookd listen` session reconnected); parked and finished deliveries are left alone.
    async fn hasten_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Releases a leased delivery and makes it due at `until` without counting an attempt
    /// (the endpoint's circuit is open, or its rate limit is reached). Fenced like
    /// [`QueueStore::release_leases`]: only while the delivery still holds the lease `lease_token`
    /// (0: whatever it holds), so a node whose lease was taken over cannot move the delivery.
    async fn defer_delivery(&self, delivery_id: &str, lease_token: i64, until: DateTime<Utc>) -> StoreResult<()>;

    /// The message a claimed delivery carries, read once its attempt is about to be made;
    /// `None` when the delivery (or its application) is gone, or when it has been attempted
    /// since the claim read it (its attempt count moved: the previous attempt committed between
    /// the claim's read and this one, and sending again would duplicate it).
    async fn claimed_message(&self, delivery: &ClaimedDelivery) -> StoreResult<Option<Message>>;

    /// The messages of a batch just claimed, read at once: one entry per delivery of `claimed`,
    /// in order, `Some` by the rule of [`QueueStore::claimed_message`] (the delivery still
    /// exists and has not been attempted since its claim). Deliveries of one message share
    /// one copy, so a fan-out claimed together reads and holds its payload once.
    async fn claimed_messages(&self, claimed: &[ClaimedDelivery]) -> StoreResult<Vec<Option<Arc<Message>>>>;

    /// Disables an endpoint the engine gave up on, in one conditional update that cannot undo a
    /// concurrent edit: only while it is enabled and, with `failing_by`, only while its failing
    /// run (`failing_since`) began at or before that time. Returns the endpoint as it is now
    /// when this call disabled it, `None` when it was left alone (already disabled, recovered,
    /// or gone).
    async fn disable_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
        failing_by: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<Endpoint>>;
}

/// API tokens.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Stores a token (only its hash).
    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()>;

    /// Finds a live token by the hash of its secret.
    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;

    /// One token by id (`tok_…`).
    async fn get_token(&self, id: &str) -> StoreResult<Option<TokenRecord>>;

    /// Deletes tokens that expired before `now`; returns how many.
    async fn delete_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Every token (hashes only), oldest first.
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>>;

    /// Removes a token; `false` when there was none with that id.
    async fn delete_token(&self, id: &str) -> StoreResult<bool>;

    /// Makes every token scoped to `app_id` (or only those named one of `names`) expire at
    /// `at` at the latest; returns how many changed.
    async fn expire_app_tokens(&self, app_id: &str, names: Option<&[String]>, at: DateTime<Utc>) -> StoreResult<u64>;
}

/// Applications, endpoints and event types.
#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    /// Inserts; `Conflict` when the uid is taken in the environment.
    async fn create_application(&self, app: &Application) -> StoreResult<()>;

    /// By id or uid.
    async fn get_application(&self, env: Environment, key: &str) -> StoreResult<Option<Application>>;

    /// Replaces every mutable field; `NotFound`/`Conflict` as appropriate.
    async fn update_application(&self, app: &Application) -> StoreResult<()>;

    /// Deletes the application with its endpoints, messages, deliveries and attempts.
    async fn delete_application(&self, env: Environment, id: &str) -> StoreResult<()>;

    /// Keyset page ordered by id.
    async fn list_applications(&self, env: Environment, page: &PageRequest) -> StoreResult<Page<Application>>;

    /// Up to `limit` applications of `env` whose name contains `text`, compared in lower case
    /// (`%` and `_` match themselves), newest first.
    async fn search_applications(&self, env: Environment, text: &str, limit: usize) -> StoreResult<Vec<Application>>;

    /// Inserts; `Conflict` when the uid is taken in the application.
    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()>;

    /// By id or uid within an application.
    async fn get_endpoint(&self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>>;

    /// Replaces every mutable field (including secret and headers).
    async fn update_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()>;

    /// Deletes the endpoint and its pending deliveries' future attempts.
    async fn delete_endpoint(&self, app_id: &str, id: &str) -> StoreResult<()>;

    /// The plain HTTP endpoints of an application, a keyset page ordered by id.
    async fn list_endpoints(&self, app_id: &str, page: &PageRequest) -> StoreResult<Page<Endpoint>>;

    /// The destinations of an application (endpoints with a
    /// [`Destination`](hookd_core::model::Destination)), a keyset page ordered by id.
    async fn list_destinations(&self, app_id: &str, page: &PageRequest) -> StoreResult<Page<Endpoint>>;

    /// Up to `limit` endpoints of `env` that need attention (disabled, or failing: deliveries
    /// exhausting their retries), the longest-failing first, then the most recently changed;
    /// secrets opened.
    async fn troubled_endpoints(&self, env: Environment, limit: usize) -> StoreResult<Vec<Endpoint>>;

    /// Every endpoint of an application, its secrets and sensitive header values opened.
    async fn all_endpoints(&self, app_id: &str) -> StoreResult<Vec<Endpoint>> {
        let sealed = self.all_endpoints_sealed(app_id).await?;
        sealed.into_iter().map(|e| self.open_endpoint_secrets(e)).collect()
    }

    /// Every endpoint of an application with its secrets and sensitive header values as stored
    /// (sealed when `secrets.main_key` is set), for callers that cache the list and open only
    /// the endpoints they sign for, with [`CatalogStore::open_endpoint_secrets`].
    async fn all_endpoints_sealed(&self, app_id: &str) -> StoreResult<Vec<Endpoint>>;

    /// Opens the secrets and sensitive header values of an endpoint read by
    /// [`CatalogStore::all_endpoints_sealed`].
    fn open_endpoint_secrets(&self, endpoint: Endpoint) -> StoreResult<Endpoint>;

    /// Inserts or replaces by name.
    async fn upsert_event_type(&self, event_type: &EventType) -> StoreResult<()>;

    /// By name.
    async fn get_event_type(&self, env: Environment, name: &str) -> StoreResult<Option<EventType>>;

    /// Removes for good.
    async fn delete_event_type(&self, env: Environment, name: &str) -> StoreResult<()>;

    /// Keyset page ordered by name.
    async fn list_event_types(
        &self,
        env: Environment,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<EventType>>;
}

/// Messages, their deliveries and attempts as the API reads them, and manual resends.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Inserts a message and its deliveries in one transaction (the 202 waits for it).
    /// `Conflict` when the event id is taken in the application.
    async fn create_message(&self, message: &Message, deliveries: &[NewDelivery]) -> StoreResult<()>;

    /// By id or event id within an application.
    async fn get_message(&self, app_id: &str, key: &str) -> StoreResult<Option<Message>>;

    /// Newest first, filtered; a status keeps the messages with at least one delivery in it.
    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>>;

    /// Makes a delivery due now as a manual attempt, creating it if the endpoint was never sent
    /// this message. Returns the delivery's id.
    async fn schedule_manual(&self, delivery: &NewDelivery, now: DateTime<Utc>) -> StoreResult<String>;

    /// The delivery of one message to one endpoint.
    async fn get_delivery(&self, msg_id: &str, endpoint_id: &str) -> StoreResult<Option<DeliveryState>>;

    /// Deliveries of a message (attempted destinations), keyset by endpoint id.
    async fn list_message_deliveries(&self, msg_id: &str, page: &PageRequest) -> StoreResult<Page<DeliveryState>>;

    /// Deliveries to an endpoint with their messages (attempted messages), newest message first.
    async fn list_endpoint_deliveries(
        &self,
        endpoint_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<(DeliveryState, Message)>>;

    /// Attempts of an application, newest first, filtered by message and/or endpoint.
    async fn list_attempts(&self, filter: &AttemptFilter, page: &PageRequest) -> StoreResult<Page<Attempt>>;

    /// One attempt of a message.
    async fn get_attempt(&self, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>>;

    /// Marks an endpoint's failed deliveries of `msg_ids` reviewed at `at` (an operator looked
    /// at them and needs no reminder); deliveries that are not failed are left alone. Resending
    /// a delivery clears its mark. Returns how many were marked.
    async fn mark_reviewed(&self, endpoint_id: &str, msg_ids: &[String], at: DateTime<Utc>) -> StoreResult<u64>;
}

/// Payload expiry, expunging and pruning.
#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// Removes a message's payload (it then reads as expired); `NotFound` for an unknown message.
    async fn expunge_message_content(&self, app_id: &str, msg_id: &str) -> StoreResult<()>;

    /// Replaces an attempt's stored response body with `EXPUNGED`; `NotFound` if unknown.
    async fn expunge_attempt_content(&self, msg_id: &str, attempt_id: &str) -> StoreResult<()>;

    /// Removes the payloads of up to `limit` messages whose retention ended by `now`; returns
    /// how many (callers repeat until it is less than `limit`). A message with a delivery still
    /// waiting for an attempt (due, on its retry schedule, or parked) keeps its payload until
    /// that delivery is finished, so retention never makes a pending delivery fail.
    async fn expire_payloads(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64>;

    /// Removes the payload of every message of an application; returns how many it removed.
    async fn expunge_app_contents(&self, app_id: &str) -> StoreResult<u64>;

    /// Deletes up to `limit` messages with ids below `below` (older messages; see
    /// [`IdKind::lower_bound`](hookd_core::id::IdKind::lower_bound)) together with their
    /// deliveries and attempts, skipping any message that still has a delivery waiting for an
    /// attempt or parked; returns how many messages (callers repeat until it is less than
    /// `limit`).
    async fn prune_messages(&self, below: &str, limit: usize) -> StoreResult<u64>;
}

/// The operational-webhook outbox.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Adds operational events to the outbox (their cause is already stored).
    async fn add_outbox(&self, events: &[OutboxEvent]) -> StoreResult<()>;

    /// Up to `limit` events of the outbox, oldest first.
    async fn outbox_events(&self, limit: usize) -> StoreResult<Vec<OutboxEvent>>;

    /// Removes published events from the outbox.
    async fn remove_outbox(&self, ids: &[String]) -> StoreResult<()>;
}

/// Counts for metrics, endpoint statistics and replays.
#[async_trait]
pub trait StatsStore: Send + Sync + 'static {
    /// Counts the delivery queue as of `now` (for metrics), looking at no more than `cap`
    /// pending deliveries (the longest overdue first) and `cap` parked ones, so a count costs
    /// the same however long the queue is. Counts beyond the cap stop there and say so in
    /// [`QueueStats::capped`]; the due count and the oldest due time are exact whenever fewer
    /// than `cap` deliveries are due.
    async fn queue_stats(&self, now: DateTime<Utc>, cap: usize) -> StoreResult<QueueStats>;

    /// Adds each minute's counts to what is stored for it (several nodes may add to the same
    /// minute).
    async fn add_traffic(&self, minutes: &[TrafficMinute]) -> StoreResult<()>;

    /// An environment's stored minutes in `[from, until)` (minutes since the epoch), oldest
    /// first.
    async fn traffic(&self, env: Environment, from: i64, until: i64) -> StoreResult<Vec<TrafficMinute>>;

    /// Deletes the minutes before `before` (minutes since the epoch); returns how many.
    async fn prune_traffic(&self, before: i64) -> StoreResult<u64>;

    /// Deliveries to an endpoint created in `[since, until]`, counted by status.
    async fn delivery_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts>;

    /// Attempts to an endpoint made in `[since, until]`, counted by status.
    async fn attempt_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts>;

    /// The next `limit` messages (ordered by id, after `after`) a replay should send again.
    async fn replay_candidates(
        &self,
        query: &ReplayQuery,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;
}

/// Background tasks (recover, replays).
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Stores a new task.
    async fn create_task(&self, task: &TaskRecord) -> StoreResult<()>;

    /// Updates a task's status and progress.
    async fn update_task(
        &self,
        id: &str,
        status: TaskStatus,
        data: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Marks `failed` every task still `running` whose progress was last saved before `before`
    /// (its node died: a running task saves progress at least every batch), keeping its
    /// progress and saying why under `"error"`; returns how many.
    async fn fail_stale_tasks(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<u64>;

    /// One task of an environment.
    async fn get_task(&self, env: Environment, id: &str) -> StoreResult<Option<TaskRecord>>;

    /// Tasks of an environment, newest first by default.
    async fn list_tasks(
        &self,
        env: Environment,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<TaskRecord>>;
}

/// Idempotency keys.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims an idempotency key: `Started` when this caller should run the request (no entry,
    /// an expired one, or one left in progress before `stale_before`), `InProgress` when
    /// another request holds it, `Completed` with the stored response otherwise.
    async fn idempotency_begin(
        &self,
        key: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState>;

    /// Stores the response of the request that claimed `key` at `claimed_at` (the `now` of its
    /// `idempotency_begin`). A claim taken over since (it had gone stale) is left alone.
    async fn idempotency_complete(
        &self,
        key: &str,
        claimed_at: DateTime<Utc>,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()>;

    /// Deletes up to `limit` idempotency keys that expired by `now`; returns how many (callers
    /// repeat until it is less than `limit`).
    async fn delete_expired_idempotency(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64>;

    /// Gives up the claim made at `claimed_at` (the request failed), so the key can be used
    /// again; a completed key, or a claim taken over since, is left alone.
    async fn idempotency_release(&self, key: &str, claimed_at: DateTime<Utc>) -> StoreResult<()>;
}

/// Browser sessions of the dashboard and the consumer portal.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session and, in the same transaction, deletes the oldest sessions of its
    /// group beyond the newest `keep`: the group is its application for a portal session, the
    /// environment's operators otherwise. So no one can grow the table without bound, per
    /// application or in all.
    async fn create_session(&self, session: &SessionRecord, keep: usize) -> StoreResult<()>;

    /// The session whose secret hashes to `hash`, unless it has expired by `now`.
    async fn find_session(&self, hash: &str, now: DateTime<Utc>) -> StoreResult<Option<SessionRecord>>;

    /// Ends a session (sign-out); false when there was none.
    async fn delete_session(&self, id: &str) -> StoreResult<bool>;

    /// Ends an application's portal sessions at `at`: all of them, or those opened from a link
    /// made for one of `portal_sessions`. Returns how many were still live.
    async fn expire_app_sessions(
        &self,
        app_id: &str,
        portal_sessions: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Deletes up to `limit` sessions that expired before `now`.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64>;
}

/// Polling destinations: an application's stream of messages as consumers pull it, and where
/// each consumer stands.
#[async_trait]
pub trait PollStore: Send + Sync + 'static {
    /// Up to `limit` messages of an application after `after`, in stream order: the order their
    /// publishes committed, so a message that commits late never lands behind a position a
    /// poller has already passed.
    async fn poll_messages(&self, app_id: &str, after: &PollCursor, limit: usize) -> StoreResult<Vec<PolledMessage>>;

    /// The position just before the first message of an application published at or after
    /// `at` (publishes in flight at that instant may fall either side), or the end of the
    /// stream when there is none yet.
    async fn poll_cursor_at(&self, app_id: &str, at: DateTime<Utc>) -> StoreResult<PollCursor>;

    /// Where a consumer of a polling destination stands; `None` before its first poll.
    async fn poll_consumer(&self, endpoint_id: &str, consumer_id: &str) -> StoreResult<Option<PollCursor>>;

    /// Logs a poll in one transaction: each attempt's delivery (message × destination) is
    /// created on the first poll that hands the message out and marked delivered, the attempt
    /// is stored with its number within the delivery, and the consumer's position is saved.
    /// `Conflict` when the consumer is new and its destination already has
    /// [`PollRecord::max_consumers`]; nothing is written then.
    async fn record_poll(&self, poll: &PollRecord) -> StoreResult<()>;
}

/// FIFO destinations: deliveries in ordered lanes, sent by one node at a time per lane, the
/// next only after the previous succeeded or was given up.
///
/// A delivery created with a [`NewDelivery::lane`] is never claimed by
/// [`QueueStore::claim_due`]; creating it also creates its lane's row. A lane is worked on
/// under a lease ([`FifoStore::lease_fifo_lane`]) that only one node holds at a time, so the
/// lane's order holds across nodes.
#[async_trait]
pub trait FifoStore: Send + Sync + 'static {
    /// Up to `limit` lanes with a delivery waiting, whose destination is enabled, that no node
    /// holds a lease on, and whose retry time has come by `now` or, while waiting for a batch
    /// to fill, that have their `fill` deliveries waiting (a batch is at most 250); the longest
    /// waiting first; none of the applications in `skip` (those the caller works on as much
    /// as it may), so one tenant's many lanes cannot fill the answer while others wait.
    async fn fifo_lanes(&self, now: DateTime<Utc>, limit: usize, skip: &[String]) -> StoreResult<Vec<FifoLane>>;

    /// Takes the lane's lease until `until` under `token` (or extends it, when `token` holds
    /// it) when no other lease is live at `now`; `false` when another node holds it. (Whether
    /// the lane is due is [`FifoStore::fifo_lanes`]'s to say.)
    async fn lease_fifo_lane(
        &self,
        lane: &FifoLane,
        token: i64,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Up to `limit` deliveries waiting in a lane, in the order their publishes committed,
    /// with their messages.
    async fn fifo_head(&self, lane: &FifoLane, limit: usize) -> StoreResult<Vec<FifoItem>>;

    /// Gives the lease back (only while `token` still holds it); the lane's head may next be
    /// tried at `retry_at`, or, with `fill` above 0 (a batch waiting to fill), as soon as
    /// `fill` deliveries wait.
    async fn release_fifo_lane(
        &self,
        lane: &FifoLane,
        token: i64,
        retry_at: DateTime<Utc>,
        fill: usize,
    ) -> StoreResult<()>;
}
