//! An application's messages: filtered by event type, channel, time and event id, newest
//! first; and one message with its payload, deliveries and every attempt's request and
//! response.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use hookd_core::model::{Application, Attempt, Message, MessageStatus, TriggerType};
use hookd_store::{AttemptFilter, Cursor, MessageFilter, PageRequest};
use serde::Deserialize;

use super::pages::Chrome;
use super::session::Viewer;
use super::Posted;
use super::{render, unavailable};
use crate::auth::Capability;
use crate::state::AppState;

const MESSAGES_PER_PAGE: usize = 50;
/// Most attempts a message page shows.
const ATTEMPTS_SHOWN: usize = 100;

/// The message list's filters, as the form sends them.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct MessagesQuery {
    /// One event type.
    #[serde(default)]
    event_type: String,
    /// One channel.
    #[serde(default)]
    channel: String,
    /// Created at or after (`YYYY-MM-DDTHH:MM`, UTC).
    #[serde(default)]
    since: String,
    /// Created before (`YYYY-MM-DDTHH:MM`, UTC).
    #[serde(default)]
    until: String,
    /// A message id or the publisher's event id.
    #[serde(default)]
    event_id: String,
    /// Only messages with a delivery in this status (`success`, `pending`, `sending`, `fail`).
    #[serde(default)]
    status: String,
    /// Continue after this message id.
    #[serde(default)]
    after: String,
}

struct MessageRow {
    id: String,
    event_type: String,
    event_id: String,
    channels: String,
    created: String,
}

