//! The domain records hookd stores and serves.
//!
//! These are plain data: the store persists them, the API maps them to Svix-shaped DTOs, the
//! dispatcher reads them. Invariants are established by [`crate::validate`] before a record is
//! built from user input.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An isolated namespace: every token and every resource belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production traffic.
    Live,
    /// The sandbox for integration work.
    Test,
}

impl Environment {
    /// The stored name (`live`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Environment> {
        match s {
            "live" => Some(Environment::Live),
            "test" => Some(Environment::Test),
            _ => None,
        }
    }
}

/// One consumer of webhooks (a customer, a workspace).
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// `app_…`
    pub id: String,
    /// The environment it lives in.
    pub env: Environment,
    /// Caller-chosen unique key.
    pub uid: Option<String>,
    /// Display name.
    pub name: String,
    /// Free-form string metadata.
    pub metadata: BTreeMap<String, String>,
    /// Default delivery rate limit for its endpoints (messages per second).
    pub throttle_rate: Option<u16>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A URL that receives an application's messages.
///
/// Its `Debug` output leaves out what would let a reader impersonate hookd or reach the
/// receiver as hookd does: the secrets, the URL's credentials and custom headers' values.
#[derive(Clone, PartialEq)]
pub struct Endpoint {
    /// `ep_…`
    pub id: String,
    /// Owning application id.
    pub app_id: String,
    /// Caller-chosen key, unique within the application.
    pub uid: Option<String>,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text.
    pub description: String,
    /// A disabled endpoint receives nothing new until enabled.
    pub disabled: bool,
    /// Only these event types are delivered; `None` means all.
    pub event_types: Option<Vec<String>>,
    /// Only messages on one of these channels are delivered; `None` means all.
    pub channels: Option<Vec<String>>,
    /// Messages per second.
    pub throttle_rate: Option<u16>,
    /// Free-form string metadata.
    pub metadata: BTreeMap<String, String>,
    /// The current signing secret, `whsec_…`.
    pub secret: String,
    /// Custom headers added to every delivery, in the caller's casing.
    pub headers: BTreeMap<String, String>,
    /// Previous secrets that keep signing until they expire (rotation), newest first.
    pub old_secrets: Vec<OldSecret>,
    /// Start of the current run of exhausted deliveries; `None` while healthy.
    pub failing_since: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// What the endpoint is when it is not a plain HTTP endpoint (a Svix "destination");
    /// `None` for an HTTP endpoint.
    pub destination: Option<Destination>,
}

/// The kinds of destination hookd serves besides plain HTTP endpoints, by their Svix `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DestinationKind {
    /// The consumer pulls messages through the poller API; nothing is pushed.
    PollingEndpoint,
    /// HTTP delivery in publish order, in batches, one ordered lane per ordering key.
    FifoEndpoint,
    /// Published to a RabbitMQ exchange with publisher confirms.
    RabbitMq,
    /// Inserted as rows of a PostgreSQL table.
    Postgres,
}

impl DestinationKind {
    /// The Svix `type` name.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::PollingEndpoint => "pollingEndpoint",
            DestinationKind::FifoEndpoint => "fifoEndpoint",
            DestinationKind::RabbitMq => "rabbitMq",
            DestinationKind::Postgres => "postgres",
        }
    }

    /// Whether deliveries are pushed by the engine (everything but a polling endpoint).
    pub fn is_pushed(self) -> bool {
        self != DestinationKind::PollingEndpoint
    }

    /// Whether its deliveries travel in ordered lanes, in batches (everything pushed: a FIFO
    /// endpoint, a RabbitMQ exchange, a PostgreSQL table).
    pub fn in_lanes(self) -> bool {
        self.is_pushed()
    }

    /// Whether it is reached over HTTP at its URL (a FIFO endpoint); the others have a
    /// readable target instead.
    pub fn over_http(self) -> bool {
        self == DestinationKind::FifoEndpoint
    }
}

/// The settings of a destination beyond what every endpoint has. Its `Debug` output leaves the
/// credential out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// Which kind.
    pub kind: DestinationKind,
    /// The kind's settings as shown to callers (never holds a credential).
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The kind's credential (a broker URI with its password, a database password), sealed at
    /// rest like signing keys; never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Most messages per batch.
    pub batch_size: u32,
    /// Longest wait to fill a batch, in seconds.
    pub max_wait_secs: u32,
}

