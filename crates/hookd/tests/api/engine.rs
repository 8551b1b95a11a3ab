//! The delivery engine's policies end to end: operational webhooks, auto-disable, throttling,
//! the circuit breaker and isolation from hanging endpoints.

use std::time::Duration;

use axum::http::StatusCode;
use hookd_signing::{verify, Secret, WebhookHeaders};
use serde_json::{json, Value};

use crate::helpers::{Recorded, TestApp};

const OPS_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// The operator's endpoint is this receiver path.
const OPS_PATH: &str = "/status/299";

async fn with_operator(change: impl FnOnce(&mut hookd::Config)) -> TestApp {
    TestApp::spawn_with_receiver(|c, r| {
        c.operational_webhook.url = r.url(OPS_PATH);
        c.operational_webhook.secret = OPS_SECRET.into();
        change(c);
    })
    .await
}

/// The operational webhooks received so far, each verified with the operator's secret.
fn operational(app: &TestApp) -> Vec<Value> {
    app.receiver
        .requests()
        .iter()
        .filter(|r| r.path == OPS_PATH)
        .map(|r: &Recorded| {
            let h = WebhookHeaders {
                id: r.header("webhook-id").unwrap().into(),
                timestamp: r.header("webhook-timestamp").unwrap().into(),
                signature: r.header("webhook-signature").unwrap().into(),
            };
            let ts: i64 = h.timestamp.parse().unwrap();
            verify(&Secret::parse(OPS_SECRET).unwrap(), &h, &r.body, ts, 300).expect("operational webhooks are signed");
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect()
}

async fn wait_operational(app: &TestApp, kind: &str) -> Value {
    wait_operational_n(app, kind, 1).await.swap_remove(0)
}

/// Waits until `n` operational events of `kind` arrived; returns them. Each is a message of
/// its own, so they may arrive in any order.
async fn wait_operational_n(app: &TestApp, kind: &str, n: usize) -> Vec<Value> {
    let got = app
        .receiver
        .wait_for(n, |r| {
            r.path == OPS_PATH && String::from_utf8_lossy(&r.body).contains(&format!("\"{kind}\""))
        })
        .await;
    got.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
}

#[tokio::test]
async fn endpoint_changes_are_reported_to_the_operator_signed() {
    let app = with_operator(|_| {}).await;
    let created = app.create_app("ws_ops").await;
    let ep = app.create_endpoint("ws_ops", "/ok", json!({"uid": "main"})).await;
    let event = wait_operational(&app, "endpoint.created").await;
    assert_eq!(
        event,
        json!({"type": "endpoint.created", "data": {
            "appId": created["id"], "appUid": "ws_ops", "endpointId": ep["id"], "endpointUid": "main"}})
    );
    app.call(
        "PATCH",
        "/api/v1/app/ws_ops/endpoint/main",
        Some(json!({"disabled": true})),
    )
    .await;
    wait_operational(&app, "endpoint.disabled").await;
    app.call(
        "PATCH",
        "/api/v1/app/ws_ops/endpoint/main",
        Some(json!({"disabled": false})),
    )
    .await;
    wait_operational(&app, "endpoint.enabled").await;
    app.call("DELETE", "/api/v1/app/ws_ops/endpoint/main", None).await;
    wait_operational(&app, "endpoint.deleted").await;
    // The two updates (disabled, enabled) are messages of their own, delivered in any order
    // against the deletion's.
    wait_operational_n(&app, "endpoint.updated", 2).await;
    let kinds: Vec<String> = operational(&app)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "endpoint.updated").count(),
        2,
        "{kinds:?}"
    );
    // The operator's own endpoint does not report about itself.
    assert_eq!(
        kinds.iter().filter(|k| *k == "endpoint.created").count(),
        1,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn failing_exhausted_and_recovered_are_reported_with_the_last_attempt() {
    let app = with_operator(|c| c.delivery.retry_schedule = vec![1, 1, 1, 1, 1]).await;
    app.create_app("ws_fail").await;
    let ep = app
        .create_endpoint("ws_fail", "/status/500", json!({"uid": "ep"}))
        .await;
    let doomed = app
        .send_message(
            "ws_fail",
            json!({"eventType": "a.b", "eventId": "evt_doomed", "payload": {}}),
        )
        .await;
    let failed = |n: usize| app.receiver.wait_for(n, |r| r.path == "/status/500");
    failed(1).await;
    for n in 2..=4 {
        app.advance(Duration::from_secs(2));
        failed(n).await;
    }
    let failing = wait_operational(&app, "message.attempt.failing").await;
    assert_eq!(failing["data"]["msgId"], doomed["id"]);
    assert_eq!(failing["data"]["msgEventId"], "evt_doomed");
    assert_eq!(failing["data"]["endpointId"], ep["id"]);
    assert_eq!(failing["data"]["appUid"], "ws_fail");
    assert_eq!(failing["data"]["lastAttempt"]["responseStatusCode"], 500);
    assert!(failing["data"]["lastAttempt"]["id"]
        .as_str()
        .unwrap()
        .starts_with("atmpt_"));
    // The endpoint comes back before the fifth attempt: recovered.
    app.call(
        "PATCH",
        "/api/v1/app/ws_fail/endpoint/ep",
        Some(json!({"url": app.receiver.url("/ok")})),
    )
    .await;
    app.advance(Duration::from_secs(2));
    let recovered = wait_operational(&app, "message.attempt.recovered").await;
    assert_eq!(recovered["data"]["lastAttempt"]["responseStatusCode"], 200);

    // A message that fails to the end is exhausted.
    app.call(
        "PATCH",
        "/api/v1/app/ws_fail/endpoint/ep",
        Some(json!({"url": app.receiver.url("/status/500")})),
    )
    .await;
    app.send_message(
        "ws_fail",
        json!({"eventType": "a.b", "eventId": "evt_lost", "payload": {}}),
    )
    .await;
    failed(5).await;
    for n in 6..=10 {
        app.advance(Duration::from_secs(2));
        failed(n).await;
    }
    let exhausted = wait_operational(&app, "message.attempt.exhausted").await;
    assert_eq!(exhausted["data"]["msgEventId"], "evt_lost");
}

#[tokio::test]
async fn an_endpoint_that_only_exhausts_for_longer_than_the_threshold_is_disabled() {
    let app = with_operator(|c| {
        c.delivery.retry_schedule = vec![];
        c.delivery.disable_after_secs = 3_600;
    })
    .await;
    app.create_app("ws_auto").await;
    app.create_endpoint("ws_auto", "/status/503", json!({"uid": "ep"}))
        .await;
    let first = app
        .send_message("ws_auto", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_delivery_status("ws_auto", first["id"].as_str().unwrap(), "fail")
        .await;
    let (_, ep) = app.get("/api/v1/app/ws_auto/endpoint/ep").await;
    assert_eq!(
        ep["disabled"], false,
        "one exhaustion starts the clock, it does not disable"
    );
    app.clock.advance(Duration::from_secs(2 * 3_600));
    let second = app
        .send_message("ws_auto", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_delivery_status("ws_auto", second["id"].as_str().unwrap(), "fail")
        .await;
    let event = wait_operational(&app, "endpoint.disabled").await;
    assert!(event["data"]["failSince"].is_string(), "{event}");
    let (_, ep) = app.get("/api/v1/app/ws_auto/endpoint/ep").await;
    assert_eq!(ep["disabled"], true);
}

#[tokio::test]
async fn a_success_resets_the_auto_disable_clock() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.retry_schedule = vec![];
        c.delivery.disable_after_secs = 3_600;
    })
    .await;
    app.create_app("ws_reset").await;
    app.create_endpoint("ws_reset", "/status/503", json!({"uid": "ep"}))
        .await;
    app.send_message("ws_reset", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(1).await;
    app.call(
        "PATCH",
        "/api/v1/app/ws_reset/endpoint/ep",
        Some(json!({"url": app.receiver.url("/ok")})),
    )
    .await;
    app.send_message("ws_reset", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(2).await;
    app.call(
        "PATCH",
        "/api/v1/app/ws_reset/endpoint/ep",
        Some(json!({"url": app.receiver.url("/status/503")})),
    )
    .await;
    app.clock.advance(Duration::from_secs(2 * 3_600));
    app.send_message("ws_reset", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(3).await;
    let (_, ep) = app.get("/api/v1/app/ws_reset/endpoint/ep").await;
    assert_eq!(ep["disabled"], false, "the run of failures restarted after the success");
}

#[tokio::test]
async fn throttle_rate_spaces_deliveries_to_an_endpoint() {
    let app = TestApp::spawn().await;
    app.create_app("ws_slowly").await;
    app.create_endpoint("ws_slowly", "/ok", json!({"throttleRate": 5}))
        .await;
    for i in 0..6 {
        app.send_message("ws_slowly", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
    }
    let got = app.receiver.wait_for(6, |r| r.path == "/ok").await;
    let first = got.iter().map(|r| r.at).min().unwrap();
    let last = got.iter().map(|r| r.at).max().unwrap();
    // Five gaps of 1/5 s each: the burst of six cannot arrive faster than that.
    assert!(
        last - first >= Duration::from_millis(950),
        "six deliveries at 5/s took only {:?}",
        last - first
    );
}

#[tokio::test]
async fn an_open_circuit_defers_deliveries_without_spending_attempts_and_probes_once() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.retry_schedule = vec![1; 10];
        c.delivery.circuit_breaker_threshold = 3;
        c.delivery.circuit_breaker_cooldown_secs = 30;
    })
    .await;
    app.create_app("ws_cb").await;
    app.create_endpoint("ws_cb", "/status/500", json!({"uid": "ep"})).await;
    for i in 0..3 {
        app.send_message("ws_cb", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
    }
    app.wait_recorded(3).await;
    // The circuit is open: a new message is deferred, not attempted.
    let held = app
        .send_message("ws_cb", json!({"eventType": "a.b", "payload": {"i": 3}}))
        .await;
    let app = &app;
    let barrier = |n: usize| async move {
        let path = format!("/status/20{n}");
        app.create_app(&format!("ws_barrier_{n}")).await;
        app.create_endpoint(&format!("ws_barrier_{n}"), &path, json!({})).await;
        app.send_message(&format!("ws_barrier_{n}"), json!({"eventType": "a.b", "payload": {}}))
            .await;
        app.receiver.wait_for(1, |r| r.path == path).await;
    };
    app.advance(Duration::from_secs(2)); // the three retries come due, the circuit is still open
    barrier(1).await;
    let failing = || {
        app.receiver
            .requests()
            .iter()
            .filter(|r| r.path == "/status/500")
            .count()
    };
    assert_eq!(failing(), 3, "nothing is sent while the circuit is open");
    let (_, dest) = app
        .get(&format!(
            "/api/v1/app/ws_cb/msg/{}/endpoint",
            held["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        dest["data"][0]["statusText"], "pending",
        "the deferred delivery spent no attempt"
    );

    app.advance(Duration::from_secs(30)); // cooldown over: exactly one probe
    app.receiver.wait_for(4, |r| r.path == "/status/500").await;
    barrier(2).await;
    assert_eq!(failing(), 4, "one probe, the rest still deferred after it failed");
}

/// Publishes `n` messages to `app_uid` (16 at a time); returns their ids.
async fn burst(app: &TestApp, app_uid: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
        let sent = futures::future::join_all(
            chunk
                .iter()
                .map(|i| app.send_message(app_uid, json!({"eventType": "a.b", "payload": {"i": i}}))),
        )
        .await;
        ids.extend(sent.iter().map(|m| m["id"].as_str().unwrap().to_string()));
    }
    ids
}

/// The neighbours: a tenant throttled to 1/s gets a burst three times the whole
/// in-memory backlog, another tenant's endpoint hangs for 10 s per request under a burst of its
/// own; then a healthy tenant publishes at 50/s. Its deliveries must not queue behind theirs:
/// p99 accept-to-delivery stays under a second (on SQLite, and on PostgreSQL when the suite
/// runs there).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttled_and_a_hanging_tenant_with_bursts_beyond_the_backlog_do_not_delay_a_healthy_one() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.backlog = 200;
        c.delivery.endpoint_backlog = 50;
        c.delivery.app_backlog = 100;
        c.delivery.circuit_breaker_threshold = 0;
    })
    .await;
    for uid in ["ws_throttled", "ws_hanging", "ws_healthy"] {
        app.create_app(uid).await;
    }
    app.create_endpoint("ws_throttled", "/ok", json!({"throttleRate": 1}))
        .await;
    app.create_endpoint("ws_hanging", "/slow/10000", json!({})).await;
    app.create_endpoint("ws_healthy", "/status/204", json!({})).await;
    let throttled = burst(&app, "ws_throttled", 600).await;
    burst(&app, "ws_hanging", 300).await;

    let mut accepted = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..100 {
        tick.tick().await;
        let m = app
            .send_message("ws_healthy", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
        accepted.insert(m["id"].as_str().unwrap().to_string(), std::time::Instant::now());
    }
    let arrived = app.receiver.wait_for(100, |r| r.path == "/status/204").await;
    let mut latencies: Vec<Duration> = arrived
        .iter()
        .map(|r| {
            r.at.saturating_duration_since(accepted[r.header("webhook-id").unwrap()])
        })
        .collect();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    println!("healthy tenant beside a throttled and a hanging burst: p99 {p99:?}");
    assert!(
        p99 < Duration::from_secs(1),
        "healthy p99 {p99:?} (max {:?})",
        latencies.last()
    );
    // The throttled tenant was not starved either: it kept receiving at its own pace.
    let throttled: std::collections::HashSet<String> = throttled.into_iter().collect();
    let paced = app
        .receiver
        .requests()
        .iter()
        .filter(|r| r.path == "/ok" && r.header("webhook-id").is_some_and(|id| throttled.contains(id)))
        .count();
    assert!(paced >= 2, "the throttled endpoint still receives at 1/s: {paced}");
}

#[tokio::test]
async fn healthy_endpoints_flow_while_others_hang_for_ten_seconds() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.max_concurrency = 8;
        c.delivery.endpoint_concurrency = 2;
        c.delivery.circuit_breaker_threshold = 0;
    })
    .await;
    app.create_app("ws_mixed").await;
    app.create_app("ws_other").await;
    app.create_endpoint("ws_mixed", "/slow/10000", json!({})).await;
    app.create_endpoint("ws_other", "/slow/10000", json!({})).await;
    app.create_endpoint("ws_mixed", "/ok", json!({})).await;
    for i in 0..30 {
        app.send_message("ws_mixed", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
        app.send_message("ws_other", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
    }
    app.receiver.wait_for(30, |r| r.path == "/ok").await;
    let hung = app
        .receiver
        .requests()
        .iter()
        .filter(|r| r.path == "/slow/10000")
        .count();
    assert_eq!(
        hung, 0,
        "all 30 healthy deliveries arrived before any hanging request finished"
    );
    let (status, _) = app.get("/api/v1/app/ws_mixed/msg?limit=1").await;
    assert_eq!(status, StatusCode::OK, "the API stays responsive too");
}

async fn next_gap(app: &TestApp, app_uid: &str, msg_id: &str) -> f64 {
    let (_, dest) = app.get(&format!("/api/v1/app/{app_uid}/msg/{msg_id}/endpoint")).await;
    let (_, attempts) = app.get(&format!("/api/v1/app/{app_uid}/attempt/msg/{msg_id}")).await;
    let next = chrono::DateTime::parse_from_rfc3339(dest["data"][0]["nextAttempt"].as_str().unwrap()).unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(attempts["data"][0]["timestamp"].as_str().unwrap()).unwrap();
    (next - last).num_milliseconds() as f64 / 1000.0
}

#[tokio::test]
async fn retry_after_stretches_the_schedule_within_bounds_and_429_waits_a_minute() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![10]).await;
    app.create_app("ws_ra").await;
    app.create_endpoint("ws_ra", "/retry-after/503/15", json!({})).await;
    let m = app
        .send_message("ws_ra", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(1).await;
    let gap = next_gap(&app, "ws_ra", m["id"].as_str().unwrap()).await;
    assert!((12.0..=18.0).contains(&gap), "Retry-After 15 s, ±20 %: {gap}");

    app.create_app("ws_ra2").await;
    app.create_endpoint("ws_ra2", "/retry-after/503/3600", json!({})).await;
    let m = app
        .send_message("ws_ra2", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(2).await;
    let gap = next_gap(&app, "ws_ra2", m["id"].as_str().unwrap()).await;
    assert!((16.0..=24.0).contains(&gap), "clamped to twice the schedule: {gap}");

    app.create_app("ws_429").await;
    app.create_endpoint("ws_429", "/retry-after/429/1", json!({})).await;
    let m = app
        .send_message("ws_429", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(3).await;
    let gap = next_gap(&app, "ws_429", m["id"].as_str().unwrap()).await;
    assert!(gap >= 60.0, "a 429 waits at least a minute: {gap}");
}

#[tokio::test]
async fn the_default_28_hour_schedule_runs_to_exhaustion_on_a_manual_clock() {
    let app = TestApp::spawn_with(|c| c.delivery.circuit_breaker_threshold = 0).await;
    app.create_app("ws_long").await;
    app.create_endpoint("ws_long", "/status/502", json!({})).await;
    let m = app
        .send_message("ws_long", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let failed = |n: usize| app.receiver.wait_for(n, |r| r.path == "/status/502");
    failed(1).await;
    for (n, secs) in [5u64, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
        .into_iter()
        .enumerate()
    {
        // Hours pass only once the attempt before is recorded: a jump past its lease while it
        // is in flight would hand the delivery to a new claim and fence its record out.
        app.wait_recorded(n as u64 + 1).await;
        app.advance(Duration::from_secs(secs * 6 / 5 + 1)); // past the +20 % jitter
        failed(n + 2).await;
    }
    app.wait_recorded(8).await;
    let (_, dest) = app
        .get(&format!(
            "/api/v1/app/ws_long/msg/{}/endpoint",
            m["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (
            dest["data"][0]["statusText"].clone(),
            dest["data"][0]["nextAttempt"].clone()
        ),
        (json!("fail"), json!(null))
    );
    let numbers: Vec<String> = app
        .receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-attempt").unwrap().to_string())
        .collect();
    assert_eq!(numbers, (1..=8).map(|n| n.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_reply_with_nul_and_invalid_utf8_is_recorded_escaped_and_holds_up_nothing() {
    let app = TestApp::spawn().await;
    app.create_app("ws_garbage").await;
    app.create_endpoint("ws_garbage", "/garbage", json!({"uid": "garbage"}))
        .await;
    app.create_endpoint("ws_garbage", "/ok", json!({"uid": "fine"})).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = app
            .send_message("ws_garbage", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    app.wait_recorded(10).await;
    for id in &ids {
        let (_, list) = app
            .get(&format!("/api/v1/app/ws_garbage/attempt/msg/{id}?endpoint_id=garbage"))
            .await;
        let attempt = &list["data"][0];
        assert_eq!(attempt["response"], "ok\\x00bad\\xff", "{attempt}");
        assert_eq!(attempt["responseStatusCode"], 200);
        let (_, deliveries) = app.get(&format!("/api/v1/app/ws_garbage/msg/{id}/endpoint")).await;
        let statuses: Vec<&Value> = deliveries["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["status"])
            .collect();
        assert_eq!(
            statuses,
            [&json!(0), &json!(0)],
            "both deliveries finished: {deliveries}"
        );
    }
    let stored = app
        .store
        .list_attempts(
            &hookd_store::AttemptFilter {
                app_id: app.get("/api/v1/app/ws_garbage").await.1["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                ..Default::default()
            },
            &hookd_store::PageRequest::first(50, false),
        )
        .await
        .unwrap();
    let odd = stored
        .items
        .iter()
        .find(|a| a.response.starts_with("ok"))
        .and_then(|a| a.response_headers.iter().find(|(k, _)| k == "x-odd"))
        .map(|(_, v)| v.clone());
    assert_eq!(
        odd.as_deref(),
        Some("caf\\xe9"),
        "header bytes that are not UTF-8 are escaped too"
    );
    // Nothing is stuck: the node stops at once.
    let started = std::time::Instant::now();
    app.stop().await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_gigantic_response_is_read_only_up_to_the_cap() {
    let app = TestApp::spawn().await;
    app.create_app("ws_huge").await;
    app.create_endpoint("ws_huge", "/endless", json!({})).await;
    let m = app
        .send_message("ws_huge", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(1).await;
    let (_, list) = app
        .get(&format!(
            "/api/v1/app/ws_huge/attempt/msg/{}",
            m["id"].as_str().unwrap()
        ))
        .await;
    let response = list["data"][0]["response"].as_str().unwrap();
    assert_eq!(response.len(), 20 * 1024);
    assert_eq!(list["data"][0]["responseStatusCode"], 200);
}

#[tokio::test]
async fn a_410_reports_endpoint_disabled_to_the_operator() {
    let app = with_operator(|_| {}).await;
    let created = app.create_app("ws_gone_ops").await;
    let ep = app
        .create_endpoint("ws_gone_ops", "/status/410", json!({"uid": "gone"}))
        .await;
    app.send_message("ws_gone_ops", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let event = wait_operational(&app, "endpoint.disabled").await;
    assert_eq!(event["data"]["appId"], created["id"]);
    assert_eq!(event["data"]["endpointId"], ep["id"]);
    assert_eq!(event["data"]["endpointUid"], "gone");
}

#[tokio::test]
async fn a_fifo_destinations_exhausted_message_is_reported_to_the_operator() {
    let app = with_operator(|c| c.delivery.retry_schedule = vec![]).await;
    app.create_app("ws_fifo").await;
    let (status, dest) = app
        .post(
            "/api/v1/app/ws_fifo/destination",
            json!({"type": "fifoEndpoint", "uid": "ordered", "config": {"url": app.receiver.url("/status/500")}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{dest}");
    let created = wait_operational(&app, "endpoint.created").await;
    assert_eq!(created["data"]["endpointId"], dest["id"]);
    let msg = app
        .send_message(
            "ws_fifo",
            json!({"eventType": "a.b", "eventId": "evt_fifo", "payload": {}}),
        )
        .await;
    let exhausted = wait_operational(&app, "message.attempt.exhausted").await;
    assert_eq!(exhausted["data"]["msgId"], msg["id"]);
    assert_eq!(exhausted["data"]["msgEventId"], "evt_fifo");
    assert_eq!(exhausted["data"]["endpointId"], dest["id"]);
    assert_eq!(exhausted["data"]["lastAttempt"]["responseStatusCode"], 500);
}

#[tokio::test]
async fn a_fifo_destination_that_only_exhausts_for_longer_than_the_threshold_is_disabled() {
    let app = with_operator(|c| {
        c.delivery.retry_schedule = vec![];
        c.delivery.disable_after_secs = 3_600;
    })
    .await;
    app.create_app("ws_fifo_auto").await;
    let (status, dest) = app
        .post(
            "/api/v1/app/ws_fifo_auto/destination",
            json!({"type": "fifoEndpoint", "uid": "ordered", "config": {"url": app.receiver.url("/status/503")}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{dest}");
    let first = app
        .send_message("ws_fifo_auto", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_delivery_status("ws_fifo_auto", first["id"].as_str().unwrap(), "fail")
        .await;
    let (_, d) = app.get("/api/v1/app/ws_fifo_auto/destination/ordered").await;
    assert_eq!(
        d["status"], "enabled",
        "one exhaustion starts the clock, it does not disable"
    );
    app.clock.advance(Duration::from_secs(2 * 3_600));
    let second = app
        .send_message("ws_fifo_auto", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_delivery_status("ws_fifo_auto", second["id"].as_str().unwrap(), "fail")
        .await;
    let event = wait_operational(&app, "endpoint.disabled").await;
    assert_eq!(event["data"]["endpointId"], dest["id"]);
    let (_, d) = app.get("/api/v1/app/ws_fifo_auto/destination/ordered").await;
    assert_eq!(d["status"], "disabled", "{d}");
}

/// An application whose deliveries wait in the database because its share of memory was full
/// sends its backlog oldest first: a message published once its share has room again, while
/// older ones still wait, goes out after them rather than straight from memory ahead of them.
#[tokio::test]
async fn a_backlogged_applications_new_message_waits_behind_its_older_ones() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.app_backlog = 4;
        // Only releases wake the poller here: no periodic claim takes the room first.
        c.delivery.poll_interval_ms = 60_000;
        c.delivery.circuit_breaker_threshold = 0;
    })
    .await;
    app.create_app("ws_order").await;
    // Four deliveries of one message fill the application's share; one of them finishes
    // early, leaving room for one while the other three hang.
    for path in ["/slow/300", "/slow/3000", "/slow/3000", "/slow/3000"] {
        app.create_endpoint("ws_order", path, json!({"channels": ["slow"]}))
            .await;
    }
    app.create_endpoint("ws_order", "/status/204", json!({"channels": ["fast"]}))
        .await;
    let send = |channel: &'static str, i: usize| {
        let app = &app;
        async move {
            // Each message due a moment after the one before, as on a real clock (this one is
            // frozen), so that "oldest first" has an order to keep.
            app.clock.advance(Duration::from_millis(1));
            let m = app
                .send_message(
                    "ws_order",
                    json!({"eventType": "a.b", "payload": {"i": i}, "channels": [channel]}),
                )
                .await;
            m["id"].as_str().unwrap().to_string()
        }
    };
    send("slow", 0).await;
    // The share is full: these wait in the database.
    let older = [send("fast", 1).await, send("fast", 2).await];
    app.receiver.wait_for(1, |r| r.path == "/slow/300").await;
    // Room for one again, with the two older messages still waiting.
    let newer = send("fast", 3).await;
    let hung = app.receiver.wait_for(3, |r| r.path == "/slow/3000").await;
    let freed = hung.iter().map(|r| r.at).min().unwrap();
    let arrived = app.receiver.wait_for(3, |r| r.path == "/status/204").await;
    let at = |id: &str| {
        arrived
            .iter()
            .find(|r| r.header("webhook-id") == Some(id))
            .map(|r| r.at)
            .unwrap()
    };
    // An older message may go out as soon as its share has room (PostgreSQL's notifications
    // wake a claim for it); the new one must not go out ahead of any that still waits.
    let newer_at = at(&newer);
    for id in &older {
        assert!(
            at(id) < newer_at || newer_at >= freed,
            "the new message went out {:?} before the share was freed, ahead of {id}",
            freed.saturating_duration_since(newer_at)
        );
    }
}

/// The nice value in a thread's `/proc/…/stat` line: the nineteenth field, counted past the
/// name (which may hold spaces) from the third (the state) on.
#[cfg(target_os = "linux")]
fn nice_in(stat: &str) -> i32 {
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(19 - 3).unwrap().parse().unwrap()
}

/// The name and nice value of each of this process's threads.
#[cfg(target_os = "linux")]
fn threads() -> Vec<(String, i32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("stat")),
        ) else {
            continue; // the thread ended while being read
        };
        found.push((comm.trim_end().to_string(), nice_in(&stat)));
    }
    found
}

/// On SQLite the engine runs on threads of its own (`hookd-engine`) at the configured distance
/// below the API's priority, so a burst's publishes are acknowledged ahead of its deliveries;
/// the API's threads (here the test's own) keep theirs. On PostgreSQL it shares the API's
/// threads, which drive the database connections both use.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_engine_runs_on_threads_of_its_own_below_the_apis_priority_on_sqlite() {
    let own = || nice_in(&std::fs::read_to_string("/proc/thread-self/stat").unwrap());
    let before = own();
    // No other test asks for 11, so threads at that value are this server's.
    let app = TestApp::spawn_with(|c| c.delivery.engine_nice = 11).await;
    let postgres = std::env::var("HOOKD_TEST_BACKEND").as_deref() == Ok("postgres");
    app.create_app("ws_nice").await;
    app.create_endpoint("ws_nice", "/ok", json!({})).await;
    app.send_message("ws_nice", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.receiver.wait_for(1, |r| r.path == "/ok").await;
    let engine: Vec<i32> = threads()
        .into_iter()
        .filter(|(name, _)| name == "hookd-engine")
        .map(|(_, nice)| nice)
        .collect();
    let lowered = (before + 11).min(19);
    if postgres {
        assert!(
            !engine.contains(&lowered),
            "on PostgreSQL no engine thread of its own: {engine:?}"
        );
    } else {
        assert!(
            engine.contains(&lowered),
            "an engine thread runs at nice {lowered}: {engine:?}"
        );
    }
    assert_eq!(own(), before, "the API's thread keeps its priority");
    app.stop().await;
}
