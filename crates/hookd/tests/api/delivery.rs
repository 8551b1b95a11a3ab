//! The dispatcher end to end: signing, exact bytes, filters, retries, exhaustion, isolation.

use std::time::Duration;

use axum::http::StatusCode;
use hookd_signing::{verify, Secret, WebhookHeaders};
use serde_json::{json, Value};

use crate::helpers::{Recorded, TestApp};

fn webhook_headers(r: &Recorded) -> WebhookHeaders {
    WebhookHeaders {
        id: r.header("webhook-id").unwrap().to_string(),
        timestamp: r.header("webhook-timestamp").unwrap().to_string(),
        signature: r.header("webhook-signature").unwrap().to_string(),
    }
}

async fn destinations(app: &TestApp, app_uid: &str, msg_id: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/app/{app_uid}/msg/{msg_id}/endpoint")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn delivery_carries_exact_bytes_and_a_valid_standard_webhooks_signature() {
    let app = TestApp::spawn().await;
    app.create_app("ws_sig").await;
    let ep = app.create_endpoint("ws_sig", "/ok", json!({})).await;
    let (_, _) = app
        .call(
            "PUT",
            &format!("/api/v1/app/ws_sig/endpoint/{}/headers", ep["id"].as_str().unwrap()),
            Some(json!({"headers": {"X-Workspace": "ws_sig"}})),
        )
        .await;
    // Unusual spacing and key order must survive byte for byte.
    let raw = r#"{"eventType":"content.published","payload":{ "z": 1,  "a" : [1, 2], "é": "ü" }}"#;
    let resp = app
        .client
        .post(format!("{}/api/v1/app/ws_sig/msg", app.base))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let msg: Value = resp.json().await.unwrap();
    let got = app.receiver.wait_for(1, |r| r.path == "/ok").await;
    let r = &got[0];
    assert_eq!(&r.body[..], r#"{ "z": 1,  "a" : [1, 2], "é": "ü" }"#.as_bytes());
    assert_eq!(r.header("webhook-id"), msg["id"].as_str());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("user-agent").unwrap().starts_with("hookd/"));
    assert_eq!(r.header("webhook-attempt"), Some("1"));
    assert_eq!(r.header("x-workspace"), Some("ws_sig"));
    let (_, secret) = app
        .get(&format!(
            "/api/v1/app/ws_sig/endpoint/{}/secret",
            ep["id"].as_str().unwrap()
        ))
        .await;
    let secret = Secret::parse(secret["key"].as_str().unwrap()).unwrap();
    let headers = webhook_headers(r);
    let ts: i64 = headers.timestamp.parse().unwrap();
    verify(&secret, &headers, &r.body, ts, 300).expect("signature verifies");
    let other = Secret::generate(&mut rand::thread_rng());
    assert!(verify(&other, &headers, &r.body, ts, 300).is_err());
}

