//! `/api/v1/app/{app_id}/destination` and `/api/v1/app/{app_id}/poller`: destinations beyond
//! plain HTTP endpoints, and the routes polling consumers read through.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hookd_core::model::{DestinationKind, Endpoint, Message};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::dto::{ts, ListResponse};
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Query};
use super::{app_for, ApiResult};
use crate::ops::destinations::{self as ops, DestinationIn, DestinationPatch, PollQuery, Start};
use crate::ops::endpoints::RotateIn;
use crate::ops::{ErrorCode, OpsError};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v1!("/app/{app_id}/destination"), get(list).post(create))
        .route(
            v1!("/app/{app_id}/destination/{destination_id}"),
            get(fetch).put(upsert).patch(patch).delete(delete),
        )
        .route(
            v1!("/app/{app_id}/destination/{destination_id}/secret/rotate"),
            post(rotate),
        )
        .route(
            v1!("/app/{app_id}/destination/{destination_id}/transformation"),
            get(transformation).patch(patch_transformation),
        )
        .route(v1!("/app/{app_id}/poller/{sink_id}"), get(poll))
        .route(
            v1!("/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}"),
            get(consumer_poll),
        )
        .route(
            v1!("/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}/seek"),
            post(seek),
        )
}

/// `DestinationOut`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationOut {
    id: String,
    uid: Option<String>,
    status: &'static str,
    current_iterator: String,
    failure_reason: Option<String>,
    created_at: String,
    updated_at: String,
    batch_size: u32,
    max_wait_secs: u32,
    event_types: Option<Vec<String>>,
    channels: Option<Vec<String>>,
    next_retry_at: Option<String>,
    metadata: BTreeMap<String, String>,
    #[serde(rename = "type")]
    kind: &'static str,
    config: Map<String, Value>,
}

impl From<Endpoint> for DestinationOut {
    fn from(e: Endpoint) -> DestinationOut {
        let mut config = e.destination.as_ref().map(|d| d.config.clone()).unwrap_or_default();
        if e.destination
            .as_ref()
            .is_some_and(|d| d.kind == DestinationKind::FifoEndpoint)
        {
            // `SinkHttpConfigOut`: the URL and the custom headers, sensitive values withheld.
            let (shown, sensitive) = crate::ops::endpoints::visible_headers(&e);
            config.insert("url".into(), json!(e.url));
            config.insert("headers".into(), json!({"headers": shown, "sensitive": sensitive}));
        }
        if let Some(d) = e.destination.as_ref().filter(|d| d.kind == DestinationKind::RabbitMq) {
            // `RabbitMqConfigOut`: the broker URI with its password withheld; `mandatory` always.
            let uri = d.credential.as_deref().map(ops::amqp_target).unwrap_or_default();
            config.insert("uri".into(), json!(uri));
            config.entry("mandatory").or_insert(json!(false));
        }
        let d = e.destination.expect("only destinations are shown as destinations");
        DestinationOut {
            status: if e.disabled { "disabled" } else { "enabled" },
            // Where a consumer without a position of its own starts: the creation time.
            current_iterator: ops::encode_iterator(&Start::At(e.created_at)),
            failure_reason: None,
            created_at: ts(&e.created_at),
            updated_at: ts(&e.updated_at),
            batch_size: d.batch_size,
            max_wait_secs: d.max_wait_secs,
            event_types: e.event_types,
            channels: e.channels,
            next_retry_at: None,
            metadata: e.metadata,
            kind: d.kind.as_str(),
            config,
            id: e.id,
            uid: e.uid,
        }
    }
}

async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    q: Query,
) -> ApiResult<Json<ListResponse<DestinationOut>>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let page = ops::list_destinations(&s, &app, &q.page(false)?).await?;
    Ok(Json(ListResponse::from_page(
        page,
        |e| e.id.clone(),
        DestinationOut::from,
    )))
}

async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<DestinationIn>,
) -> ApiResult<(StatusCode, Json<DestinationOut>)> {
    let app = app_for(&s, &caller, &app_id).await?;
    let created = ops::create_destination(&s, &app, body).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

async fn fetch(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, key)): Path<(String, String)>,
) -> ApiResult<Json<DestinationOut>> {
    let app = app_for(&s, &caller, &app_id).await?;
    Ok(Json(ops::get_destination(&s, &app, &key).await?.into()))
}

async fn upsert(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<DestinationIn>,
) -> ApiResult<(StatusCode, Json<DestinationOut>)> {
    let app = app_for(&s, &caller, &app_id).await?;
    let (destination, created) = ops::upsert_destination(&s, &app, &key, body).await?;
    let code = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(destination.into())))
}

async fn patch(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<DestinationPatch>,
) -> ApiResult<Json<DestinationOut>> {
    let app = app_for(&s, &caller, &app_id).await?;
    Ok(Json(ops::patch_destination(&s, &app, &key, body).await?.into()))
}

