//! The Svix-compatible HTTP API under `/api/v1`.
//!
//! Handlers are thin: extract (token, path, query, body) → call an [`ops`](crate::ops)
//! use-case → map to a DTO. Statuses are chosen only in [`error`] and by the success codes
//! written next to each handler. Every path is also served with a trailing slash.

/// An API path: `/api/v1` followed by `$path`. Routes are declared with their whole path
/// rather than nested under the prefix, so a request is routed once, without the nested
/// router's prefix stripping and per-request service clones.
macro_rules! v1 {
    ($path:literal) => {
        concat!("/api/v1", $path)
    };
}

mod application;
mod attempt;
mod auth;
mod destination;
pub mod dto;
mod endpoint;
pub mod error;
mod event_type;
pub mod extract;
mod health;
pub mod idempotency;
mod listen;
mod message;
pub mod metrics;
mod openapi;
mod replay;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

use crate::state::AppState;
use error::ApiError;
use extract::Caller;

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// The whole API, with `beside` (the dashboard) served next to it, ready to serve (trailing
/// slashes trimmed before routing).
pub fn router(
    state: AppState,
    beside: Option<Router<AppState>>,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<NormalizePath<Router>, std::net::SocketAddr> {
    let limit = state.config.api.max_body_bytes;
    let mut app = Router::new()
        .merge(application::router())
        .merge(auth::router())
        .merge(endpoint::router())
        .merge(destination::router())
        .merge(event_type::router())
        .merge(message::router())
        .merge(attempt::router())
        .merge(replay::router())
        .merge(health::router())
        .merge(listen::router())
        .merge(openapi::router())
        .route_layer(axum::middleware::from_fn(crate::metrics::track));
    if let Some(pages) = beside {
        app = app.merge(pages);
    }
    if state.config.metrics.enabled && state.config.metrics.listen.is_none() {
        app = app.route("/metrics", axum::routing::get(metrics::serve));
    }
    let app = app
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), request_timeout))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state);
    let app = NormalizePathLayer::trim_trailing_slash().layer(app);
    axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<std::net::SocketAddr>(app)
}

/// Ends a request that takes longer than `api.request_timeout_secs` (body reading included)
/// with a 503 in the Svix error shape, unless it has begun writing: see [`with_deadline`].
async fn request_timeout(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let secs = state.config.api.request_timeout_secs;
    with_deadline(std::time::Duration::from_secs(secs), next.run(req)).await
}

/// Runs a request's handler under a write gate ([`hookd_store::gate`]). At the deadline a
/// request that has not written is answered `503` and can no longer write, so it never commits
/// after that answer; a request that has begun writing is answered with its real outcome once
/// its handler finishes, so a client is never told "failed" about a change that was made.
pub(crate) async fn with_deadline(
    deadline: std::time::Duration,
    handler: impl std::future::Future<Output = axum::response::Response> + Send + 'static,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let gate = hookd_store::gate::WriteGate::new();
    let mut task = tokio::spawn(gate.clone().scope(handler));
    // The client going away drops this future: a handler that has not written is stopped (and
    // can no longer write); one that has is left to finish its change.
    let _stop_if_abandoned = StopUnlessWriting {
        gate: gate.clone(),
        task: task.abort_handle(),
    };
    let finished = match tokio::time::timeout(deadline, &mut task).await {
        Ok(finished) => finished,
        Err(_) if gate.close() => {
            task.abort();
            return ApiError::Timeout(deadline.as_secs()).into_response();
        }
        Err(_) => task.await,
    };
    match finished {
        Ok(response) => response,
        Err(e) => ApiError::Internal(Box::new(e)).into_response(),
    }
}

/// Stops a request's handler when dropped, unless it has begun writing.
struct StopUnlessWriting {
    gate: hookd_store::gate::WriteGate,
    task: tokio::task::AbortHandle,
}

impl Drop for StopUnlessWriting {
    fn drop(&mut self) {
        if !self.task.is_finished() && self.gate.close() {
            self.task.abort();
        }
    }
}

