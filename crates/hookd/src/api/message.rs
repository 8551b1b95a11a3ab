//! `/api/v1/app/{app_id}/msg`: publishing and reading messages.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hookd_store::MessageFilter;

use super::dto::{ListResponse, MessageOut};
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Query};
use super::{app_for, ApiResult};
use crate::ops::messages::{self as ops, MessageIn, PrecheckIn};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v1!("/app/{app_id}/msg"), get(list).post(create))
        .route(v1!("/app/{app_id}/msg/{msg_id}"), get(fetch))
        .route(v1!("/app/{app_id}/msg/{msg_id}/content"), delete(expunge))
        .route(v1!("/app/{app_id}/msg/precheck/active"), axum::routing::post(precheck))
        .route(v1!("/app/{app_id}/msg/bulk-expunge"), axum::routing::post(bulk_expunge))
        .route(
            v1!("/app/{app_id}/msg/expunge-all-contents"),
            axum::routing::post(expunge_all),
        )
}

/// Svix `BulkExpungeContentsIn`.
#[derive(Debug, serde::Deserialize, Default)]
struct BulkExpungeIn {
    /// Message ids or event ids.
    #[serde(default)]
    ids: Vec<String>,
}

async fn bulk_expunge(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<BulkExpungeIn>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_admin()?;
    let app = app_for(&s, &caller, &app_id).await?;
    let results = ops::bulk_expunge(&s, &app, &body.ids).await?;
    Ok(Json(serde_json::json!({ "results": results })))
}

async fn expunge_all(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    caller.require_admin()?;
    let app = app_for(&s, &caller, &app_id).await?;
    let task = ops::expunge_all_contents(&s, &app).await?;
    Ok((StatusCode::ACCEPTED, Json(super::replay::task_out(task))))
}

async fn precheck(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<PrecheckIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let active = ops::precheck(&s, &app, &body).await?;
    Ok(Json(serde_json::json!({ "active": active })))
}

/// Filters shared by the message and attempted-message listings.
pub(super) fn message_filter(q: &Query) -> ApiResult<MessageFilter> {
    Ok(MessageFilter {
        event_types: q.list("event_types"),
        channel: q.get("channel").map(String::from),
        before: q.datetime("before")?,
        after: q.datetime("after")?,
        status: None,
        reviewed: None,
    })
}

async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    q: Query,
) -> ApiResult<Json<ListResponse<MessageOut>>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let with_content = q.bool("with_content", true)?;
    let page = ops::list_messages(&s, &app, &message_filter(&q)?, &q.page(false)?).await?;
    Ok(Json(ListResponse::from_page(
        page,
        |m| m.id.clone(),
        |m| MessageOut::new(m, with_content),
    )))
}

async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    q: Query,
    kept: Option<axum::Extension<super::idempotency::Kept>>,
    JsonBody(body): JsonBody<MessageIn>,
) -> ApiResult<axum::response::Response> {
    if caller.app_id.is_some() {
        // Scoped tokens may publish only to their own application (404 for any other).
        app_for(&s, &caller, &app_id).await?;
    }
    let with_content = q.bool("with_content", true)?;
    // The answer's payload is the request's, as stored: copied, not serialized or parsed again.
    let payload = with_content.then(|| body.payload.clone());
    let message = ops::create_message(&s, caller.env, &app_id, body).await?;
    let (app, id) = (&message.app_id, &message.id);
    let out = MessageOut::published(&message, payload);
    if kept.is_none() {
        return Ok((StatusCode::ACCEPTED, Json(out)).into_response());
    }
    // Kept for idempotent replay without the payload, which is read again then. The payload
    // is never parsed here: it is passed on as published, whatever numbers or depth it holds.
    let mut kept = out.clone();
    if with_content {
        let reference = super::idempotency::payload_ref(app, id).to_string();
        kept.payload =
            serde_json::value::RawValue::from_string(reference).map_err(|e| ApiError::Internal(Box::new(e)))?;
    }
    let stored = serde_json::to_vec(&kept).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let mut response = (StatusCode::ACCEPTED, Json(out)).into_response();
    response.extensions_mut().insert(super::idempotency::StoredForm(stored));
    Ok(response)
}

async fn fetch(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    q: Query,
) -> ApiResult<Json<MessageOut>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let with_content = q.bool("with_content", true)?;
    Ok(Json(MessageOut::new(
        ops::get_message(&s, &app, &msg_id).await?,
        with_content,
    )))
}

/// Removes the payload now; 204.
async fn expunge(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let app = app_for(&s, &caller, &app_id).await?;
    ops::expunge_content(&s, &app, &msg_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
