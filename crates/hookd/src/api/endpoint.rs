//! `/api/v1/app/{app_id}/endpoint`: endpoints, their secrets and custom headers.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::dto::{EndpointOut, ListResponse};
use super::extract::{Caller, JsonBody, Query};
use super::{app_for, ApiResult};
use crate::ops::endpoints::{self as ops, EndpointIn, EndpointPatch, HeadersPatch, RotateIn};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v1!("/app/{app_id}/endpoint"), get(list).post(create))
        .route(
            v1!("/app/{app_id}/endpoint/{endpoint_id}"),
            get(fetch).put(upsert).patch(patch).delete(delete),
        )
        .route(v1!("/app/{app_id}/endpoint/{endpoint_id}/secret"), get(secret))
        .route(v1!("/app/{app_id}/endpoint/{endpoint_id}/secret/rotate"), post(rotate))
        .route(
            v1!("/app/{app_id}/endpoint/{endpoint_id}/headers"),
            get(headers).put(set_headers).patch(patch_headers),
        )
}

async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    q: Query,
) -> ApiResult<Json<ListResponse<EndpointOut>>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let page = ops::list_endpoints(&s, &app, &q.page(false)?).await?;
    Ok(Json(ListResponse::from_page(page, |e| e.id.clone(), EndpointOut::from)))
}

async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    let app = app_for(&s, &caller, &app_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(ops::create_endpoint(&s, &app, body).await?.into()),
    ))
}

async fn fetch(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
) -> ApiResult<Json<EndpointOut>> {
    let app = app_for(&s, &caller, &app_id).await?;
    Ok(Json(ops::get_endpoint(&s, &app, &ep).await?.into()))
}

async fn upsert(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    JsonBody(body): JsonBody<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    let app = app_for(&s, &caller, &app_id).await?;
    let (endpoint, created) = ops::upsert_endpoint(&s, &app, &ep, body).await?;
    let code = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(endpoint.into())))
}

async fn patch(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    JsonBody(body): JsonBody<EndpointPatch>,
) -> ApiResult<Json<EndpointOut>> {
    let app = app_for(&s, &caller, &app_id).await?;
    Ok(Json(ops::patch_endpoint(&s, &app, &ep, body).await?.into()))
}

async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = app_for(&s, &caller, &app_id).await?;
    ops::delete_endpoint(&s, &app, &ep).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn secret(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let endpoint = ops::get_endpoint(&s, &app, &ep).await?;
    Ok(Json(json!({ "key": ops::verification_key(&endpoint)? })))
}

/// Answers 200 with the new key (`EndpointSecretOut`), as the current SDKs expect.
async fn rotate(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    JsonBody(body): JsonBody<RotateIn>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let app = app_for(&s, &caller, &app_id).await?;
    let mut response = Json(json!({ "key": ops::rotate_secret(&s, &app, &ep, body).await? })).into_response();
    // The answer is the new signing key: it must not sit in the idempotency table in the clear.
    response.extensions_mut().insert(super::idempotency::NotReplayable);
    Ok(response)
}

async fn headers(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let app = app_for(&s, &caller, &app_id).await?;
    let (shown, sensitive) = ops::visible_headers(&ops::get_endpoint(&s, &app, &ep).await?);
    Ok(Json(json!({ "headers": shown, "sensitive": sensitive })))
}

/// `EndpointHeadersIn`.
#[derive(Deserialize)]
struct HeadersIn {
    headers: BTreeMap<String, String>,
}

async fn set_headers(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    JsonBody(body): JsonBody<HeadersIn>,
) -> ApiResult<StatusCode> {
    let app = app_for(&s, &caller, &app_id).await?;
    ops::set_headers(&s, &app, &ep, body.headers).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn patch_headers(
    State(s): State<AppState>,
    caller: Caller,
    Path((app_id, ep)): Path<(String, String)>,
    JsonBody(body): JsonBody<HeadersPatch>,
) -> ApiResult<StatusCode> {
    let app = app_for(&s, &caller, &app_id).await?;
    ops::patch_headers(&s, &app, &ep, body).await?;
    Ok(StatusCode::NO_CONTENT)
}