/// `/metrics` alone, for a separate metrics listener.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics::serve))
        .with_state(state)
}

/// Resolves the application in the path and checks the caller may touch it.
pub(crate) async fn app_for(state: &AppState, caller: &Caller, key: &str) -> ApiResult<hookd_core::model::Application> {
    let app = crate::ops::applications::get_application(state, caller.env, key).await?;
    if caller.app_id.as_ref().is_some_and(|only| *only != app.id) {
        // Svix answers 404 rather than 403 so a scoped token cannot probe other applications.
        return Err(ApiError::NotFound);
    }
    Ok(app)
}

/// Resolves the application and the endpoint or destination in the path (ids or uids), for
/// what both have: attempts, attempted messages and statistics.
pub(crate) async fn target_for(
    state: &AppState,
    caller: &Caller,
    app_key: &str,
    endpoint_key: &str,
) -> ApiResult<(hookd_core::model::Application, hookd_core::model::Endpoint)> {
    let app = app_for(state, caller, app_key).await?;
    let endpoint = crate::ops::endpoints::get_target(state, &app, endpoint_key).await?;
    Ok((app, endpoint))
}

/// Resolves the application and the endpoint in the path (ids or uids).
pub(crate) async fn endpoint_for(
    state: &AppState,
    caller: &Caller,
    app_key: &str,
    endpoint_key: &str,
) -> ApiResult<(hookd_core::model::Application, hookd_core::model::Endpoint)> {
    let app = app_for(state, caller, app_key).await?;
    let endpoint = crate::ops::endpoints::get_endpoint(state, &app, endpoint_key).await?;
    Ok((app, endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_millis(50);

    // Two workers: the handler blocks one of them past the deadline (so cancelling it cannot
    // stop it), and the deadline fires on the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_past_its_deadline_before_writing_is_answered_503_and_never_writes() {
        let wrote = Arc::new(AtomicBool::new(false));
        let flag = wrote.clone();
        let slow = async move {
            // Sleeps past the deadline, then tries to write (as a handler blocked on a slow
            // read and then writing would).
            std::thread::sleep(Duration::from_millis(150));
            if hookd_store::gate::begin_write().is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
            StatusCode::CREATED.into_response()
        };
        let answer = with_deadline(DEADLINE, slow).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!wrote.load(Ordering::SeqCst), "a request answered 503 wrote afterwards");
    }

    #[tokio::test]
    async fn a_request_that_began_writing_is_answered_with_its_outcome_after_the_deadline() {
        let committing = async {
            hookd_store::gate::begin_write().unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await; // a slow commit
            StatusCode::CREATED.into_response()
        };
        assert_eq!(with_deadline(DEADLINE, committing).await.status(), StatusCode::CREATED);
        let quick = async { StatusCode::ACCEPTED.into_response() };
        assert_eq!(with_deadline(DEADLINE, quick).await.status(), StatusCode::ACCEPTED);
    }

    #[tokio::test]
    async fn a_client_going_away_stops_a_handler_that_has_not_written_but_not_one_that_has() {
        let reached = |flag: &Arc<AtomicBool>| {
            let flag = flag.clone();
            move || flag.store(true, Ordering::SeqCst)
        };
        let (idle_end, writing_end) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (idle_done, writing_done) = (reached(&idle_end), reached(&writing_end));
        let idle = async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            idle_done();
            StatusCode::OK.into_response()
        };
        let writing = async move {
            hookd_store::gate::begin_write().unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            writing_done();
            StatusCode::OK.into_response()
        };
        // Each request is dropped (its client disconnected) after 20 ms.
        let long = Duration::from_secs(30);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), with_deadline(long, idle))
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(20), with_deadline(long, writing))
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            !idle_end.load(Ordering::SeqCst),
            "a handler that had not written was stopped"
        );
        assert!(
            writing_end.load(Ordering::SeqCst),
            "a handler that had begun writing finished"
        );
    }
}
