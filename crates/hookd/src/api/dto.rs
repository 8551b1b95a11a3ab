//! Response bodies in Svix's shapes (field names, nulls and omissions as the Svix server and
//! the official SDKs have them).

use std::collections::BTreeMap;

use hookd_core::model::{Application, Attempt, Endpoint, EventType, Message, MessageStatus};
use hookd_store::{DeliveryState, Page};
use serde::Serialize;
use serde_json::value::RawValue;

pub use crate::clock::ts;

/// Paginated list (`ListResponse_X_`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    /// Items.
    pub data: Vec<T>,
    /// Key of the last item (continue forwards); always present, `null` when empty.
    pub iterator: Option<String>,
    /// `-` + key of the first item (walk backwards).
    pub prev_iterator: Option<String>,
    /// No more items in the direction of travel.
    pub done: bool,
}

impl<T> ListResponse<T> {
    /// Builds the envelope from a page and the key of each item.
    pub fn from_page<U>(page: Page<U>, key: impl Fn(&U) -> String, out: impl FnMut(U) -> T) -> ListResponse<T> {
        let iterator = page.items.last().map(&key);
        let prev_iterator = page.items.first().map(|i| format!("-{}", key(i)));
        ListResponse {
            data: page.items.into_iter().map(out).collect(),
            iterator,
            prev_iterator,
            done: !page.has_more,
        }
    }
}

/// `ApplicationOut`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    /// `app_…`
    pub id: String,
    /// Omitted when unset, as Svix does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Name.
    pub name: String,
    /// Rate.
    pub throttle_rate: Option<u16>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Created.
    pub created_at: String,
    /// Updated.
    pub updated_at: String,
}

impl From<Application> for ApplicationOut {
    fn from(a: Application) -> Self {
        ApplicationOut {
            id: a.id,
            uid: a.uid,
            name: a.name,
            throttle_rate: a.throttle_rate,
            metadata: a.metadata,
            created_at: ts(&a.created_at),
            updated_at: ts(&a.updated_at),
        }
    }
}

/// `EndpointOut` (also carries Svix's legacy `rateLimit`, `filterTypes` and `version`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    /// `ep_…`
    pub id: String,
    /// Uid or null.
    pub uid: Option<String>,
    /// URL.
    pub url: String,
    /// Description.
    pub description: String,
    /// Version (always 1).
    pub version: u8,
    /// Disabled.
    pub disabled: bool,
    /// Event-type filter.
    pub event_types: Option<Vec<String>>,
    /// Same as `eventTypes` (legacy name).
    pub filter_types: Option<Vec<String>>,
    /// Channel filter.
    pub channels: Option<Vec<String>>,
    /// Rate.
    pub throttle_rate: Option<u16>,
    /// Same as `throttleRate` (legacy name).
    pub rate_limit: Option<u16>,
    /// Metadata (absent in `MessageEndpointOut`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Created.
    pub created_at: String,
    /// Updated.
    pub updated_at: String,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        EndpointOut {
            id: e.id,
            uid: e.uid,
            url: e.url,
            description: e.description,
            version: 1,
            disabled: e.disabled,
            filter_types: e.event_types.clone(),
            event_types: e.event_types,
            channels: e.channels,
            throttle_rate: e.throttle_rate,
            rate_limit: e.throttle_rate,
            metadata: Some(e.metadata),
            created_at: ts(&e.created_at),
            updated_at: ts(&e.updated_at),
        }
    }
}

/// `EventTypeOut`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Archived.
    pub archived: bool,
    /// Deprecated.
    pub deprecated: bool,
    /// Schemas (null unless asked for with `with_content`, or when none).
    pub schemas: Option<serde_json::Value>,
    /// Feature flag.
    pub feature_flag: Option<String>,
    /// Group it is listed under.
    pub group_name: Option<String>,
    /// Created.
    pub created_at: String,
    /// Updated.
    pub updated_at: String,
}

impl EventTypeOut {
    /// Maps, keeping schemas only when `with_content`.
    pub fn new(e: EventType, with_content: bool) -> Self {
        EventTypeOut {
            name: e.name,
            description: e.description,
            archived: e.archived,
            deprecated: e.deprecated,
            schemas: if with_content { e.schemas } else { None },
            feature_flag: e.feature_flag,
            group_name: e.group_name,
            created_at: ts(&e.created_at),
            updated_at: ts(&e.updated_at),
        }
    }
}

