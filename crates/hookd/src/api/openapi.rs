//! `GET /api/v1/openapi.json`: hookd's API description, with the event catalog of the live
//! environment (or `?environment=test`) as OpenAPI `webhooks`. No token needed: consumers use it
//! to generate types for the events they receive.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use hookd_core::model::Environment;

use super::error::ApiError;
use super::extract::Query;
use super::ApiResult;
use crate::ops::event_types::all_event_types;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(v1!("/openapi.json"), get(spec))
}

async fn spec(State(s): State<AppState>, q: Query) -> ApiResult<Json<serde_json::Value>> {
    let env = match q.get("environment") {
        None => Environment::Live,
        Some(name) => Environment::parse(name)
            .ok_or_else(|| ApiError::field(&["query", "environment"], "environment must be `live` or `test`"))?,
    };
    let types = all_event_types(s.store.as_ref(), env, false).await?;
    Ok(Json(crate::openapi::spec(&types)))
}
