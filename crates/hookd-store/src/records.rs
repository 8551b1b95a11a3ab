//! Store inputs and outputs that are not plain domain records.

use crate::ids::{HashMap, HashMapExt, HashSet};
use chrono::{DateTime, Utc};
use hookd_core::model::{Attempt, Environment, MessageStatus, TriggerType};

/// An API token as stored: never the secret itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// `tok_…`
    pub id: String,
    /// Hex SHA-256 of the secret token.
    pub hash: String,
    /// Environment the token acts in.
    pub env: Environment,
    /// `None` for an admin token; `Some(app_id)` for an application-scoped one.
    pub app_id: Option<String>,
    /// Free text shown in listings.
    pub description: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A signed-in browser: an operator on the dashboard, or a customer in the consumer portal.
/// Only the hash of the cookie's secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// `sess_…`
    pub id: String,
    /// Hex SHA-256 of the cookie's secret.
    pub hash: String,
    /// Environment the session acts in.
    pub env: Environment,
    /// `None` for an operator (the whole environment); `Some(app_id)` for a portal session,
    /// limited to that application.
    pub app_id: Option<String>,
    /// What a portal session may do (Svix capability names); empty for an operator.
    pub capabilities: Vec<String>,
    /// A portal session that may look but change nothing.
    pub read_only: bool,
    /// The Svix `sessionId` the portal link was made for, which `expire-all` can end.
    pub portal_session: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A delivery to create with its message (or for a manual send).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// `msgep_…`
    pub id: String,
    /// Message.
    pub msg_id: String,
    /// Endpoint.
    pub endpoint_id: String,
    /// Application of both.
    pub app_id: String,
    /// First attempt due at.
    pub due_at: DateTime<Utc>,
    /// When set, the delivery is created already leased to this process (handed straight to the
    /// local dispatcher); a poller will not claim it before then.
    pub leased_until: Option<DateTime<Utc>>,
    /// The lease's fencing token when `leased_until` is set (see [`ClaimedDelivery::lease_token`]);
    /// 0 otherwise.
    pub lease_token: i64,
    /// For a FIFO destination, the ordered lane the delivery joins (see
    /// [`FifoStore`](crate::FifoStore)). Such a delivery is never due for the claim: the FIFO engine sends
    /// it, in its lane's order, and `due_at`, `leased_until` and `lease_token` are ignored.
    pub lane: Option<i32>,
}

/// How many overdue candidates per claimed row a fair claim looks at (see
/// [`QueueStore::claim_due_within`](crate::QueueStore::claim_due_within)).
pub const CLAIM_SCAN_FACTOR: usize = 8;

/// Per-tenant bounds on one claim: what the claiming process can still take of each endpoint
/// and application, so work it cannot hold yet stays in the database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimBounds {
    /// Most deliveries of any one endpoint not named in `endpoint_room`.
    pub per_endpoint: usize,
    /// Room left for particular endpoints (those the caller already holds work for, or whose
    /// circuit or pacing says wait); `0` skips the endpoint.
    pub endpoint_room: HashMap<String, usize>,
    /// Applications whose share the caller has used up: none of their deliveries is claimed.
    pub skip_apps: Vec<String>,
    /// Most deliveries of any one application not named in `app_room`; 0: no bound.
    pub per_app: usize,
    /// Room left for particular applications (those the caller already holds work for).
    pub app_room: HashMap<String, usize>,
}

impl ClaimBounds {
    /// The applications' room as two parallel lists, and the default room (`per_app`, or
    /// unbounded when 0).
    pub fn app_lists(&self) -> (Vec<String>, Vec<i64>, i64) {
        let (ids, rooms) = self
            .app_room
            .iter()
            .map(|(id, room)| (id.clone(), i64::try_from(*room).unwrap_or(i64::MAX)))
            .unzip();
        let default = match self.per_app {
            0 => i64::MAX,
            n => i64::try_from(n).unwrap_or(i64::MAX),
        };
        (ids, rooms, default)
    }

