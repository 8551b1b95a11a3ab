//! The sandbox (`test` environment): its own tokens and data, invisible from live and the
//! reverse; it may deliver to plain-http loopback targets live refuses; its deliveries are marked.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn live_and_test_tokens_never_see_each_others_data() {
    let app = TestApp::spawn().await;
    let live = app.token.clone();
    let test = app.test_token().await;

    // Same uid in both environments: two different applications.
    let (status, live_app) = app
        .call_as(
            &live,
            "POST",
            "/api/v1/app",
            Some(json!({"name": "L", "uid": "ws_same"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, test_app) = app
        .call_as(
            &test,
            "POST",
            "/api/v1/app",
            Some(json!({"name": "T", "uid": "ws_same"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{test_app}");
    assert_ne!(live_app["id"], test_app["id"]);
    let (status, test_only) = app
        .call_as(
            &test,
            "POST",
            "/api/v1/app",
            Some(json!({"name": "T2", "uid": "ws_test_only"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.call_as(
        &test,
        "POST",
        "/api/v1/event-type",
        Some(json!({"name": "sandbox.only", "description": "x"})),
    )
    .await;
    let (_, ep) = app
        .call_as(
            &test,
            "POST",
            "/api/v1/app/ws_test_only/endpoint",
            Some(json!({"url": app.receiver.url("/ok")})),
        )
        .await;
    let msg = app
        .call_as(
            &test,
            "POST",
            "/api/v1/app/ws_test_only/msg",
            Some(json!({"eventType": "sandbox.only", "payload": {"x": 1}})),
        )
        .await
        .1;

    // Lists show only the caller's environment.
    let (_, list) = app.call_as(&live, "GET", "/api/v1/app", None).await;
    let uids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, ["ws_same"]);
    let (_, list) = app.call_as(&live, "GET", "/api/v1/event-type", None).await;
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["name"] != "sandbox.only"));

    // Every route that names test data by id answers 404 to the live token.
    let (app_id, ep_id, msg_id) = (
        test_only["id"].as_str().unwrap(),
        ep["id"].as_str().unwrap(),
        msg["id"].as_str().unwrap(),
    );
    for path in [
        format!("/api/v1/app/{app_id}"),
        "/api/v1/app/ws_test_only".to_string(),
        format!("/api/v1/app/{app_id}/endpoint/{ep_id}"),
        format!("/api/v1/app/{app_id}/endpoint/{ep_id}/secret"),
        format!("/api/v1/app/{app_id}/msg/{msg_id}"),
        format!("/api/v1/app/{app_id}/msg"),
        format!("/api/v1/app/{app_id}/attempt/msg/{msg_id}"),
        "/api/v1/event-type/sandbox.only".to_string(),
    ] {
        let (status, body) = app.call_as(&live, "GET", &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "live token reached {path}: {body}");
    }
    // And the reverse: the live application is not reachable with the test token by its id.
    let live_id = live_app["id"].as_str().unwrap();
    let (status, _) = app.call_as(&test, "GET", &format!("/api/v1/app/{live_id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call_as(&test, "DELETE", &format!("/api/v1/app/{live_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.call_as(&live, "GET", &format!("/api/v1/app/{live_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "the live application is untouched");
}

#[tokio::test]
async fn the_sandbox_delivers_to_http_loopback_that_live_refuses_and_marks_its_deliveries() {
    // Live as shipped: https only and no private or loopback targets.
    let app = TestApp::spawn_with(|c| {
        c.delivery.allow_http = false;
        c.delivery.allowed_subnets = vec![];
    })
    .await;
    let test = app.test_token().await;
    let url = app.receiver.url("/ok");

    app.create_app("ws_live").await;
    let (status, body) = app.post("/api/v1/app/ws_live/endpoint", json!({"url": url})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "live refuses http://: {body}");
    let https_loopback = url.replace("http://", "https://");
    let (status, _) = app
        .post("/api/v1/app/ws_live/endpoint", json!({"url": https_loopback}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let live_msg = app
        .send_message("ws_live", json!({"eventType": "a.b", "payload": {"env": "live"}}))
        .await;
    app.wait_recorded(1).await;
    let (_, attempts) = app
        .get(&format!(
            "/api/v1/app/ws_live/attempt/msg/{}",
            live_msg["id"].as_str().unwrap()
        ))
        .await;
    let response = attempts["data"][0]["response"].as_str().unwrap();
    assert!(
        response.contains("loopback"),
        "live refused the loopback target: {response}"
    );

    app.call_as(&test, "POST", "/api/v1/app", Some(json!({"name": "S", "uid": "ws_sb"})))
        .await;
    let (status, body) = app
        .call_as(&test, "POST", "/api/v1/app/ws_sb/endpoint", Some(json!({"url": url})))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the sandbox accepts http:// loopback: {body}"
    );
    let (status, _) = app
        .call_as(
            &test,
            "POST",
            "/api/v1/app/ws_sb/msg",
            Some(json!({"eventType": "a.b", "payload": {"env": "test"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let got = app.receiver.wait_for(1, |_| true).await;
    assert_eq!(got.len(), 1, "only the sandbox message arrived");
    assert_eq!(got[0].header("webhook-environment"), Some("test"));
    assert_eq!(&got[0].body[..], br#"{"env":"test"}"#);
}

#[tokio::test]
async fn live_deliveries_carry_no_environment_marker() {
    let app = TestApp::spawn().await;
    app.create_app("ws_l").await;
    app.create_endpoint("ws_l", "/ok", json!({})).await;
    app.send_message("ws_l", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let got = app.receiver.wait_for(1, |_| true).await;
    assert_eq!(got[0].header("webhook-environment"), None);
}
