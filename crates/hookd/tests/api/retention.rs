//! Payload retention and expunging: expired or expunged payloads read `{"expired": true}`,
//! cannot be resent, and end pending retries; attempt responses can be expunged.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn expunging_a_payload_keeps_the_message_but_not_its_content() {
    let app = TestApp::spawn().await;
    app.create_app("ws_exp").await;
    app.create_endpoint("ws_exp", "/ok", json!({"uid": "ep"})).await;
    let msg = app
        .send_message(
            "ws_exp",
            json!({"eventType": "a.b", "eventId": "evt_x", "payload": {"secret": "s"}}),
        )
        .await;
    app.wait_recorded(1).await;
    let (status, _) = app.call("DELETE", "/api/v1/app/ws_exp/msg/evt_x/content", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = app
        .get(&format!("/api/v1/app/ws_exp/msg/{}", msg["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["payload"], json!({"expired": true}));
    let (status, body) = app
        .call("POST", "/api/v1/app/ws_exp/msg/evt_x/endpoint/ep/resend", None)
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("missing_payload"))
    );
    assert_eq!(
        app.call("DELETE", "/api/v1/app/ws_exp/msg/msg_nope/content", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn expunging_an_attempt_replaces_its_response_body() {
    let app = TestApp::spawn().await;
    app.create_app("ws_att").await;
    app.create_endpoint("ws_att", "/ok", json!({})).await;
    let msg = app
        .send_message("ws_att", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let msg_id = msg["id"].as_str().unwrap();
    app.wait_recorded(1).await;
    let (_, list) = app.get(&format!("/api/v1/app/ws_att/attempt/msg/{msg_id}")).await;
    let attempt_id = list["data"][0]["id"].as_str().unwrap();
    let path = format!("/api/v1/app/ws_att/msg/{msg_id}/attempt/{attempt_id}");
    assert_eq!(
        app.call("DELETE", &format!("{path}/content"), None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, attempt) = app.get(&path).await;
    assert_eq!(attempt["response"], "EXPUNGED");
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/app/ws_att/msg/{msg_id}/attempt/atmpt_nope/content"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn payloads_expire_after_their_retention_and_pending_retries_then_end_failed() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![3 * 86_400]).await;
    app.create_app("ws_ret").await;
    app.create_endpoint("ws_ret", "/status/500", json!({})).await;
    let short = app
        .send_message(
            "ws_ret",
            json!({"eventType": "a.b", "payload": {"n": 1}, "payloadRetentionPeriod": 1}),
        )
        .await;
    let long = app
        .send_message("ws_ret", json!({"eventType": "a.b", "payload": {"n": 2}}))
        .await;
    app.wait_recorded(2).await;

    app.clock.advance(Duration::from_secs(2 * 86_400));
    let expired = hookd::retention::run_once(app.store.as_ref(), app.clock.as_ref())
        .await
        .unwrap();
    assert_eq!(expired, 1);
    let (_, got) = app
        .get(&format!("/api/v1/app/ws_ret/msg/{}", short["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["payload"], json!({"expired": true}));
    let (_, kept) = app
        .get(&format!("/api/v1/app/ws_ret/msg/{}", long["id"].as_str().unwrap()))
        .await;
    assert_eq!(kept["payload"], json!({"n": 2}), "the default 90 days still run");

    // The expired message's retry comes due: nothing is sent and the delivery ends failed.
    app.advance(Duration::from_secs(4 * 86_400));
    app.wait_recorded(4).await;
    let sent: Vec<String> = app
        .receiver
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(
        sent.iter().filter(|b| b.as_str() == r#"{"n":1}"#).count(),
        1,
        "only the first try: {sent:?}"
    );
    let (_, dest) = app
        .get(&format!(
            "/api/v1/app/ws_ret/msg/{}/endpoint",
            short["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (
            dest["data"][0]["statusText"].clone(),
            dest["data"][0]["nextAttempt"].clone()
        ),
        (json!("fail"), json!(null))
    );
}