/// A rotated-out endpoint secret that still signs until `expires_at`, so receivers can switch
/// keys without dropping a delivery. Its `Debug` output leaves the key out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OldSecret {
    /// The key (`whsec_…` or `whsk_…`).
    pub key: String,
    /// When it stops signing.
    pub expires_at: DateTime<Utc>,
}

/// Stands in for a secret in `Debug` output.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every field named, so a new one cannot reach this output without a decision here.
        let Endpoint {
            id,
            app_id,
            uid,
            url,
            description,
            disabled,
            event_types,
            channels,
            throttle_rate,
            metadata,
            secret: _,
            headers,
            old_secrets,
            failing_since,
            created_at,
            updated_at,
            destination,
        } = self;
        let headers: BTreeMap<&str, &str> = headers.keys().map(|k| (k.as_str(), REDACTED)).collect();
        f.debug_struct("Endpoint")
            .field("id", id)
            .field("app_id", app_id)
            .field("uid", uid)
            .field("url", &url_without_credentials(url))
            .field("description", description)
            .field("disabled", disabled)
            .field("event_types", event_types)
            .field("channels", channels)
            .field("throttle_rate", throttle_rate)
            .field("metadata", metadata)
            .field("secret", &REDACTED)
            .field("headers", &headers)
            .field("old_secrets", old_secrets)
            .field("failing_since", failing_since)
            .field("created_at", created_at)
            .field("updated_at", updated_at)
            .field("destination", destination)
            .finish()
    }
}

/// The URL with any user name and password it carries replaced by `***`; text that is
/// not a URL is shown as it is (it cannot carry credentials a sender would use).
fn url_without_credentials(url: &str) -> String {
    crate::redact::url(url, "***", crate::redact::Keep::Nothing).unwrap_or_else(|| url.to_string())
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Destination {
            kind,
            config,
            credential,
            batch_size,
            max_wait_secs,
        } = self;
        f.debug_struct("Destination")
            .field("kind", kind)
            .field("config", config)
            .field("credential", &credential.as_ref().map(|_| REDACTED))
            .field("batch_size", batch_size)
            .field("max_wait_secs", max_wait_secs)
            .finish()
    }
}

impl std::fmt::Debug for OldSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let OldSecret { key: _, expires_at } = self;
        f.debug_struct("OldSecret")
            .field("key", &REDACTED)
            .field("expires_at", expires_at)
            .finish()
    }
}

/// A kind of event publishers send and endpoints subscribe to.
#[derive(Debug, Clone, PartialEq)]
pub struct EventType {
    /// Dotted name, e.g. `content.published`; the key.
    pub name: String,
    /// Environment it belongs to.
    pub env: Environment,
    /// What the event means.
    pub description: String,
    /// Archived types are hidden from lists and cannot be subscribed to.
    pub archived: bool,
    /// Still works, but discouraged.
    pub deprecated: bool,
    /// Visibility flag (Svix `featureFlag`).
    pub feature_flag: Option<String>,
    /// Group it is listed under (e.g. `content`).
    pub group_name: Option<String>,
    /// JSON Schemas by version (`{"1": {...}}`).
    pub schemas: Option<serde_json::Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A published event, stored once and fanned out to endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `msg_…`; also the `webhook-id` header of every delivery.
    pub id: String,
    /// Owning application id.
    pub app_id: String,
    /// The publisher's idempotency id, unique within the application.
    pub event_id: Option<String>,
    /// Event type name.
    pub event_type: String,
    /// Channels for endpoint filtering.
    pub channels: Option<Vec<String>>,
    /// The payload exactly as published (JSON object text); `None` once expunged.
    pub payload: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the payload is expunged.
    pub expires_at: DateTime<Utc>,
}

/// Status of an attempt, and of a delivery (message × endpoint), with Svix's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Delivered (2xx).
    Success = 0,
    /// Not attempted yet.
    Pending = 1,
    /// Failed for good (or, for one attempt, that attempt failed).
    Fail = 2,
    /// Failed so far, another attempt is scheduled.
    Sending = 3,
}