#[tokio::test]
async fn only_enabled_endpoints_whose_filters_match_receive_the_message() {
    let app = TestApp::spawn().await;
    for name in ["user.created", "user.updated"] {
        let (status, _) = app
            .post("/api/v1/event-type", json!({"name": name, "description": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    app.create_app("ws_filter").await;
    app.create_endpoint("ws_filter", "/status/201", json!({"eventTypes": ["user.created"]}))
        .await;
    app.create_endpoint("ws_filter", "/status/202", json!({"eventTypes": ["user.updated"]}))
        .await;
    app.create_endpoint("ws_filter", "/status/203", json!({"channels": ["eu"]}))
        .await;
    app.create_endpoint("ws_filter", "/status/204", json!({"disabled": true}))
        .await;
    app.create_endpoint("ws_filter", "/status/205", json!({})).await;
    app.send_message(
        "ws_filter",
        json!({"eventType": "user.created", "payload": {}, "channels": ["eu"]}),
    )
    .await;
    app.send_message("ws_filter", json!({"eventType": "user.created", "payload": {}}))
        .await;
    app.wait_recorded(5).await;
    let mut paths: Vec<String> = app.receiver.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "/status/201",
            "/status/201",
            "/status/203",
            "/status/205",
            "/status/205"
        ]
    );
}

#[tokio::test]
async fn failing_delivery_is_retried_on_the_schedule_then_ends_failed() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![5, 10]).await;
    app.create_app("ws_retry").await;
    app.create_endpoint("ws_retry", "/status/500", json!({})).await;
    app.create_endpoint("ws_retry", "/ok", json!({})).await;
    let msg = app
        .send_message("ws_retry", json!({"eventType": "a.b", "payload": {"n": 1}}))
        .await;
    let msg_id = msg["id"].as_str().unwrap();
    app.wait_recorded(2).await;
    let dest = destinations(&app, "ws_retry", msg_id).await;
    let failing = dest
        .iter()
        .find(|d| d["url"].as_str().unwrap().ends_with("/status/500"))
        .unwrap();
    assert_eq!(
        (failing["status"].clone(), failing["statusText"].clone()),
        (json!(3), json!("sending"))
    );
    assert!(failing["nextAttempt"].is_string());
    let ok = dest
        .iter()
        .find(|d| d["url"].as_str().unwrap().ends_with("/ok"))
        .unwrap();
    assert_eq!(
        (ok["status"].clone(), ok["statusText"].clone()),
        (json!(0), json!("success"))
    );

    // Jitter is ±20 %: 6 s covers the 5 s gap, 12 s the 10 s one.
    app.advance(Duration::from_secs(6));
    app.wait_recorded(3).await;
    app.advance(Duration::from_secs(12));
    app.wait_recorded(4).await;
    let dest = destinations(&app, "ws_retry", msg_id).await;
    let failing = dest
        .iter()
        .find(|d| d["url"].as_str().unwrap().ends_with("/status/500"))
        .unwrap();
    assert_eq!(
        (failing["status"].clone(), failing["statusText"].clone()),
        (json!(2), json!("fail"))
    );
    assert!(failing["nextAttempt"].is_null());
    let attempts: Vec<String> = app
        .receiver
        .requests()
        .iter()
        .filter(|r| r.path == "/status/500")
        .map(|r| r.header("webhook-attempt").unwrap().to_string())
        .collect();
    assert_eq!(attempts, vec!["1", "2", "3"]);

    // Exhausted means no more attempts, however much time passes: prove it with a barrier
    // message that is delivered after the clock jumped.
    app.advance(Duration::from_secs(86_400));
    app.send_message("ws_retry", json!({"eventType": "barrier", "payload": {}}))
        .await;
    app.wait_recorded(6).await;
    assert_eq!(
        app.receiver
            .requests()
            .iter()
            .filter(|r| r.path == "/status/500")
            .count(),
        4,
        "only the barrier's first try"
    );
    let (_, list) = app.get(&format!("/api/v1/app/ws_retry/attempt/msg/{msg_id}")).await;
    let statuses: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["responseStatusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|c| **c == 500).count(), 3);
}

#[tokio::test]
async fn redirects_client_errors_and_refused_connections_are_failures_that_retry() {
    let app = TestApp::spawn().await;
    app.create_app("ws_fail").await;
    app.create_endpoint("ws_fail", "/status/302", json!({})).await;
    app.create_endpoint("ws_fail", "/status/400", json!({})).await;
    // Nothing listens on port 9 of loopback: the connection is refused.
    let (status, _) = app
        .post(
            "/api/v1/app/ws_fail/endpoint",
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let msg = app
        .send_message("ws_fail", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(3).await;
    let (_, list) = app
        .get(&format!(
            "/api/v1/app/ws_fail/attempt/msg/{}",
            msg["id"].as_str().unwrap()
        ))
        .await;
    let mut codes: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["responseStatusCode"].as_i64().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, vec![0, 302, 400]);
    for a in list["data"].as_array().unwrap() {
        assert_eq!(a["status"], 2);
        assert_eq!(a["statusText"], "fail");
        if a["responseStatusCode"] == 0 {
            assert!(
                !a["response"].as_str().unwrap().is_empty(),
                "a transport failure records its error text"
            );
        }
    }
    for d in destinations(&app, "ws_fail", msg["id"].as_str().unwrap()).await {
        assert_eq!(d["statusText"], "sending", "every failure kind is retried");
    }
}

#[tokio::test]
async fn a_timeout_is_a_failure_retried_no_sooner_than_a_minute() {
    let app = TestApp::spawn_with(|c| c.delivery.timeout_secs = 1).await;
    app.create_app("ws_timeout").await;
    app.create_endpoint("ws_timeout", "/slow/3000", json!({})).await;
    let msg = app
        .send_message("ws_timeout", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(1).await;
    let (_, list) = app
        .get(&format!(
            "/api/v1/app/ws_timeout/attempt/msg/{}",
            msg["id"].as_str().unwrap()
        ))
        .await;
    let attempt = &list["data"][0];
    assert_eq!(attempt["responseStatusCode"], 0);
    let dest = destinations(&app, "ws_timeout", msg["id"].as_str().unwrap()).await;
    let next = chrono::DateTime::parse_from_rfc3339(dest[0]["nextAttempt"].as_str().unwrap()).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(attempt["timestamp"].as_str().unwrap()).unwrap();
    assert!(
        next - at >= chrono::Duration::seconds(60),
        "next attempt {next} after {at}"
    );
}

#[tokio::test]
async fn a_slow_endpoint_does_not_hold_up_other_endpoints() {
    let app = TestApp::spawn_with(|c| c.delivery.endpoint_concurrency = 2).await;
    app.create_app("ws_slow").await;
    app.create_app("ws_fast").await;
    app.create_endpoint("ws_slow", "/slow/1500", json!({})).await;
    app.create_endpoint("ws_slow", "/status/201", json!({})).await;
    app.create_endpoint("ws_fast", "/ok", json!({})).await;
    for i in 0..8 {
        app.send_message("ws_slow", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
        app.send_message("ws_fast", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
    }
    app.receiver.wait_for(8, |r| r.path == "/ok").await;
    app.receiver.wait_for(8, |r| r.path == "/status/201").await;
    let slow_done = app
        .receiver
        .requests()
        .iter()
        .filter(|r| r.path == "/slow/1500")
        .count();
    assert!(
        slow_done <= 2,
        "healthy endpoints finished while the slow one had served only {slow_done} of 8"
    );
}

#[tokio::test]
async fn resend_makes_one_manual_attempt_with_the_same_webhook_id() {
    let app = TestApp::spawn().await;
    app.create_app("ws_resend").await;
    let ep = app.create_endpoint("ws_resend", "/ok", json!({"uid": "main"})).await;
    let msg = app
        .send_message("ws_resend", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let msg_id = msg["id"].as_str().unwrap();
    app.wait_recorded(1).await;
    app.clock.advance(Duration::from_secs(1)); // the frozen clock would give both attempts one instant
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/v1/app/ws_resend/msg/{msg_id}/endpoint/main/resend"),
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::ACCEPTED, json!({})));
    app.wait_recorded(2).await;
    let got = app.receiver.wait_for(2, |r| r.path == "/ok").await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[1].header("webhook-attempt"), Some("2"));
    let (_, list) = app
        .get(&format!(
            "/api/v1/app/ws_resend/attempt/endpoint/{}",
            ep["id"].as_str().unwrap()
        ))
        .await;
    let triggers: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["triggerType"].as_i64().unwrap())
        .collect();
    assert_eq!(
        triggers,
        vec![1, 0],
        "newest first: the manual resend, then the scheduled attempt"
    );
}

#[tokio::test]
async fn resend_of_unknown_message_or_endpoint_returns_404() {
    let app = TestApp::spawn().await;
    app.create_app("ws_r404").await;
    app.create_endpoint("ws_r404", "/ok", json!({"uid": "main"})).await;
    let msg = app
        .send_message("ws_r404", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let (status, _) = app
        .call("POST", "/api/v1/app/ws_r404/msg/msg_nope/endpoint/main/resend", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            "POST",
            &format!(
                "/api/v1/app/ws_r404/msg/{}/endpoint/nope/resend",
                msg["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_the_first_20_kib_of_a_response_body_is_kept() {
    let app = TestApp::spawn().await;
    app.create_app("ws_big").await;
    let ep = app.create_endpoint("ws_big", "/big/100000", json!({})).await;
    app.send_message("ws_big", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(1).await;
    let (_, list) = app
        .get(&format!(
            "/api/v1/app/ws_big/attempt/endpoint/{}",
            ep["id"].as_str().unwrap()
        ))
        .await;
    let response = list["data"][0]["response"].as_str().unwrap();
    assert_eq!(response.len(), 20 * 1024);
    assert!(response.bytes().all(|b| b == b'x'));
    assert_eq!(list["data"][0]["statusText"], "success");
}
