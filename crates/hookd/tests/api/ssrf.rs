//! SSRF protection end to end. Every target here is on loopback: refusal is shown with the
//! allow-list off (or opening a different loopback address), never by aiming elsewhere. The
//! classifier itself is tested range by range in `hookd_core::net`.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

async fn attempt_response(app: &TestApp, app_uid: &str, msg_id: &str) -> (i64, String) {
    let (_, list) = app.get(&format!("/api/v1/app/{app_uid}/attempt/msg/{msg_id}")).await;
    let a = &list["data"][0];
    (
        a["responseStatusCode"].as_i64().unwrap(),
        a["response"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn loopback_targets_are_refused_when_the_allow_list_is_off() {
    let app = TestApp::spawn_with(|c| c.delivery.allowed_subnets.clear()).await;
    app.create_app("ws_ssrf").await;
    // By IP literal and by a name that resolves to loopback.
    let literal = app.receiver.url("/ok");
    let by_name = literal.replace("127.0.0.1", "localhost");
    for url in [literal, by_name] {
        let (status, ep) = app.post("/api/v1/app/ws_ssrf/endpoint", json!({"url": url})).await;
        assert_eq!(status, StatusCode::CREATED, "{ep}");
    }
    let msg = app
        .send_message("ws_ssrf", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(2).await;
    let (_, list) = app
        .get(&format!(
            "/api/v1/app/ws_ssrf/attempt/msg/{}",
            msg["id"].as_str().unwrap()
        ))
        .await;
    for a in list["data"].as_array().unwrap() {
        assert_eq!(a["responseStatusCode"], 0);
        let text = a["response"].as_str().unwrap();
        assert!(
            text.contains("refused") && text.contains("loopback") && text.contains("delivery.allowed_subnets"),
            "{text}"
        );
        assert_eq!(a["statusText"], "fail");
    }
    assert!(app.receiver.requests().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn an_allow_list_opens_only_the_subnets_it_names() {
    let app = TestApp::spawn_with(|c| c.delivery.allowed_subnets = vec!["127.0.0.2/32".into()]).await;
    app.create_app("ws_allow").await;
    let (status, _) = app
        .post(
            "/api/v1/app/ws_allow/endpoint",
            json!({"url": "http://127.0.0.3:9/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let msg = app
        .send_message("ws_allow", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(1).await;
    let (code, text) = attempt_response(&app, "ws_allow", msg["id"].as_str().unwrap()).await;
    assert_eq!(code, 0);
    assert!(text.contains("127.0.0.3") && text.contains("refused"), "{text}");
}

#[tokio::test]
async fn allowed_loopback_is_delivered_normally() {
    let app = TestApp::spawn_with(|c| c.delivery.allowed_subnets = vec!["127.0.0.1/32".into()]).await;
    app.create_app("ws_open").await;
    app.create_endpoint("ws_open", "/ok", json!({})).await;
    app.send_message("ws_open", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.receiver.wait_for(1, |r| r.path == "/ok").await;
}

#[tokio::test]
async fn live_endpoints_need_https_unless_http_is_allowed() {
    let app = TestApp::spawn_with(|c| c.delivery.allow_http = false).await;
    app.create_app("ws_https").await;
    let (status, body) = app
        .post(
            "/api/v1/app/ws_https/endpoint",
            json!({"url": "http://example.com/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "url"]));
    assert!(body["detail"][0]["msg"].as_str().unwrap().contains("https"), "{body}");
    let (status, _) = app
        .post(
            "/api/v1/app/ws_https/endpoint",
            json!({"url": "https://example.com/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .post("/api/v1/app/ws_https/endpoint", json!({"url": "javascript:alert(1)"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