    /// Which of the candidates (endpoint and application of each, longest overdue first) a
    /// claim takes, offered one at a time so a store can stop walking its due work as soon as
    /// `limit` are taken: in order, each while its endpoint and its application have room
    /// left, at most `limit`.
    pub fn picker(&self, limit: usize) -> Picker<'_> {
        Picker {
            bounds: self,
            limit,
            taken: 0,
            of_endpoint: HashMap::new(),
            of_app: HashMap::new(),
            skip_apps: self.skip_apps.iter().map(String::as_str).collect(),
        }
    }

    /// The endpoints whose room is 0: a claim skips them.
    pub fn skipped_endpoints(&self) -> Vec<&str> {
        (self.endpoint_room.iter())
            .filter(|(_, room)| **room == 0)
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// The endpoints to skip, and the others' room, as two parallel lists.
    pub fn room_lists(&self) -> (Vec<String>, Vec<String>, Vec<i64>) {
        let mut skip = Vec::new();
        let (mut ids, mut rooms) = (Vec::new(), Vec::new());
        for (id, room) in &self.endpoint_room {
            if *room == 0 {
                skip.push(id.clone());
            } else {
                ids.push(id.clone());
                rooms.push(i64::try_from(*room).unwrap_or(i64::MAX));
            }
        }
        (skip, ids, rooms)
    }
}

/// A claim's choice, made as the candidates come ([`ClaimBounds::picker`]).
#[derive(Debug)]
pub struct Picker<'b> {
    bounds: &'b ClaimBounds,
    limit: usize,
    taken: usize,
    of_endpoint: HashMap<String, usize>,
    of_app: HashMap<String, usize>,
    skip_apps: HashSet<&'b str>,
}

impl Picker<'_> {
    /// Whether the next candidate, of `endpoint` in `app`, is taken: while the limit, its
    /// endpoint's room and its application's room allow.
    pub fn offer(&mut self, endpoint: &str, app: &str) -> bool {
        if self.is_full() || self.skip_apps.contains(app) {
            return false;
        }
        let b = self.bounds;
        let endpoint_room = b.endpoint_room.get(endpoint).copied().unwrap_or(b.per_endpoint);
        let app_room = match (b.app_room.get(app), b.per_app) {
            (Some(room), _) => *room,
            (None, 0) => usize::MAX,
            (None, per_app) => per_app,
        };
        let of_endpoint = self.of_endpoint.get(endpoint).copied().unwrap_or(0);
        let of_app = self.of_app.get(app).copied().unwrap_or(0);
        if of_endpoint >= endpoint_room || of_app >= app_room {
            return false;
        }
        bump(&mut self.of_endpoint, endpoint);
        bump(&mut self.of_app, app);
        self.taken += 1;
        true
    }

    /// True once `limit` candidates are taken.
    pub fn is_full(&self) -> bool {
        self.taken >= self.limit
    }
}

fn bump(counts: &mut HashMap<String, usize>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}

/// A delivery leased to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// `msgep_…`
    pub id: String,
    /// Message.
    pub msg_id: String,
    /// Endpoint.
    pub endpoint_id: String,
    /// Application.
    pub app_id: String,
    /// Attempts made by the schedule so far.
    pub scheduled_attempts: i64,
    /// All attempts so far (scheduled and manual).
    pub total_attempts: i64,
    /// Whether this attempt is manual (no retries follow it).
    pub trigger: TriggerType,
    /// The fencing token of this lease: a number no other claim of the delivery shares. Records
    /// and renewals carrying it take effect only while the delivery still holds this lease, so
    /// a worker whose lease was taken over can never undo the newer owner's outcome.
    pub lease_token: i64,
    /// Where the store keeps the delivery's row, when the claim could say (SQLite's rowid).
    /// Reads of the delivery made for this claim (its message, its record's lease check) go
    /// straight to that row and check its id there, instead of searching the id's index; a
    /// row that no longer holds this delivery sends them to the id. `None`: by id.
    pub row: Option<i64>,
}