impl MessageStatus {
    /// Svix's integer code.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// Svix's `statusText`.
    pub fn text(self) -> &'static str {
        match self {
            MessageStatus::Success => "success",
            MessageStatus::Pending => "pending",
            MessageStatus::Fail => "fail",
            MessageStatus::Sending => "sending",
        }
    }

    /// From the integer code.
    pub fn from_code(code: i64) -> Option<MessageStatus> {
        Some(match code {
            0 => MessageStatus::Success,
            1 => MessageStatus::Pending,
            2 => MessageStatus::Fail,
            3 => MessageStatus::Sending,
            _ => return None,
        })
    }
}

/// Why an attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerType {
    /// By the retry schedule.
    Scheduled = 0,
    /// By a person or API call (resend, recover).
    Manual = 1,
}

impl TriggerType {
    /// Svix's integer code.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// From the integer code.
    pub fn from_code(code: i64) -> Option<TriggerType> {
        match code {
            0 => Some(TriggerType::Scheduled),
            1 => Some(TriggerType::Manual),
            _ => None,
        }
    }
}

/// One HTTP try of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// `atmpt_…`
    pub id: String,
    /// Message sent.
    pub msg_id: String,
    /// Endpoint it went to.
    pub endpoint_id: String,
    /// The URL at the time of the attempt.
    pub url: String,
    /// First bytes of the response body, or the transport error text.
    pub response: String,
    /// HTTP status; 0 when there was no HTTP response.
    pub response_status_code: i64,
    /// Time from sending to the end of the response.
    pub response_duration_ms: i64,
    /// Success or fail.
    pub status: MessageStatus,
    /// Scheduled or manual.
    pub trigger_type: TriggerType,
    /// 1-based number within its delivery (manual attempts also count).
    pub attempt_number: i64,
    /// Request headers as sent, sensitive values replaced by `[redacted]`.
    pub request_headers: SentHeaders,
    /// Response headers as received, in order.
    pub response_headers: Vec<(String, String)>,
    /// When the attempt started.
    pub created_at: DateTime<Utc>,
}

/// The request headers an attempt sent (sensitive values already `[redacted]`), held as the
/// JSON object they are stored as: names in ascending order, each once (the last value given
/// wins), and no NUL (written `\x00`, the rule of [`crate::text`]). A send builds it once, as
/// one string, and a store writes that string as it is; only reads parse it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentHeaders(String);

impl Default for SentHeaders {
    fn default() -> Self {
        SentHeaders("{}".into())
    }
}

impl SentHeaders {
    /// The headers `pairs` name, in any order.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut pairs: Vec<(K, V)> = pairs.into_iter().collect();
        // Stable: a name given twice keeps its values in the order given, and the last wins.
        pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let capacity = 2 + pairs
            .iter()
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 6)
            .sum::<usize>();
        let mut text = String::with_capacity(capacity);
        text.push('{');
        for (i, (name, value)) in pairs.iter().enumerate() {
            let name = name.as_ref();
            if pairs.get(i + 1).is_some_and(|next| next.0.as_ref() == name) {
                continue;
            }
            if text.len() > 1 {
                text.push(',');
            }
            push_json_string(&mut text, name);
            text.push(':');
            push_json_string(&mut text, value.as_ref());
        }
        text.push('}');
        SentHeaders(text)
    }

    /// The JSON object, as stored.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// The headers, names in ascending order.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.0).expect("built from pairs, always an object of strings")
    }
}

impl Serialize for SentHeaders {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for SentHeaders {
    /// From an object of strings, in any order and spacing (PostgreSQL's `jsonb` reorders).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Ok(SentHeaders::from_pairs(
            map.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
    }
}

/// Appends `s` as a JSON string, NUL written as `\x00` first. Header text rarely needs an
/// escape, so it is copied as it is when it needs none (what JSON escapes: control characters,
/// `"` and `\`), and written by `serde_json` otherwise.
fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        let clean = crate::text::without_nul(s);
        out.push_str(&serde_json::to_string(clean.as_ref()).expect("text always serializes"));
    }
}

