//! Endpoint lifecycle: secret rotation, ed25519 endpoints, 410 Gone, disable/enable with
//! parked deliveries, and the attempt log's headers.

use std::time::Duration;

use axum::http::StatusCode;
use hookd_signing::{verify, verify_asymmetric, PublicKey, Secret, WebhookHeaders};
use serde_json::json;

use crate::helpers::{Recorded, TestApp};

fn headers_of(r: &Recorded) -> WebhookHeaders {
    WebhookHeaders {
        id: r.header("webhook-id").unwrap().into(),
        timestamp: r.header("webhook-timestamp").unwrap().into(),
        signature: r.header("webhook-signature").unwrap().into(),
    }
}

async fn secret_of(app: &TestApp, path: &str) -> String {
    let (status, body) = app.get(&format!("{path}/secret")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn rotation_signs_with_old_and_new_keys_during_the_grace_period() {
    let app = TestApp::spawn().await;
    app.create_app("ws_rot").await;
    app.create_endpoint("ws_rot", "/ok", json!({"uid": "main"})).await;
    let ep = "/api/v1/app/ws_rot/endpoint/main";
    let old = secret_of(&app, ep).await;
    let (status, body) = app.post(&format!("{ep}/secret/rotate"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new = body["key"].as_str().unwrap().to_string();
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(secret_of(&app, ep).await, new);

    app.send_message("ws_rot", json!({"eventType": "a.b", "payload": {"n": 1}}))
        .await;
    let r = app.receiver.wait_for(1, |r| r.path == "/ok").await.remove(0);
    let h = headers_of(&r);
    assert_eq!(h.signature.split(' ').count(), 2, "{}", h.signature);
    let ts: i64 = h.timestamp.parse().unwrap();
    for key in [&old, &new] {
        verify(&Secret::parse(key).unwrap(), &h, &r.body, ts, 300).expect("both keys verify");
    }

    // Once the grace period is over only the new key signs.
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    app.send_message("ws_rot", json!({"eventType": "a.b", "payload": {"n": 2}}))
        .await;
    let r = app.receiver.wait_for(2, |r| r.path == "/ok").await.remove(1);
    let h = headers_of(&r);
    assert_eq!(h.signature.split(' ').count(), 1);
    let ts: i64 = h.timestamp.parse().unwrap();
    assert!(verify(&Secret::parse(&old).unwrap(), &h, &r.body, ts, 300).is_err());
    verify(&Secret::parse(&new).unwrap(), &h, &r.body, ts, 300).unwrap();
}

#[tokio::test]
async fn rotation_takes_a_given_key_and_enforces_its_limits() {
    let app = TestApp::spawn().await;
    app.create_app("ws_rot2").await;
    app.create_endpoint("ws_rot2", "/ok", json!({"uid": "main"})).await;
    let ep = "/api/v1/app/ws_rot2/endpoint/main";
    let mine = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, body) = app
        .post(
            &format!("{ep}/secret/rotate"),
            json!({"key": mine, "gracePeriodSeconds": 0}),
        )
        .await;
    assert_eq!((status, body["key"].as_str()), (StatusCode::OK, Some(mine)));
    let (status, body) = app
        .post(&format!("{ep}/secret/rotate"), json!({"key": "whsec_c2hvcnQ="}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "key"]));
    let (status, body) = app
        .post(&format!("{ep}/secret/rotate"), json!({"gracePeriodSeconds": 604_801}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "gracePeriodSeconds"]));
    for _ in 0..10 {
        assert_eq!(
            app.post(&format!("{ep}/secret/rotate"), json!({})).await.0,
            StatusCode::OK
        );
    }
    let (status, body) = app.post(&format!("{ep}/secret/rotate"), json!({})).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("limit_reached"))
    );
    assert_eq!(
        app.post("/api/v1/app/ws_rot2/endpoint/nope/secret/rotate", json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn ed25519_endpoints_sign_v1a_and_expose_their_public_key() {
    let app = TestApp::spawn().await;
    app.create_app("ws_ed").await;
    let seed = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    app.create_endpoint("ws_ed", "/ok", json!({"uid": "ed", "secret": seed}))
        .await;
    let public = secret_of(&app, "/api/v1/app/ws_ed/endpoint/ed").await;
    assert_eq!(
        public, "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "RFC 8032 test 1 public key"
    );
    app.send_message("ws_ed", json!({"eventType": "a.b", "payload": {"x": true}}))
        .await;
    let r = app.receiver.wait_for(1, |r| r.path == "/ok").await.remove(0);
    let h = headers_of(&r);
    assert!(h.signature.starts_with("v1a,"), "{}", h.signature);
    let ts: i64 = h.timestamp.parse().unwrap();
    verify_asymmetric(&PublicKey::parse(&public).unwrap(), &h, &r.body, ts, 300).expect("v1a verifies");
    let (status, body) = app.post("/api/v1/app/ws_ed/endpoint/ed/secret/rotate", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["key"].as_str().unwrap().starts_with("whpk_"),
        "an ed25519 endpoint rotates to a new ed25519 key"
    );
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_enabling_it_resumes_the_parked_delivery() {
    let app = TestApp::spawn().await;
    app.create_app("ws_gone").await;
    app.create_endpoint("ws_gone", "/status/410", json!({"uid": "gone"}))
        .await;
    let msg = app
        .send_message("ws_gone", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(1).await;
    let (_, ep) = app.get("/api/v1/app/ws_gone/endpoint/gone").await;
    assert_eq!(ep["disabled"], true, "410 Gone disables at once");
    let (_, dest) = app
        .get(&format!(
            "/api/v1/app/ws_gone/msg/{}/endpoint",
            msg["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        dest["data"][0]["nextAttempt"].is_null(),
        "no retry is scheduled while disabled"
    );

    // New messages are not sent to it while it is disabled.
    app.send_message("ws_gone", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let (status, _) = app
        .call(
            "PATCH",
            "/api/v1/app/ws_gone/endpoint/gone",
            Some(json!({"disabled": false, "url": app.receiver.url("/ok")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = app.receiver.wait_for(1, |r| r.path == "/ok").await;
    assert_eq!(
        got[0].header("webhook-id"),
        msg["id"].as_str(),
        "the parked delivery resumed"
    );
    assert_eq!(got[0].header("webhook-attempt"), Some("2"));
}

#[tokio::test]
async fn deliveries_due_while_an_endpoint_is_disabled_are_parked_not_dropped() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![5, 5]).await;
    app.create_app("ws_park").await;
    app.create_endpoint("ws_park", "/status/500", json!({"uid": "ep"}))
        .await;
    let msg = app
        .send_message("ws_park", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(1).await;
    let (status, _) = app
        .call(
            "PATCH",
            "/api/v1/app/ws_park/endpoint/ep",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.advance(Duration::from_secs(10));
    // Barrier: another app's delivery after the retry came due proves the poll has run.
    app.create_app("ws_barrier").await;
    app.create_endpoint("ws_barrier", "/ok", json!({})).await;
    app.send_message("ws_barrier", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.receiver.wait_for(1, |r| r.path == "/ok").await;
    assert_eq!(
        app.receiver
            .requests()
            .iter()
            .filter(|r| r.path == "/status/500")
            .count(),
        1,
        "not sent while disabled"
    );
    let (_, dest) = app
        .get(&format!(
            "/api/v1/app/ws_park/msg/{}/endpoint",
            msg["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(dest["data"].as_array().unwrap().len(), 1, "still listed");
    let (status, _) = app
        .call(
            "PATCH",
            "/api/v1/app/ws_park/endpoint/ep",
            Some(json!({"disabled": false, "url": app.receiver.url("/status/201")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = app.receiver.wait_for(1, |r| r.path == "/status/201").await;
    assert_eq!(got[0].header("webhook-id"), msg["id"].as_str());
}

#[tokio::test]
async fn the_attempt_log_keeps_sent_and_received_headers_with_secrets_redacted() {
    let app = TestApp::spawn().await;
    app.create_app("ws_hdr").await;
    app.create_endpoint(
        "ws_hdr",
        "/ok",
        json!({"uid": "ep", "headers": {"Authorization": "Bearer s3cret", "X-Team": "core"}}),
    )
    .await;
    let msg = app
        .send_message("ws_hdr", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let msg_id = msg["id"].as_str().unwrap();
    app.wait_recorded(1).await;
    let (_, list) = app.get(&format!("/api/v1/app/ws_hdr/attempt/msg/{msg_id}")).await;
    let attempt_id = list["data"][0]["id"].as_str().unwrap();
    let (status, body) = app
        .get(&format!("/api/v1/app/ws_hdr/msg/{msg_id}/attempt/{attempt_id}/headers"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent = &body["sentHeaders"];
    assert_eq!(sent["webhook-id"], msg_id);
    assert_eq!(sent["authorization"], "[redacted]");
    assert_eq!(sent["x-team"], "core");
    assert!(sent["webhook-signature"].as_str().unwrap().starts_with("v1,"));
    assert!(!body.to_string().contains("s3cret"));
    let received: Vec<(String, String)> = serde_json::from_value(body["responseHeaders"].clone()).unwrap();
    assert!(received.iter().any(|(k, _)| k == "content-length"), "{received:?}");
}