/// A claim with its deliveries' messages ([`crate::QueueStore::claim_due_with_messages`]).
#[derive(Debug)]
pub struct ClaimedBatch {
    /// The deliveries leased, as [`crate::QueueStore::claim_due_within`] returns them.
    pub deliveries: Vec<ClaimedDelivery>,
    /// Their messages, one entry per delivery in order, by the rule of
    /// [`crate::QueueStore::claimed_messages`]; or why they could not be read (the claim
    /// stands, and each attempt reads its own).
    pub messages: crate::StoreResult<Vec<Option<std::sync::Arc<hookd_core::model::Message>>>>,
}

/// One finished attempt and what follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The delivery attempted.
    pub delivery_id: String,
    /// The attempt itself.
    pub attempt: hookd_core::model::Attempt,
    /// Delivery status after this attempt (success, sending, fail).
    pub delivery_status: MessageStatus,
    /// When the next scheduled attempt is due; `None` when finished.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Scheduled attempts made, including this one if it was scheduled.
    pub scheduled_attempts: i64,
    /// Keep the delivery without a due time until its endpoint is enabled again (the endpoint
    /// was disabled, e.g. by a `410 Gone`), instead of scheduling or finishing it.
    pub park: bool,
    /// The lease the attempt was made under: the record is applied only while the delivery
    /// still holds it ([`ClaimedDelivery::lease_token`]). `0` applies it whatever the lease.
    pub lease_token: i64,
    /// Where the delivery's row is, as its claim found it ([`ClaimedDelivery::row`]).
    pub row: Option<i64>,
    /// Operational events this attempt causes (failing, exhausted, recovered), stored in the
    /// outbox in the same transaction as the record, and only if the record is applied.
    pub events: Vec<OutboxEvent>,
}

/// An operational event waiting in the outbox to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Unique; also the published message's `eventId`, so publishing twice stores it once.
    pub id: String,
    /// Svix event name, e.g. `message.attempt.exhausted`.
    pub kind: String,
    /// Application the event is about.
    pub app_id: String,
    /// The event's `data`.
    pub data: serde_json::Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// A fresh, non-zero fencing token for a lease.
pub fn new_lease_token<R: rand::Rng + ?Sized>(rng: &mut R) -> i64 {
    rng.gen_range(1..=i64::MAX)
}

/// The records of `outcomes` that may be applied, given each delivery's current lease token
/// (`current`; deliveries that are gone have none and their records are dropped): unfenced
/// records (token 0) and those whose lease is still the one the attempt was made under.
pub fn fenced(outcomes: &[AttemptRecord], current: impl Fn(&str) -> Option<i64>) -> Vec<&AttemptRecord> {
    outcomes
        .iter()
        .filter(|o| match current(&o.delivery_id) {
            Some(token) => o.lease_token == 0 || o.lease_token == token,
            None => false,
        })
        .collect()
}

/// Upper bounds (inclusive, milliseconds) of the delivery-latency histogram's buckets; a last
/// bucket counts everything slower.
pub const LATENCY_BOUNDS_MS: [i64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// Buckets of [`TrafficMinute::latency`]: one per bound and one beyond the last.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// One minute of an environment's traffic, pre-aggregated for the dashboard's charts. Rows add
/// up: storing a minute that exists adds each count to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficMinute {
    /// Environment.
    pub env: Environment,
    /// Minutes since the Unix epoch.
    pub minute: i64,
    /// Messages published.
    pub messages: i64,
    /// Deliveries those messages fanned out to.
    pub deliveries: i64,
    /// Attempts made.
    pub attempts: i64,
    /// Attempts that succeeded.
    pub succeeded: i64,
    /// Deliveries that failed for good (retries exhausted or manual attempt failed).
    pub failed: i64,
    /// Publish-to-delivered time of deliveries that succeeded on a scheduled attempt, counted
    /// in the buckets of [`LATENCY_BOUNDS_MS`].
    pub latency: [i64; LATENCY_BUCKETS],
}

