//! `GET /metrics`: the counters and histograms of [`crate::metrics`] in the Prometheus text
//! format, followed by gauges read at scrape time: the queue gauges from the database (the same
//! on every node sharing it), the engine gauges from this node's dispatcher.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::metrics::handle;
use crate::state::AppState;

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
