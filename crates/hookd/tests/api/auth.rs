//! Authentication: bearer tokens, Svix error shape, health without a token.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn missing_or_wrong_token_returns_401_in_svix_shape() {
    let app = TestApp::spawn().await;
    let no_token = app.client.get(format!("{}/api/v1/app", app.base)).send().await.unwrap();
    assert_eq!(no_token.status().as_u16(), 401);
    let body: serde_json::Value = no_token.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": "authentication_failed", "detail": "Invalid token"})
    );
    for path in [
        "/api/v1/app",
        "/api/v1/event-type",
        "/api/v1/app/x/msg",
        "/api/v1/app/x/endpoint",
    ] {
        let (status, body) = app.call_as("hk_live_wrong", "GET", path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["code"], "authentication_failed");
    }
    let (status, _) = app
        .call_as("hk_live_wrong", "POST", "/api/v1/app", Some(json!({"name": "x"})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
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