impl TrafficMinute {
    /// An empty minute.
    pub fn new(env: Environment, minute: i64) -> TrafficMinute {
        TrafficMinute {
            env,
            minute,
            messages: 0,
            deliveries: 0,
            attempts: 0,
            succeeded: 0,
            failed: 0,
            latency: [0; LATENCY_BUCKETS],
        }
    }

    /// Adds `other`'s counts to this minute's.
    pub fn add(&mut self, other: &TrafficMinute) {
        self.messages += other.messages;
        self.deliveries += other.deliveries;
        self.attempts += other.attempts;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        for (a, b) in self.latency.iter_mut().zip(other.latency) {
            *a += b;
        }
    }

    /// The bucket a latency of `ms` falls in.
    pub fn bucket(ms: i64) -> usize {
        LATENCY_BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BOUNDS_MS.len())
    }
}

/// The delivery queue at one instant, for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    /// Due and not claimed by any node.
    pub due: u64,
    /// Claimed (leased) and not yet recorded.
    pub claimed: u64,
    /// Waiting for a later attempt.
    pub scheduled: u64,
    /// Kept for a disabled endpoint.
    pub parked: u64,
    /// When the oldest due, unclaimed delivery became due.
    pub oldest_due_at: Option<DateTime<Utc>>,
    /// Disabled endpoints.
    pub disabled_endpoints: u64,
    /// The counts stopped at the cap they were taken with: the queue holds at least that many.
    pub capped: bool,
}

/// A delivery's state, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryState {
    /// `msgep_…`
    pub id: String,
    /// Message.
    pub msg_id: String,
    /// Endpoint.
    pub endpoint_id: String,
    /// Derived status.
    pub status: MessageStatus,
    /// Next scheduled attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the delivery was created.
    pub created_at: DateTime<Utc>,
    /// Attempts recorded so far (scheduled and manual).
    pub total_attempts: i64,
    /// When an operator marked this failed delivery reviewed (cleared when it is resent).
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// Filters for message listings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFilter {
    /// Only these event types.
    pub event_types: Option<Vec<String>>,
    /// Only messages on this channel.
    pub channel: Option<String>,
    /// Created strictly before.
    pub before: Option<DateTime<Utc>>,
    /// Created strictly after.
    pub after: Option<DateTime<Utc>>,
    /// Only deliveries in this status (delivery listings), or only messages with a delivery in
    /// it (message listings).
    pub status: Option<MessageStatus>,
    /// Only deliveries an operator marked reviewed (`true`) or did not (`false`).
    pub reviewed: Option<bool>,
}

/// Filters for attempt listings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptFilter {
    /// Application (always set).
    pub app_id: String,
    /// Only attempts of this message.
    pub msg_id: Option<String>,
    /// Only attempts to this endpoint.
    pub endpoint_id: Option<String>,
    /// Only this attempt status.
    pub status: Option<MessageStatus>,
    /// Only responses in this class (0 = no response, 100, 200, …, 500).
    pub status_code_class: Option<i64>,
    /// Created strictly before.
    pub before: Option<DateTime<Utc>>,
    /// Created strictly after.
    pub after: Option<DateTime<Utc>>,
    /// Only attempts of messages of these types.
    pub event_types: Option<Vec<String>>,
    /// Only attempts of messages on this channel.
    pub channel: Option<String>,
}

/// Where an idempotency key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    /// The caller now holds the key and must complete or release it.
    Started,
    /// Another request holds the key.
    InProgress,
    /// The key's first successful response, to replay.
    Completed {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: Vec<u8>,
    },
}

/// Counts by delivery or attempt status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Delivered.
    pub success: i64,
    /// Not attempted yet.
    pub pending: i64,
    /// Failed so far, retry scheduled.
    pub sending: i64,
    /// Failed for good.
    pub fail: i64,
}