/// `MessageOut`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    /// `msg_…`
    pub id: String,
    /// Event id, omitted when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Event type.
    pub event_type: String,
    /// The payload as published; `{}` without content, `{"expired":true}` once expunged.
    pub payload: Box<RawValue>,
    /// Channels.
    pub channels: Option<Vec<String>>,
    /// Creation time.
    pub timestamp: String,
}

impl MessageOut {
    /// Maps a message just published, with the request's payload (already parsed, so not
    /// parsed again) or, with `None`, without content.
    pub fn published(m: &Message, payload: Option<Box<RawValue>>) -> Self {
        MessageOut {
            id: m.id.clone(),
            event_id: m.event_id.clone(),
            event_type: m.event_type.clone(),
            payload: payload.unwrap_or_else(|| RawValue::from_string("{}".into()).expect("valid JSON")),
            channels: m.channels.clone(),
            timestamp: ts(&m.created_at),
        }
    }

    /// Maps, with or without the payload.
    pub fn new(m: Message, with_content: bool) -> Self {
        let payload = match (&m.payload, with_content) {
            (_, false) => "{}".to_string(),
            (Some(p), true) => p.clone(),
            (None, true) => r#"{"expired":true}"#.to_string(),
        };
        MessageOut {
            id: m.id,
            event_id: m.event_id,
            event_type: m.event_type,
            payload: RawValue::from_string(payload)
                .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("valid JSON")),
            channels: m.channels,
            timestamp: ts(&m.created_at),
        }
    }
}

/// `MessageAttemptOut`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    /// `atmpt_…`
    pub id: String,
    /// Message.
    pub msg_id: String,
    /// Endpoint.
    pub endpoint_id: String,
    /// URL used.
    pub url: String,
    /// Response body prefix or error text.
    pub response: String,
    /// HTTP status (0 = none).
    pub response_status_code: i64,
    /// Duration.
    pub response_duration_ms: i64,
    /// 0 success, 2 fail.
    pub status: i64,
    /// `success` / `fail`.
    pub status_text: &'static str,
    /// 0 scheduled, 1 manual.
    pub trigger_type: i64,
    /// When.
    pub timestamp: String,
}

impl From<Attempt> for AttemptOut {
    fn from(a: Attempt) -> Self {
        AttemptOut {
            id: a.id,
            msg_id: a.msg_id,
            endpoint_id: a.endpoint_id,
            url: a.url,
            response: a.response,
            response_status_code: a.response_status_code,
            response_duration_ms: a.response_duration_ms,
            status: a.status.code(),
            status_text: a.status.text(),
            trigger_type: a.trigger_type.code(),
            timestamp: ts(&a.created_at),
        }
    }
}

/// A delivery's status fields, flattened into the two delivery listings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStatusOut {
    /// Status code.
    pub status: i64,
    /// Status text.
    pub status_text: &'static str,
    /// Next scheduled attempt.
    pub next_attempt: Option<String>,
}

impl From<&DeliveryState> for DeliveryStatusOut {
    fn from(d: &DeliveryState) -> Self {
        let status: MessageStatus = d.status;
        DeliveryStatusOut {
            status: status.code(),
            status_text: status.text(),
            next_attempt: d.next_attempt_at.as_ref().map(ts),
        }
    }
}

/// `EndpointMessageOut`: a message with its delivery status to one endpoint.
#[derive(Debug, Serialize)]
pub struct EndpointMessageOut {
    /// The message.
    #[serde(flatten)]
    pub message: MessageOut,
    /// Its delivery status.
    #[serde(flatten)]
    pub delivery: DeliveryStatusOut,
}

/// `MessageEndpointOut`: an endpoint with the delivery status of one message to it.
#[derive(Debug, Serialize)]
pub struct MessageEndpointOut {
    /// The endpoint (without metadata).
    #[serde(flatten)]
    pub endpoint: EndpointOut,
    /// Its delivery status.
    #[serde(flatten)]
    pub delivery: DeliveryStatusOut,
}
