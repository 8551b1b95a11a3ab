//! `/api/v1/event-type`: the event catalog.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::dto::{EventTypeOut, ListResponse};
use super::extract::{Caller, JsonBody, Query};
use super::ApiResult;
use crate::ops::event_types::{self as ops, EventTypeIn, EventTypePatch, ImportOpenApiIn};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v1!("/event-type"), get(list).post(create))
        .route(
            v1!("/event-type/{name}"),
            get(fetch).put(upsert).patch(patch).delete(delete),
        )
        .route(v1!("/event-type/import/openapi"), axum::routing::post(import_openapi))
}

async fn import_openapi(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ImportOpenApiIn>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_admin()?;
    let out = ops::import_openapi(&s, caller.env, body).await?;
    Ok(Json(serde_json::json!({ "data": out })))
}

async fn list(State(s): State<AppState>, caller: Caller, q: Query) -> ApiResult<Json<ListResponse<EventTypeOut>>> {
    let with_content = q.bool("with_content", false)?;
    let page = ops::list_event_types(&s, caller.env, q.bool("include_archived", false)?, &q.page(true)?).await?;
    Ok(Json(ListResponse::from_page(
        page,
        |e| e.name.clone(),
        |e| EventTypeOut::new(e, with_content),
    )))
}

async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<EventTypeIn>,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    caller.require_admin()?;
    if body.name.is_none() {
        return Err(super::error::ApiError::field(&["body", "name"], "missing field `name`"));
    }
    let et = ops::create_event_type(&s, caller.env, body).await?;
    Ok((StatusCode::CREATED, Json(EventTypeOut::new(et, true))))
}

async fn fetch(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult<Json<EventTypeOut>> {
    let with_content = q.bool("with_content", true)?;
    Ok(Json(EventTypeOut::new(
        ops::get_event_type(&s, caller.env, &name).await?,
        with_content,
    )))
}

async fn upsert(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<EventTypeIn>,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    caller.require_admin()?;
    let (et, created) = ops::upsert_event_type(&s, caller.env, &name, body).await?;
    let code = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(EventTypeOut::new(et, true))))
}

async fn patch(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<EventTypePatch>,
) -> ApiResult<Json<EventTypeOut>> {
    caller.require_admin()?;
    Ok(Json(EventTypeOut::new(
        ops::patch_event_type(&s, caller.env, &name, body).await?,
        true,
    )))
}

async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    ops::delete_event_type(&s, caller.env, &name, q.bool("expunge", false)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
