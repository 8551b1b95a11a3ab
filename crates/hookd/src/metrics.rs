//! Prometheus metrics at `/metrics`.
//!
//! Counters and histograms are recorded as things happen through the `metrics` facade (one
//! recorder per process); gauges are read at scrape time and appended to the same text: the
//! queue gauges from the database (the same on every node sharing it), the engine gauges from
//! this node's dispatcher. Labels never carry
//! ids: routes are templates (`/api/v1/app/{app_id}/msg`), statuses are classes (`2xx`).

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookd_core::retry::Outcome;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Histogram buckets, in seconds, for request and attempt durations.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program's); then the facade
        // reports there and this handle renders only the gauges below.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Middleware (after routing): counts API requests by route template, method and status class,
/// and records their duration.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let class = format!("{}xx", response.status().as_u16() / 100);
    metrics::counter!("hookd_api_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => class)
        .increment(1);
    metrics::histogram!("hookd_api_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A published message.
pub fn message_ingested(env: hookd_core::model::Environment) {
    metrics::counter!("hookd_messages_ingested_total", "environment" => env.as_str()).increment(1);
}

/// One attempt's outcome class and duration.
pub fn attempt(outcome: &Outcome, status_code: u16, seconds: f64) {
    let class = match outcome {
        _ if (200..300).contains(&status_code) => "success",
        Outcome::Timeout => "timeout",
        Outcome::Transport => "connection_error",
        _ if (300..400).contains(&status_code) => "http_3xx",
        _ if (400..500).contains(&status_code) => "http_4xx",
        _ => "http_5xx",
    };
    metrics::counter!("hookd_attempts_total", "outcome" => class).increment(1);
    metrics::histogram!("hookd_attempt_duration_seconds").record(seconds);
}

/// A delivery reached a final state (`success` or `fail`).
pub fn delivery_finished(status: &'static str) {
    metrics::counter!("hookd_deliveries_finished_total", "status" => status).increment(1);
}

/// `GET /metrics`: everything in the Prometheus text format.
pub async fn serve(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let token = &state.config.metrics.token;
    if !token.is_empty() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes())) {
            return (StatusCode::UNAUTHORIZED, "metrics.token is required\n").into_response();
        }
    }
    let h = handle();
    h.run_upkeep();
    let mut text = h.render();
    match gauges(&state).await {
        Ok(g) => text.push_str(&g),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read queue gauges for /metrics");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "queue gauges unavailable: database error\n",
            )
                .into_response();
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// This node's view of the queue and the engine, read now.
async fn gauges(state: &AppState) -> hookd_store::StoreResult<String> {
    let now = state.clock.now();
    let q = state.queue_stats().await?;
    let lag = q
        .oldest_due_at
        .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    let engine = state.dispatcher.stats();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    gauge(
        "hookd_deliveries_due",
        "Deliveries due now and not claimed by any node.",
        q.due as f64,
    );
    gauge(
        "hookd_deliveries_claimed",
        "Deliveries claimed by a node and not yet recorded.",
        q.claimed as f64,
    );
    gauge(
        "hookd_deliveries_scheduled",
        "Deliveries waiting for a later retry.",
        q.scheduled as f64,
    );
    gauge(
        "hookd_deliveries_parked",
        "Deliveries kept for a disabled endpoint.",
        q.parked as f64,
    );
    gauge(
        "hookd_queue_lag_seconds",
        "Age of the oldest due, unclaimed delivery (0 when none).",
        lag,
    );
    gauge(
        "hookd_endpoints_disabled",
        "Disabled endpoints.",
        q.disabled_endpoints as f64,
    );
    gauge(
        "hookd_queue_counts_capped",
        &format!(
            "1 when the delivery counts stopped at {} deliveries: the queue holds at least that many.",
            crate::state::QUEUE_COUNT_CAP
        ),
        if q.capped { 1.0 } else { 0.0 },
    );
    gauge(
        "hookd_endpoints_circuit_open",
        "Endpoints whose circuit is open on this node.",
        engine.open_circuits as f64,
    );
    gauge(
        "hookd_attempts_in_flight",
        "Requests this node is sending now.",
        engine.in_flight as f64,
    );
    gauge(
        "hookd_listen_sessions",
        "hookd listen sessions connected to this node.",
        state.relay.len() as f64,
    );
    Ok(out)
}