/// Which messages a replay sends to an endpoint again.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayQuery {
    /// Application of the endpoint.
    pub app_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// Messages created at or after.
    pub since: DateTime<Utc>,
    /// Messages created at or before.
    pub until: DateTime<Utc>,
    /// What to look for.
    pub kind: ReplayKind,
}

/// The two kinds of replay.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayKind {
    /// Messages whose delivery to the endpoint is in one of `statuses` (and matches the filters).
    Deliveries {
        /// Delivery statuses to pick.
        statuses: Vec<MessageStatus>,
        /// Only these event types.
        event_types: Option<Vec<String>>,
        /// Only messages on this channel.
        channel: Option<String>,
        /// Only deliveries whose last response was in this class (0, 100, …, 500).
        status_code_class: Option<i64>,
    },
    /// Messages of the application that never had a delivery to the endpoint.
    Missing,
}

/// Lifecycle of a background task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Working.
    Running,
    /// Done.
    Finished,
    /// Stopped by an error (the reason is in its data).
    Failed,
}

impl TaskStatus {
    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Running => "running",
            TaskStatus::Finished => "finished",
            TaskStatus::Failed => "failed",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<TaskStatus> {
        match s {
            "running" => Some(TaskStatus::Running),
            "finished" => Some(TaskStatus::Finished),
            "failed" => Some(TaskStatus::Failed),
            _ => None,
        }
    }
}

/// A background task (recover, replay) and its progress.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// `qtask_…`
    pub id: String,
    /// Application it works on.
    pub app_id: String,
    /// Endpoint it works on.
    pub endpoint_id: Option<String>,
    /// `endpoint.recover`, `endpoint.replay`, `endpoint.bulk-replay`.
    pub kind: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// Progress and result, e.g. `{"messagesSent": 12}`.
    pub data: serde_json::Value,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Last progress.
    pub updated_at: DateTime<Utc>,
}

/// Filters for task listings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this kind.
    pub kind: Option<String>,
}

/// The attempt as a backend stores it: every text field free of NUL (written `\x00`, the rule of
/// [`hookd_core::text`]), which PostgreSQL's `text` and `jsonb` refuse. Borrowed when nothing
/// needed changing. The sent headers are free of NUL by construction
/// ([`hookd_core::model::SentHeaders`]). The dispatcher already escapes what receivers send;
/// this keeps any other caller's text from making a batch unstorable.
pub fn storable_attempt(a: &Attempt) -> std::borrow::Cow<'_, Attempt> {
    use hookd_core::text::without_nul;
    let has_nul = |s: &str| s.contains('\0');
    let dirty =
        has_nul(&a.url) || has_nul(&a.response) || a.response_headers.iter().any(|(k, v)| has_nul(k) || has_nul(v));
    if !dirty {
        return std::borrow::Cow::Borrowed(a);
    }
    let clean = |s: &str| without_nul(s).into_owned();
    std::borrow::Cow::Owned(Attempt {
        url: clean(&a.url),
        response: clean(&a.response),
        response_headers: a.response_headers.iter().map(|(k, v)| (clean(k), clean(v))).collect(),
        ..a.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The positions of the `candidates` a claim of at most `limit` takes.
    fn pick<'a>(
        bounds: &ClaimBounds,
        candidates: impl IntoIterator<Item = (&'a str, &'a str)>,
        limit: usize,
    ) -> Vec<usize> {
        let mut picker = bounds.picker(limit);
        let mut picked = Vec::new();
        for (i, (endpoint, app)) in candidates.into_iter().enumerate() {
            if picker.is_full() {
                break;
            }
            if picker.offer(endpoint, app) {
                picked.push(i);
            }
        }
        picked
    }

    #[test]
    fn a_pick_takes_candidates_in_order_within_each_endpoints_and_applications_room() {
        let bounds = ClaimBounds {
            per_endpoint: 2,
            endpoint_room: [("ep_slow".to_string(), 1), ("ep_off".to_string(), 0)]
                .into_iter()
                .collect(),
            skip_apps: vec!["app_full".into()],
            per_app: 3,
            app_room: [("app_busy".to_string(), 1)].into_iter().collect(),
        };
        let candidates = [
            ("ep_a", "app_1"),    // 0: taken
            ("ep_a", "app_1"),    // 1: taken (ep_a's second)
            ("ep_a", "app_1"),    // 2: ep_a full (per_endpoint 2)
            ("ep_slow", "app_1"), // 3: taken, ep_slow's room is 1; app_1's third
            ("ep_slow", "app_1"), // 4: ep_slow full
            ("ep_off", "app_2"),  // 5: room 0
            ("ep_b", "app_1"),    // 6: app_1 full (per_app 3)
            ("ep_c", "app_full"), // 7: skipped application
            ("ep_d", "app_busy"), // 8: taken, app_busy's room is 1
            ("ep_e", "app_busy"), // 9: app_busy full
            ("ep_f", "app_2"),    // 10: taken
            ("ep_g", "app_3"),    // 11: beyond the limit
        ];
        assert_eq!(pick(&bounds, candidates, 5), vec![0, 1, 3, 8, 10]);
        assert_eq!(pick(&bounds, candidates, 2), vec![0, 1], "never more than the limit");
        let unbounded_apps = ClaimBounds {
            per_endpoint: 1,
            ..ClaimBounds::default()
        };
        let same_app = [("e1", "a"), ("e2", "a"), ("e3", "a"), ("e1", "a")];
        assert_eq!(
            pick(&unbounded_apps, same_app, 10),
            vec![0, 1, 2],
            "per_app 0 bounds no application"
        );
    }
}

