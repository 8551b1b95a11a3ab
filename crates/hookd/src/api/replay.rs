//! Recover, replays, background tasks, endpoint statistics and `send-example`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookd_store::{StatusCounts, TaskFilter, TaskRecord, TaskStatus};
use serde_json::{json, Value};

use super::dto::{ts, ListResponse, MessageOut};
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Query};
use super::{endpoint_for, ApiResult};
use crate::ops::replay::{self as ops, BulkReplayIn, EventExampleIn, WindowIn};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v1!("/app/{app_id}/endpoint/{endpoint_id}/recover"), post(recover))
        .route(
            v1!("/app/{app_id}/endpoint/{endpoint_id}/replay-missing"),
            post(replay_missing),
        )
        .route(
            v1!("/app/{app_id}/endpoint/{endpoint_id}/bulk-replay"),
            post(bulk_replay),
        )
        .route(v1!("/app/{app_id}/endpoint/{endpoint_id}/stats"), get(stats))
        .route(
            v1!("/app/{app_id}/endpoint/{endpoint_id}/attempt-stats"),
            get(attempt_stats),
        )
        .route(
            v1!("/app/{app_id}/endpoint/{endpoint_id}/send-example"),
            post(send_example),
        )
        .route(v1!("/background-task"), get(list_tasks))
        .route(v1!("/background-task/{task_id}"), get(get_task))
}

/// `RecoverOut` / `ReplayOut`: the task as started.
fn started(task: TaskRecord) -> (StatusCode, Json<Value>) {
    (
        StatusCode::ACCEPTED,
        Json(
            json!({"id": task.id, "status": task.status.as_str(), "task": task.kind, "updatedAt": ts(&task.updated_at)}),
        ),
    )
}

/// `BackgroundTaskOut`.
pub(super) fn task_out(task: TaskRecord) -> Value {
    json!({
        "id": task.id,
        "status": task.status.as_str(),
        "task": task.kind,
        "data": task.data,
        "updatedAt": ts(&task.updated_at),
    })
}

async fn recover(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    JsonBody(body): JsonBody<WindowIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (app, endpoint) = endpoint_for(&s, &caller, &app_id, &ep).await?;
    Ok(started(ops::recover(&s, &app, &endpoint, body).await?))
}

async fn replay_missing(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    JsonBody(body): JsonBody<WindowIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (app, endpoint) = endpoint_for(&s, &caller, &app_id, &ep).await?;
    Ok(started(ops::replay_missing(&s, &app, &endpoint, body).await?))
}

async fn bulk_replay(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    JsonBody(body): JsonBody<BulkReplayIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (app, endpoint) = endpoint_for(&s, &caller, &app_id, &ep).await?;
    Ok(started(ops::bulk_replay(&s, &app, &endpoint, body).await?))
}

async fn counts(
    s: &AppState,
    caller: &Caller,
    app_id: &str,
    ep: &str,
    q: &Query,
    attempts: bool,
) -> ApiResult<StatusCounts> {
    let (_, endpoint) = super::target_for(s, caller, app_id, ep).await?;
    Ok(ops::stats(s, &endpoint, q.datetime("since")?, q.datetime("until")?, attempts).await?)
}

/// `EndpointStats`: deliveries by status (`canceled` is always 0: hookd cancels nothing).
async fn stats(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    q: Query,
) -> ApiResult<Json<Value>> {
    let c = counts(&s, &caller, &app_id, &ep, &q, false).await?;
    Ok(Json(
        json!({"success": c.success, "pending": c.pending, "sending": c.sending, "fail": c.fail, "canceled": 0}),
    ))
}

/// `EndpointAttemptStats`: attempts by outcome.
async fn attempt_stats(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    q: Query,
) -> ApiResult<Json<Value>> {
    let c = counts(&s, &caller, &app_id, &ep, &q, true).await?;
    Ok(Json(json!({"success": c.success, "fail": c.fail, "canceled": 0})))
}

async fn send_example(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    JsonBody(body): JsonBody<EventExampleIn>,
) -> ApiResult<Json<MessageOut>> {
    let (app, endpoint) = endpoint_for(&s, &caller, &app_id, &ep).await?;
    let sent = ops::send_example(&s, &app, &endpoint, body).await?;
    Ok(Json(MessageOut::new(std::sync::Arc::unwrap_or_clone(sent), true)))
}

async fn list_tasks(State(s): State<AppState>, caller: Caller, q: Query) -> ApiResult<Json<ListResponse<Value>>> {
    caller.require_admin()?;
    let status = match q.get("status") {
        None => None,
        Some(v) => Some(
            TaskStatus::parse(v)
                .ok_or_else(|| ApiError::field(&["query", "status"], "status must be running, finished or failed"))?,
        ),
    };
    let filter = TaskFilter {
        status,
        kind: q.get("task").map(String::from),
    };
    let page = ops::list_tasks(&s, caller.env, &filter, &q.page(false)?).await?;
    Ok(Json(ListResponse::from_page(page, |t| t.id.clone(), task_out)))
}

async fn get_task(State(s): State<AppState>, caller: Caller, Path(task_id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    Ok(Json(task_out(ops::get_task(&s, caller.env, &task_id).await?)))
}
