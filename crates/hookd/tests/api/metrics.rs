//! `/metrics`: scraped and parsed as Prometheus text.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

/// `name{labels}` → value, for every sample line.
pub(crate) fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {l}"));
            let value = value.parse::<f64>().unwrap_or_else(|_| panic!("bad value in {l}"));
            (series.to_string(), value)
        })
        .collect()
}

pub(crate) async fn scrape(url: &str) -> (StatusCode, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_requests_messages_and_attempts_and_report_the_queue() {
    let app = TestApp::spawn().await;
    let created = app.create_app("ws_m").await;
    app.create_endpoint("ws_m", "/ok", json!({})).await;
    let failing = app.create_endpoint("ws_m", "/status/500", json!({})).await;
    for i in 0..3 {
        app.send_message("ws_m", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
    }
    app.wait_recorded(6).await;

    let (status, text) = scrape(&format!("{}/metrics", app.base)).await;
    assert_eq!(status, StatusCode::OK, "no token needed");
    let m = parse(&text);
    let get = |series: &str| {
        m.get(series)
            .copied()
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    assert!(get(r#"hookd_api_requests_total{route="/api/v1/app/{app_id}/msg",method="POST",status="2xx"}"#) >= 3.0);
    assert!(
        get(r#"hookd_api_requests_total{route="/api/v1/app/{app_id}/endpoint",method="POST",status="2xx"}"#) >= 2.0
    );
    assert!(get(r#"hookd_api_request_duration_seconds_count{route="/api/v1/app/{app_id}/msg",method="POST"}"#) >= 3.0);
    assert!(get(r#"hookd_messages_ingested_total{environment="live"}"#) >= 3.0);
    assert!(get(r#"hookd_attempts_total{outcome="success"}"#) >= 3.0);
    assert!(get(r#"hookd_attempts_total{outcome="http_5xx"}"#) >= 3.0);
    assert!(get("hookd_attempt_duration_seconds_count") >= 6.0);
    assert!(get(r#"hookd_attempt_duration_seconds_bucket{le="+Inf"}"#) >= 6.0);
    assert!(get(r#"hookd_deliveries_finished_total{status="success"}"#) >= 3.0);
    // SQLite's single writer times each batch it runs (PostgreSQL has no such thread).
    if std::env::var("HOOKD_TEST_BACKEND").as_deref() != Ok("postgres") {
        assert!(get("hookd_sqlite_write_batch_duration_seconds_count") >= 1.0);
        assert!(get("hookd_sqlite_write_batch_duration_seconds_sum") > 0.0);
        assert!(get(r#"hookd_sqlite_write_batch_duration_seconds_bucket{le="+Inf"}"#) >= 1.0);
    }
    // Each publish found room and handed its two deliveries straight to the engine.
    assert!(get(r#"hookd_deliveries_dispatched_total{path="handed_over"}"#) >= 6.0);

    // This node's queue: three retries wait (the 500s); nothing is due, parked or in flight.
    assert_eq!(get("hookd_deliveries_scheduled"), 3.0);
    assert_eq!(get("hookd_deliveries_due"), 0.0);
    assert_eq!(get("hookd_deliveries_parked"), 0.0);
    assert_eq!(get("hookd_queue_lag_seconds"), 0.0);
    assert_eq!(get("hookd_attempts_in_flight"), 0.0);
    assert_eq!(get("hookd_endpoints_disabled"), 0.0);
    assert_eq!(
        get("hookd_queue_counts_capped"),
        0.0,
        "a short queue is counted in full"
    );
    assert_eq!(get("hookd_endpoints_circuit_open"), 0.0);
    assert_eq!(get("hookd_listen_sessions"), 0.0);

    // Disable the failing endpoint; when its retries come due they are parked.
    let ep_id = failing["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/app/ws_m/endpoint/{ep_id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.advance(std::time::Duration::from_secs(60));
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(&format!("{}/metrics", app.base)).await.1;
        if parse(&text).get("hookd_deliveries_parked") == Some(&3.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // The queue is counted at most once per QUEUE_STATS_TTL (of hookd's clock).
        app.clock.advance(hookd::state::QUEUE_STATS_TTL);
    }
    let m = parse(&text);
    assert_eq!(m.get("hookd_deliveries_parked"), Some(&3.0), "{text}");
    assert_eq!(m.get("hookd_deliveries_scheduled"), Some(&0.0));
    assert_eq!(m.get("hookd_endpoints_disabled"), Some(&1.0));
    // The three retries came due and were claimed from the database (then parked).
    assert!(
        m.get(r#"hookd_deliveries_dispatched_total{path="claimed"}"#)
            .is_some_and(|n| *n >= 3.0),
        "{text}"
    );

    // Labels never carry ids.
    let (_, msgs) = app.get("/api/v1/app/ws_m/msg").await;
    let mut ids: Vec<String> = vec![created["id"].as_str().unwrap().into(), ep_id.into(), "ws_m".into()];
    ids.extend(
        msgs["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string()),
    );
    for id in &ids {
        assert!(
            !text.lines().any(|l| !l.starts_with('#') && l.contains(id.as_str())),
            "an id ({id}) appears in a label"
        );
    }

    // A failed request is counted under its status class; an unknown route under no template.
    let (status, _) = app.get("/api/v1/app/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, text) = scrape(&format!("{}/metrics", app.base)).await;
    assert!(
        parse(&text)
            .get(r#"hookd_api_requests_total{route="/api/v1/app/{app_id}",method="GET",status="4xx"}"#)
            .is_some_and(|v| *v >= 1.0),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_can_live_on_their_own_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::spawn_with(|c| c.metrics.listen = Some(format!("127.0.0.1:{port}").parse().unwrap())).await;
    let (status, _) = scrape(&format!("{}/metrics", app.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not on the API listener");
    let (status, text) = scrape(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("hookd_deliveries_due "), "{text}");

    let off = TestApp::spawn_with(|c| c.metrics.enabled = false).await;
    let (status, _) = scrape(&format!("{}/metrics", off.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_ids_of_each_attempt_as_fields() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let receiver = crate::helpers::Receiver::start().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--log-format", "json", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("HOOKD_DELIVERY__ALLOW_HTTP", "true")
        .env("HOOKD_DELIVERY__ALLOWED_SUBNETS", "127.0.0.0/8")
        .env("RUST_LOG", "hookd=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, logs) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = String::new();
    let base = loop {
        let line = out.next().unwrap().unwrap();
        if line.starts_with("hk_") {
            token = line;
        } else if let Some(addr) = line.strip_prefix("hookd: listening on ") {
            break addr.to_string();
        }
    };
    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    post("/api/v1/app", json!({"name": "L", "uid": "ws_log"}))
        .await
        .unwrap();
    let ep: serde_json::Value = post("/api/v1/app/ws_log/endpoint", json!({"url": receiver.url("/ok")}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let msg: serde_json::Value = post("/api/v1/app/ws_log/msg", json!({"eventType": "a.b", "payload": {}}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    receiver.wait_for(1, |_| true).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = logs.recv_timeout(left).expect("an attempt log line");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            panic!("not a JSON log line: {line}");
        };
        if v["fields"]["message"] == json!("attempt made") {
            break v;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let f = &found["fields"];
    assert_eq!(f["msg"], msg["id"]);
    assert_eq!(f["endpoint"], ep["id"]);
    assert!(f["app"].as_str().unwrap().starts_with("app_"));
    assert!(f["attempt"].as_str().unwrap().starts_with("atmpt_"));
    assert_eq!(f["status_code"], json!(200));
    assert!(!found.to_string().contains(&token), "tokens are never logged");
}

#[tokio::test]
async fn metrics_token_is_required_when_configured() {
    let app = TestApp::spawn_with(|c| c.metrics.token = "scrape-s3cret".into()).await;
    let url = format!("{}/metrics", app.base);
    let (status, body) = scrape(&url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.contains("hookd_"), "nothing leaks without the token");
    let wrong = app.client.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app.client.get(&url).bearer_auth("scrape-s3cret").send().await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.unwrap().contains("hookd_deliveries_due"));
}