/// A position in an application's stream of messages as pollers read it: strictly after the
/// message at (`seq`, `id`). `seq` is the backend's commit-ordered sequence (SQLite's rowid,
/// PostgreSQL's transaction id); `id` orders messages of one `seq` and may be empty (before
/// every message of that `seq`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PollCursor {
    /// Commit-ordered sequence.
    pub seq: i64,
    /// Message id within the sequence.
    pub id: String,
}

/// A message read from the stream, with the position just after it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolledMessage {
    /// Position of this message: polling after it reads what follows.
    pub cursor: PollCursor,
    /// The message.
    pub message: hookd_core::model::Message,
}

/// One poll of a polling destination, as [`PollStore::record_poll`](crate::PollStore::record_poll) logs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PollRecord {
    /// Application polled.
    pub app_id: String,
    /// The polling destination.
    pub endpoint_id: String,
    /// One successful attempt per message handed out (their `attempt_number` is set by the
    /// store), each with the id its delivery gets if this poll creates it.
    pub attempts: Vec<(String, hookd_core::model::Attempt)>,
    /// The consumer whose position moves, and where to.
    pub consumer: Option<(String, PollCursor)>,
    /// Most consumers one destination may have.
    pub max_consumers: usize,
    /// When the poll happened.
    pub at: DateTime<Utc>,
}

/// How many messages, the first by id at or after a time, a time seek looks at to find where
/// the stream reaches that time: ids follow publish times, the stream follows commits, and
/// publishes in flight together commit in any order.
pub const POLL_SEEK_WINDOW: i64 = 1_000;

/// One ordered lane of a FIFO destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FifoLane {
    /// The FIFO destination.
    pub endpoint_id: String,
    /// Its application.
    pub app_id: String,
    /// The lane's number.
    pub lane: i32,
}

/// A delivery at the head of a FIFO lane, with its message.
#[derive(Debug, Clone, PartialEq)]
pub struct FifoItem {
    /// `msgep_…`
    pub delivery_id: String,
    /// Scheduled attempts made so far.
    pub scheduled_attempts: i64,
    /// All attempts made so far.
    pub total_attempts: i64,
    /// The message.
    pub message: hookd_core::model::Message,
}
