//! Abuse limits: per-token rate limit, request timeout, body size, list and header counts.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after_and_others_are_not_slowed() {
    let app = TestApp::spawn_with(|c| {
        c.api.rate_limit_per_sec = 2;
        c.api.rate_limit_burst = 5;
    })
    .await;
    let other = app.new_token().await;
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..8 {
        let resp = app
            .client
            .get(format!("{}/api/v1/app", app.base))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status().as_u16() == 429 && refused.is_none() {
            let retry_after = resp.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
            let body: serde_json::Value = resp.json().await.unwrap();
            refused = Some((retry_after, body));
        }
    }
    assert_eq!(&statuses[..5], &[200; 5], "the burst passes: {statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let (retry_after, body) = refused.unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(body["code"], json!("rate_limit_exceeded"));
    assert!(body["detail"].is_string());

    // Another token is not affected by the first one's flood.
    for _ in 0..5 {
        assert_eq!(app.call_as(&other, "GET", "/api/v1/app", None).await.0, StatusCode::OK);
    }
    // The limited token recovers once its rate allows.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.get("/api/v1/app").await.0, StatusCode::OK);
    // Wrong tokens are refused before they count against anyone.
    assert_eq!(
        app.call_as("hk_live_nope", "GET", "/api/v1/app", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_gets_503() {
    let app = TestApp::spawn_with(|c| c.api.request_timeout_secs = 1).await;
    // A body that never finishes arriving: the timeout covers reading it.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/app HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"name\": \"slow",
        app.token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut answer))
        .await
        .expect("an answer before the client gives up")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""code":"timeout""#), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(app.get("/api/v1/app").await.0, StatusCode::OK, "the server carries on");
}

#[tokio::test]
async fn lists_and_header_counts_are_bounded() {
    let app = TestApp::spawn().await;
    app.create_app("ws_lim").await;
    let headers: serde_json::Map<String, serde_json::Value> =
        (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    let (status, body) = app
        .post(
            "/api/v1/app/ws_lim/endpoint",
            json!({"url": app.receiver.url("/ok"), "headers": headers}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "headers"]));

    let types: Vec<String> = (0..101).map(|i| format!("t.e{i}")).collect();
    let (status, body) = app
        .post(
            "/api/v1/app/ws_lim/endpoint",
            json!({"url": app.receiver.url("/ok"), "eventTypes": types}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "eventTypes"]));

    let metadata: serde_json::Map<String, serde_json::Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (status, body) = app
        .post("/api/v1/app", json!({"name": "M", "metadata": metadata}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, body) = app.get("/api/v1/app?limit=251").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
