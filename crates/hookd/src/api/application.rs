//! `/api/v1/app`: applications.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::dto::{ApplicationOut, ListResponse};
use super::extract::{Caller, JsonBody, Query};
use super::{app_for, ApiResult};
use crate::ops::applications::{self as ops, ApplicationIn, ApplicationPatch};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v1!("/app"), get(list).post(create))
        .route(v1!("/app/{app_id}"), get(fetch).put(upsert).patch(patch).delete(delete))
}

async fn list(State(s): State<AppState>, caller: Caller, q: Query) -> ApiResult<Json<ListResponse<ApplicationOut>>> {
    caller.require_admin()?;
    let page = ops::list_applications(&s, caller.env, &q.page(true)?).await?;
    Ok(Json(ListResponse::from_page(
        page,
        |a| a.id.clone(),
        ApplicationOut::from,
    )))
}

async fn create(
    State(s): State<AppState>,
    caller: Caller,
    q: Query,
    JsonBody(body): JsonBody<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    caller.require_admin()?;
    let (app, created) = ops::create_application(&s, caller.env, body, q.bool("get_if_exists", false)?).await?;
    let code = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(app.into())))
}

async fn fetch(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<ApplicationOut>> {
    Ok(Json(app_for(&s, &caller, &app_id).await?.into()))
}

async fn upsert(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    caller.require_admin()?;
    let (app, created) = ops::upsert_application(&s, caller.env, &app_id, body).await?;
    let code = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(app.into())))
}

async fn patch(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<ApplicationPatch>,
) -> ApiResult<Json<ApplicationOut>> {
    caller.require_admin()?;
    Ok(Json(
        ops::patch_application(&s, caller.env, &app_id, body).await?.into(),
    ))
}

async fn delete(State(s): State<AppState>, caller: Caller, Path(app_id): Path<String>) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    ops::delete_application(&s, caller.env, &app_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
