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
        .route(v1!("/health"), get(health))
        .route(v1!("/health/ping"), get(|| async { StatusCode::NO_CONTENT }))
}

/// Longest the database may take to answer a health check through its writer.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// 200 when the database answers (through the embedded database's writer thread, so a stuck
/// or dead writer counts) and the attempt recorder is alive and writing; 503 otherwise, with the
/// reason. The queue lives in the database.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let db = match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err("the database cannot be reached"),
        Err(_) => Err("the database did not answer within 3 s"),
    };
    let recorder = state.dispatcher.recorder_health();
    let part = |r: &Result<(), &str>| match r {
        Ok(()) => json!({"status": "ok"}),
        Err(why) => json!({"status": "error", "detail": why}),
    };
    let code = if db.is_ok() && recorder.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "database": part(&db),
            "queue": part(&db),
            "recorder": part(&recorder),
            "cache": {"status": "ok"},
        })),
    )
}