async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = app_for(&s, &caller, &app_id).await?;
    ops::delete_destination(&s, &app, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Answers 200 with the new key (`DestinationSecretRotateOut`).
async fn rotate(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<RotateIn>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let app = app_for(&s, &caller, &app_id).await?;
    let mut response = Json(json!({ "key": ops::rotate_secret(&s, &app, &key, body).await? })).into_response();
    // The answer is the new signing key: it must not sit in the idempotency table in the clear.
    response.extensions_mut().insert(super::idempotency::NotReplayable);
    Ok(response)
}

/// hookd runs no transformations: every destination reports none.
async fn transformation(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let app = app_for(&s, &caller, &app_id).await?;
    ops::get_destination(&s, &app, &key).await?;
    Ok(Json(json!({ "code": null, "enabled": false })))
}

/// `DestinationTransformIn`.
#[derive(Deserialize)]
struct TransformIn {
    #[serde(default)]
    code: Option<String>,
}

/// Clearing the code is accepted (there is none); setting code is refused.
async fn patch_transformation(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<TransformIn>,
) -> ApiResult<Json<Value>> {
    let app = app_for(&s, &caller, &app_id).await?;
    ops::get_destination(&s, &app, &key).await?;
    if body.code.is_some() {
        return Err(OpsError::BadRequest {
            code: ErrorCode::NotSupported,
            detail: "hookd runs no transformations; shape the payload before publishing it".into(),
        }
        .into());
    }
    Ok(Json(json!({})))
}

/// `PollingEndpointMessageOut`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PolledMessageOut {
    id: String,
    event_type: String,
    payload: Box<RawValue>,
    timestamp: String,
    event_id: Option<String>,
    channels: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    headers: Option<BTreeMap<String, String>>,
    deliver_at: Option<String>,
}

impl PolledMessageOut {
    fn new(m: Message) -> ApiResult<PolledMessageOut> {
        let payload = m.payload.unwrap_or_default();
        Ok(PolledMessageOut {
            payload: RawValue::from_string(payload).map_err(|e| ApiError::Internal(Box::new(e)))?,
            timestamp: ts(&m.created_at),
            id: m.id,
            event_type: m.event_type,
            event_id: m.event_id,
            channels: m.channels,
            tags: None,
            headers: None,
            deliver_at: None,
        })
    }
}

/// `PollingEndpointOut`.
#[derive(Debug, Serialize)]
struct PolledOut {
    data: Vec<PolledMessageOut>,
    iterator: String,
    done: bool,
}

fn poll_query(q: &Query, with_filters: bool) -> ApiResult<PollQuery> {
    let limit = match q.int("limit")? {
        None => None,
        Some(n) if n < 1 => return Err(ApiError::field(&["query", "limit"], "limit must be at least 1")),
        Some(n) => Some(n as usize),
    };
    Ok(PollQuery {
        limit,
        iterator: q.get("iterator").map(str::to_string),
        after: if with_filters { q.datetime("after")? } else { None },
        event_type: with_filters.then(|| q.get("event_type").map(str::to_string)).flatten(),
        channel: with_filters.then(|| q.get("channel").map(str::to_string)).flatten(),
    })
}

fn polled(p: ops::Polled) -> ApiResult<Json<PolledOut>> {
    Ok(Json(PolledOut {
        data: p
            .messages
            .into_iter()
            .map(PolledMessageOut::new)
            .collect::<ApiResult<_>>()?,
        iterator: p.iterator,
        done: p.done,
    }))
}

/// Reads messages after `iterator` (or from `after`, or from the polling endpoint's creation).
async fn poll(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, sink)): Path<(String, String)>,
    q: Query,
) -> ApiResult<Json<PolledOut>> {
    let app = app_for(&s, &caller, &app_id).await?;
    polled(ops::poll(&s, &app, &sink, None, poll_query(&q, true)?).await?)
}

/// Reads the consumer's next messages, hookd keeping its position.
async fn consumer_poll(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, sink, consumer)): Path<(String, String, String)>,
    q: Query,
) -> ApiResult<Json<PolledOut>> {
    let app = app_for(&s, &caller, &app_id).await?;
    polled(ops::poll(&s, &app, &sink, Some(&consumer), poll_query(&q, false)?).await?)
}

/// `PollingEndpointConsumerSeekIn`.
#[derive(Deserialize)]
struct SeekIn {
    #[serde(deserialize_with = "datetime")]
    after: DateTime<Utc>,
}

/// RFC 3339, or without a zone (read as UTC), as the SDK sends a naive datetime.
fn datetime<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f").map(|n| n.and_utc()))
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 date-time")))
}

/// Moves the consumer to the first message published at or after `after`.
async fn seek(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, sink, consumer)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<SeekIn>,
) -> ApiResult<Json<Value>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let iterator = ops::seek(&s, &app, &sink, &consumer, body.after).await?;
    Ok(Json(json!({ "iterator": iterator })))
}