/// The state of one message bound for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// `msgep_…`
    pub id: String,
    /// Message to send.
    pub msg_id: String,
    /// Endpoint to send it to.
    pub endpoint_id: String,
    /// Application of both.
    pub app_id: String,
    /// Derived status.
    pub status: MessageStatus,
    /// Attempts made so far by the schedule (manual ones excluded).
    pub attempts: i64,
    /// When the next scheduled attempt is due, if any.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_headers_are_one_json_object_sorted_each_name_once_without_nul() {
        let h = SentHeaders::from_pairs([
            ("webhook-id", "msg_1"),
            ("content-type", "application/json"),
            ("x-twice", "first"),
            ("x-quote", "a \"b\" \\ c"),
            ("x-nul", "c\0d"),
            ("x-twice", "second"),
        ]);
        assert_eq!(
            h.as_json(),
            r#"{"content-type":"application/json","webhook-id":"msg_1","x-nul":"c\\x00d","x-quote":"a \"b\" \\ c","x-twice":"second"}"#,
            "names sorted, the last value of a name kept, NUL written as \\x00, JSON escapes"
        );
        // The same text a map of the same headers serializes to, so stored rows read as before.
        let map = h.to_map();
        assert_eq!(serde_json::to_string(&map).unwrap(), h.as_json());
        assert_eq!(map["x-twice"], "second");
        assert_eq!(SentHeaders::default().as_json(), "{}");
        assert!(SentHeaders::default().to_map().is_empty());

        // Whatever text a header holds, the object is what serde_json writes for the same map.
        let texts = [
            "",
            "plain",
            "tab\there",
            "new\nline",
            "\u{1}\u{1f}",
            "del\u{7f}",
            "\"",
            "\\",
            "Zürich ✓",
            "a\\\"b",
        ];
        for (i, value) in texts.iter().enumerate() {
            for name in texts {
                let h = SentHeaders::from_pairs([(name, *value), ("z", texts[(i + 1) % texts.len()])]);
                let map: BTreeMap<&str, &str> = [(name, *value), ("z", texts[(i + 1) % texts.len()])]
                    .into_iter()
                    .collect();
                assert_eq!(h.as_json(), serde_json::to_string(&map).unwrap(), "{name:?}: {value:?}");
            }
        }
    }

    #[test]
    fn sent_headers_read_back_equal_whatever_order_and_spacing_a_store_returns() {
        let h = SentHeaders::from_pairs([("b", "2"), ("aa", "1"), ("c", "3")]);
        // PostgreSQL's jsonb puts shorter keys first and adds spaces.
        let stored: SentHeaders = serde_json::from_str(r#"{"b": "2", "c": "3", "aa": "1"}"#).unwrap();
        assert_eq!(stored, h);
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            serde_json::json!({"aa": "1", "b": "2", "c": "3"})
        );
        assert!(
            serde_json::from_str::<SentHeaders>(r#"{"a": 1}"#).is_err(),
            "values are strings"
        );
    }

    #[test]
    fn debug_output_of_an_endpoint_holds_none_of_its_secrets() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).expect("a valid instant");
        let endpoint = Endpoint {
            id: "ep_1".into(),
            app_id: "app_1".into(),
            uid: None,
            url: "https://hook-user:hook-pass@example.test/in?x=1".into(),
            description: String::new(),
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: BTreeMap::from([("team".into(), "billing".into())]),
            secret: "whsec_current-secret".into(),
            headers: BTreeMap::from([("X-Api-Key".into(), "header-secret".into())]),
            old_secrets: vec![OldSecret {
                key: "whsec_old-secret".into(),
                expires_at: at,
            }],
            failing_since: None,
            created_at: at,
            updated_at: at,
            destination: Some(Destination {
                kind: DestinationKind::RabbitMq,
                config: serde_json::Map::new(),
                credential: Some("amqp://guest:broker-secret@localhost".into()),
                batch_size: 1,
                max_wait_secs: 0,
            }),
        };
        let shown = format!("{endpoint:?}");
        for secret in [
            "current-secret",
            "old-secret",
            "header-secret",
            "broker-secret",
            "hook-user",
            "hook-pass",
        ] {
            assert!(!shown.contains(secret), "{secret} appears in {shown}");
        }
        // What helps a reader is still there.
        for kept in [
            "ep_1",
            "https://***@example.test/in?x=1",
            "X-Api-Key",
            "billing",
            "RabbitMq",
        ] {
            assert!(shown.contains(kept), "{kept} is missing from {shown}");
        }
        assert_eq!(url_without_credentials("not a url"), "not a url");
        assert_eq!(
            url_without_credentials("https://example.test/a"),
            "https://example.test/a"
        );
    }
}
