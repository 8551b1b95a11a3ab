//! Store inputs and outputs that are not plain domain records.

use chrono::{DateTime, Utc};
use hookd_core::model::{Environment, MessageStatus, TriggerType};

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
    /// Only deliveries in this status (attempted-messages listing).
    pub status: Option<MessageStatus>,
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