impl MessageRow {
    fn from(m: &Message) -> MessageRow {
        MessageRow {
            id: m.id.clone(),
            event_type: m.event_type.clone(),
            event_id: m.event_id.clone().unwrap_or_default(),
            channels: m.channels.as_ref().map(|c| c.join(", ")).unwrap_or_default(),
            created: m.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesPage {
    chrome: Chrome,
    app: Application,
    query: MessagesQuery,
    rows: Vec<MessageRow>,
    next: Option<String>,
    error: Option<String>,
}

impl MessagesPage {
    /// The query string of the next page: the same filters, after `after`.
    fn next_query(&self, after: &str) -> String {
        let q = &self.query;
        form_urlencoded::Serializer::new(String::new())
            .append_pair("event_type", &q.event_type)
            .append_pair("channel", &q.channel)
            .append_pair("since", &q.since)
            .append_pair("until", &q.until)
            .append_pair("status", &q.status)
            .append_pair("after", after)
            .finish()
    }
}

/// A `datetime-local` value (`YYYY-MM-DDTHH:MM`, seconds optional) read as UTC.
pub(super) fn utc(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .map(|naive| Utc.from_utc_datetime(&naive))
}

/// `GET /apps/{app}/messages`: the application's messages, newest first.
pub async fn list(
    State(state): State<AppState>,
    op: Viewer,
    Path(key): Path<String>,
    Query(query): Query<MessagesQuery>,
) -> Response {
    let app = match super::endpoints::application(&state, &op, &key).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    let mut error = None;
    let mut time = |field: &str, value: &str| -> Option<DateTime<Utc>> {
        if value.trim().is_empty() {
            return None;
        }
        let parsed = utc(value);
        if parsed.is_none() {
            error = Some(format!("{field}: write a date and time as YYYY-MM-DDTHH:MM (UTC)"));
        }
        parsed
    };
    let since = time("From", &query.since);
    let until = time("Until", &query.until);
    let (rows, next) = if !query.event_id.trim().is_empty() {
        match state.store.get_message(&app.id, query.event_id.trim()).await {
            Ok(found) => (found.iter().map(MessageRow::from).collect(), None),
            Err(e) => return unavailable(&e),
        }
    } else {
        let filter = MessageFilter {
            event_types: Some(vec![query.event_type.trim().to_string()]).filter(|t| !t[0].is_empty()),
            channel: Some(query.channel.trim().to_string()).filter(|c| !c.is_empty()),
            // `after` is exclusive in the store: one microsecond earlier includes `since`.
            after: since.map(|t| t - chrono::Duration::microseconds(1)),
            before: until,
            status: [
                MessageStatus::Success,
                MessageStatus::Pending,
                MessageStatus::Sending,
                MessageStatus::Fail,
            ]
            .into_iter()
            .find(|s| s.text() == query.status),
            reviewed: None,
        };
        let page = PageRequest {
            limit: MESSAGES_PER_PAGE,
            cursor: Some(query.after.clone())
                .filter(|a| !a.is_empty())
                .map(|key| Cursor { key, backwards: false }),
            ascending: false,
        };
        match state.store.list_messages(&app.id, &filter, &page).await {
            Ok(found) => {
                let next = found
                    .has_more
                    .then(|| found.items.last().map(|m| m.id.clone()))
                    .flatten();
                (found.items.iter().map(MessageRow::from).collect(), next)
            }
            Err(e) => return unavailable(&e),
        }
    };
    let page = MessagesPage {
        chrome: Chrome::new(&op, "messages"),
        app,
        query,
        rows,
        next,
        error,
    };
    render(StatusCode::OK, &page)
}

struct DeliveryRow {
    endpoint_id: String,
    status: &'static str,
    attempts: i64,
    next: String,
}

struct AttemptView {
    id: String,
    endpoint_id: String,
    at: String,
    status: &'static str,
    code: i64,
    duration_ms: i64,
    trigger: &'static str,
    url: String,
    request_headers: Vec<(String, String)>,
    response_headers: Vec<(String, String)>,
    response: String,
}

impl AttemptView {
    fn from(a: Attempt) -> AttemptView {
        AttemptView {
            endpoint_id: a.endpoint_id,
            at: a.created_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            status: a.status.text(),
            code: a.response_status_code,
            duration_ms: a.response_duration_ms,
            trigger: match a.trigger_type {
                TriggerType::Scheduled => "scheduled",
                TriggerType::Manual => "manual",
            },
            url: a.url,
            request_headers: a.request_headers.to_map().into_iter().collect(),
            response_headers: a.response_headers,
            response: a.response,
            id: a.id,
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    chrome: Chrome,
    app: Application,
    message: Message,
    payload: String,
    deliveries: Vec<DeliveryRow>,
    attempts: Vec<AttemptView>,
    more_attempts: bool,
}

/// `GET /apps/{app}/messages/{message}`: a message, its deliveries and its attempts.
pub async fn show(State(state): State<AppState>, op: Viewer, Path((app_key, key)): Path<(String, String)>) -> Response {
    let app = match super::endpoints::application(&state, &op, &app_key).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    let message = match state.store.get_message(&app.id, &key).await {
        Ok(Some(m)) => m,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such message in this application").into_response(),
        Err(e) => return unavailable(&e),
    };
    let deliveries = match state
        .store
        .list_message_deliveries(&message.id, &PageRequest::first(250, true))
        .await
    {
        Ok(found) => found.items,
        Err(e) => return unavailable(&e),
    };
    let filter = AttemptFilter {
        app_id: app.id.clone(),
        msg_id: Some(message.id.clone()),
        ..AttemptFilter::default()
    };
    let attempts = match state
        .store
        .list_attempts(&filter, &PageRequest::first(ATTEMPTS_SHOWN, false))
        .await
    {
        Ok(found) => found,
        Err(e) => return unavailable(&e),
    };
    let payload = match &message.payload {
        Some(p) => serde_json::from_str::<serde_json::Value>(p)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| p.clone()),
        None => "(expired: the payload is no longer kept)".to_string(),
    };
    let page = MessagePage {
        chrome: Chrome::new(&op, "messages"),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryRow {
                endpoint_id: d.endpoint_id,
                status: d.status.text(),
                attempts: d.total_attempts,
                next: d
                    .next_attempt_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        more_attempts: attempts.has_more,
        attempts: attempts.items.into_iter().map(AttemptView::from).collect(),
        payload,
        app,
        message,
    };
    render(StatusCode::OK, &page)
}

/// `POST /apps/{app}/messages/{message}/resend`: sends the message to one of its endpoints
/// again (field `endpoint`), then shows the message with the new attempt to come.
pub async fn resend(
    State(state): State<AppState>,
    Path((app_key, key)): Path<(String, String)>,
    Posted { op, fields }: Posted<Viewer>,
) -> Response {
    if let Some(r) = super::endpoints::refusal(&op, Capability::CreateAttempts) {
        return r;
    }
    let app = match super::endpoints::application(&state, &op, &app_key).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    let sent = async {
        let message = state
            .store
            .get_message(&app.id, &key)
            .await?
            .ok_or(crate::ops::OpsError::NotFound("message"))?;
        let endpoint = crate::ops::endpoints::get_endpoint(&state, &app, &fields.one("endpoint")).await?;
        crate::ops::attempts::resend(&state, &app, &message, &endpoint).await?;
        Ok::<_, crate::ops::OpsError>(message.id)
    };
    match sent.await {
        Ok(id) => Redirect::to(&format!("{}/apps/{}/messages/{id}", op.root(), app.id)).into_response(),
        Err(e) => super::endpoints::ops_failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_are_read_as_utc_with_or_without_seconds() {
        assert_eq!(
            utc("2026-12-03T10:15"),
            Some(Utc.with_ymd_and_hms(2026, 12, 3, 10, 15, 0).unwrap())
        );
        assert_eq!(
            utc(" 2026-12-03T10:15:30 "),
            Some(Utc.with_ymd_and_hms(2026, 12, 3, 10, 15, 30).unwrap())
        );
        assert_eq!(utc("yesterday"), None);
    }
}
