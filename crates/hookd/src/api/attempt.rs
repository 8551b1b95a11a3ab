//! Attempts and deliveries: the delivery log, and manual resends.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookd_core::model::MessageStatus;
use hookd_store::AttemptFilter;
use serde_json::{json, Value};

use super::dto::{AttemptOut, EndpointMessageOut, ListResponse, MessageEndpointOut, MessageOut};
use super::error::ApiError;
use super::extract::{Caller, Query};
use super::message::message_filter;
use super::{app_for, target_for, ApiResult};
use crate::ops::{attempts as ops, endpoints, messages};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v1!("/app/{app_id}/attempt/endpoint/{endpoint_id}"), get(by_endpoint))
        .route(v1!("/app/{app_id}/attempt/msg/{msg_id}"), get(by_message))
        .route(v1!("/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}"), get(one))
        .route(
            v1!("/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/headers"),
            get(headers),
        )
        .route(
            v1!("/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content"),
            axum::routing::delete(expunge_response),
        )
        .route(v1!("/app/{app_id}/msg/{msg_id}/endpoint"), get(destinations))
        .route(v1!("/app/{app_id}/endpoint/{endpoint_id}/msg"), get(attempted_messages))
        .route(
            v1!("/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend"),
            post(resend),
        )
}

fn status_param(q: &Query) -> ApiResult<Option<MessageStatus>> {
    match q.int("status")? {
        None => Ok(None),
        Some(code) => MessageStatus::from_code(code)
            .map(Some)
            .ok_or_else(|| ApiError::field(&["query", "status"], "status must be 0, 1, 2 or 3")),
    }
}

fn attempt_filter(q: &Query, app_id: &str) -> ApiResult<AttemptFilter> {
    let class = q.int("status_code_class")?;
    if class.is_some_and(|c| ![0, 100, 200, 300, 400, 500].contains(&c)) {
        return Err(ApiError::field(
            &["query", "status_code_class"],
            "status_code_class must be 0, 100, 200, 300, 400 or 500",
        ));
    }
    Ok(AttemptFilter {
        app_id: app_id.to_string(),
        status: status_param(q)?,
        status_code_class: class,
        before: q.datetime("before")?,
        after: q.datetime("after")?,
        event_types: q.list("event_types"),
        channel: q.get("channel").map(String::from),
        ..AttemptFilter::default()
    })
}

async fn by_endpoint(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    q: Query,
) -> ApiResult<Json<ListResponse<AttemptOut>>> {
    let (app, endpoint) = target_for(&s, &caller, &app_id, &ep).await?;
    let filter = AttemptFilter {
        endpoint_id: Some(endpoint.id),
        ..attempt_filter(&q, &app.id)?
    };
    let page = ops::list_attempts(&s, &filter, &q.page(false)?).await?;
    Ok(Json(ListResponse::from_page(page, |a| a.id.clone(), AttemptOut::from)))
}

async fn by_message(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    q: Query,
) -> ApiResult<Json<ListResponse<AttemptOut>>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let message = messages::get_message(&s, &app, &msg_id).await?;
    let endpoint_id = match q.get("endpoint_id") {
        Some(key) => Some(endpoints::get_target(&s, &app, key).await?.id),
        None => None,
    };
    let filter = AttemptFilter {
        msg_id: Some(message.id),
        endpoint_id,
        ..attempt_filter(&q, &app.id)?
    };
    let page = ops::list_attempts(&s, &filter, &q.page(false)?).await?;
    Ok(Json(ListResponse::from_page(page, |a| a.id.clone(), AttemptOut::from)))
}

async fn one(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<Json<AttemptOut>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let message = messages::get_message(&s, &app, &msg_id).await?;
    Ok(Json(ops::get_attempt(&s, &message, &attempt_id).await?.into()))
}

/// What was sent and what came back: `{"sentHeaders": {…}, "responseHeaders": [[name, value]…]}`
/// (sensitive custom header values are stored redacted).
async fn headers(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let message = messages::get_message(&s, &app, &msg_id).await?;
    let attempt = ops::get_attempt(&s, &message, &attempt_id).await?;
    Ok(Json(
        json!({ "sentHeaders": attempt.request_headers, "responseHeaders": attempt.response_headers }),
    ))
}

async fn destinations(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    q: Query,
) -> ApiResult<Json<ListResponse<MessageEndpointOut>>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let message = messages::get_message(&s, &app, &msg_id).await?;
    let page = ops::attempted_destinations(&s, &app, &message, &q.page(true)?).await?;
    Ok(Json(ListResponse::from_page(
        page,
        |(_, e)| e.id.clone(),
        |(d, e)| {
            let mut endpoint: super::dto::EndpointOut = e.into();
            endpoint.metadata = None;
            MessageEndpointOut {
                endpoint,
                delivery: (&d).into(),
            }
        },
    )))
}

async fn attempted_messages(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    q: Query,
) -> ApiResult<Json<ListResponse<EndpointMessageOut>>> {
    let (_, endpoint) = target_for(&s, &caller, &app_id, &ep).await?;
    let with_content = q.bool("with_content", true)?;
    let filter = hookd_store::MessageFilter {
        status: status_param(&q)?,
        ..message_filter(&q)?
    };
    let page = ops::attempted_messages(&s, &endpoint, &filter, &q.page(false)?).await?;
    Ok(Json(ListResponse::from_page(
        page,
        |(_, m)| m.id.clone(),
        |(d, m)| EndpointMessageOut {
            delivery: (&d).into(),
            message: MessageOut::new(m, with_content),
        },
    )))
}

async fn resend(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, ep)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let app = app_for(&s, &caller, &app_id).await?;
    let message = messages::get_message(&s, &app, &msg_id).await?;
    // Destinations too: a resend to one is a batch of one message.
    let endpoint = endpoints::get_target(&s, &app, &ep).await?;
    ops::resend(&s, &app, &message, &endpoint).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({}))))
}

/// Replaces the stored response body with `EXPUNGED`; 204.
async fn expunge_response(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let app = app_for(&s, &caller, &app_id).await?;
    let message = messages::get_message(&s, &app, &msg_id).await?;
    let attempt = ops::get_attempt(&s, &message, &attempt_id).await?;
    s.store.expunge_attempt_content(&message.id, &attempt.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
