//! Authentication: bearer tokens, Svix error shape, health without a token.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

/// Every authenticated route, with a body where it takes one.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/app"),
    ("POST", "/api/v1/app"),
    ("GET", "/api/v1/app/ws_1"),
    ("PUT", "/api/v1/app/ws_1"),
    ("PATCH", "/api/v1/app/ws_1"),
    ("DELETE", "/api/v1/app/ws_1"),
    ("GET", "/api/v1/app/ws_1/endpoint"),
    ("POST", "/api/v1/app/ws_1/endpoint"),
    ("GET", "/api/v1/app/ws_1/endpoint/ep_1"),
    ("PUT", "/api/v1/app/ws_1/endpoint/ep_1"),
    ("PATCH", "/api/v1/app/ws_1/endpoint/ep_1"),
    ("DELETE", "/api/v1/app/ws_1/endpoint/ep_1"),
    ("GET", "/api/v1/app/ws_1/endpoint/ep_1/secret"),
    ("GET", "/api/v1/app/ws_1/endpoint/ep_1/headers"),
    ("PUT", "/api/v1/app/ws_1/endpoint/ep_1/headers"),
    ("PATCH", "/api/v1/app/ws_1/endpoint/ep_1/headers"),
    ("GET", "/api/v1/app/ws_1/endpoint/ep_1/msg"),
    ("GET", "/api/v1/event-type"),
    ("POST", "/api/v1/event-type"),
    ("GET", "/api/v1/event-type/a.b"),
    ("PUT", "/api/v1/event-type/a.b"),
    ("PATCH", "/api/v1/event-type/a.b"),
    ("DELETE", "/api/v1/event-type/a.b"),
    ("GET", "/api/v1/app/ws_1/msg"),
    ("POST", "/api/v1/app/ws_1/msg"),
    ("GET", "/api/v1/app/ws_1/msg/msg_1"),
    ("GET", "/api/v1/app/ws_1/msg/msg_1/endpoint"),
    ("POST", "/api/v1/app/ws_1/msg/msg_1/endpoint/ep_1/resend"),
    ("GET", "/api/v1/app/ws_1/msg/msg_1/attempt/atmpt_1"),
    ("GET", "/api/v1/app/ws_1/attempt/endpoint/ep_1"),
    ("GET", "/api/v1/app/ws_1/attempt/msg/msg_1"),
];

#[tokio::test]
async fn every_route_returns_401_in_svix_shape_without_a_valid_token() {
    let app = TestApp::spawn().await;
    app.create_app("ws_1").await;
    for (method, path) in ROUTES {
        let method_ = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let anonymous = app
            .client
            .request(method_.clone(), format!("{}{path}", app.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status().as_u16(), 401, "{method} {path} without a token");
        let body: serde_json::Value = anonymous.json().await.unwrap();
        assert_eq!(
            body,
            json!({"code": "authentication_failed", "detail": "Invalid token"}),
            "{method} {path}"
        );
        let (status, body) = app.call_as("hk_live_wrong", method, path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with a wrong token");
        assert_eq!(body["code"], "authentication_failed");
    }
    // Nothing was changed by the refused calls.
    assert_eq!(app.get("/api/v1/app/ws_1").await.0, StatusCode::OK);
}

#[tokio::test]
async fn health_answers_without_a_token() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(format!("{}/api/v1/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["database"]["status"], "ok");
    assert_eq!(body["queue"]["status"], "ok");
    assert_eq!(body["recorder"]["status"], "ok");
    let ping = app
        .client
        .get(format!("{}/api/v1/health/ping/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status().as_u16(), 204);
}

#[tokio::test]
async fn unknown_routes_return_404_json() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn sdk_idempotency_key_header_is_accepted_on_posts() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(format!("{}/api/v1/app", app.base))
        .bearer_auth(&app.token)
        .header("idempotency-key", "auto_3f1c")
        .json(&json!({"name": "With key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}
