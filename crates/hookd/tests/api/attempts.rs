//! The delivery log: attempts by endpoint and by message, one attempt, attempted messages and
//! attempted destinations, with their filters and 404s.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

/// An app with a healthy and a failing endpoint and one delivered message.
async fn setup(app: &TestApp) -> (String, String, String) {
    app.create_app("ws_at").await;
    let ok = app.create_endpoint("ws_at", "/ok", json!({"uid": "good"})).await;
    let bad = app.create_endpoint("ws_at", "/status/500", json!({"uid": "bad"})).await;
    let msg = app
        .send_message(
            "ws_at",
            json!({"eventType": "a.b", "eventId": "evt_at", "payload": {"x": 1}}),
        )
        .await;
    app.wait_recorded(2).await;
    (
        msg["id"].as_str().unwrap().into(),
        ok["id"].as_str().unwrap().into(),
        bad["id"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn attempts_by_message_and_endpoint_in_svix_shape_with_filters() {
    let app = TestApp::spawn().await;
    let (msg, ok, bad) = setup(&app).await;
    let (status, body) = app.get(&format!("/api/v1/app/ws_at/attempt/msg/{msg}")).await;
    assert_eq!(status, StatusCode::OK);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for a in data {
        for field in [
            "id",
            "msgId",
            "endpointId",
            "url",
            "response",
            "responseStatusCode",
            "responseDurationMs",
            "status",
            "statusText",
            "triggerType",
            "timestamp",
        ] {
            assert!(a.get(field).is_some(), "missing {field}: {a}");
        }
        assert!(a["id"].as_str().unwrap().starts_with("atmpt_"));
        assert_eq!(a["msgId"], msg.as_str());
    }
    let (_, body) = app.get("/api/v1/app/ws_at/attempt/msg/evt_at?status=2").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            body["data"][0]["endpointId"].as_str(),
            body["data"][0]["responseStatusCode"].clone()
        ),
        (Some(bad.as_str()), json!(500))
    );
    let (_, body) = app
        .get("/api/v1/app/ws_at/attempt/msg/evt_at?status_code_class=200")
        .await;
    assert_eq!(body["data"][0]["endpointId"], ok.as_str());
    let (_, body) = app.get("/api/v1/app/ws_at/attempt/msg/evt_at?endpoint_id=good").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let (_, body) = app.get("/api/v1/app/ws_at/attempt/endpoint/good").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["statusText"], "success");
    assert_eq!(body["data"][0]["response"], "{\"received\":true}");
    let (_, body) = app
        .get("/api/v1/app/ws_at/attempt/endpoint/bad?event_types=other.type")
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 0);
    let (status, body) = app.get("/api/v1/app/ws_at/attempt/endpoint/bad?status=9").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "status"]));
}

#[tokio::test]
async fn one_attempt_by_id() {
    let app = TestApp::spawn().await;
    let (msg, _, _) = setup(&app).await;
    let (_, list) = app.get(&format!("/api/v1/app/ws_at/attempt/msg/{msg}")).await;
    let id = list["data"][0]["id"].as_str().unwrap();
    let (status, body) = app.get(&format!("/api/v1/app/ws_at/msg/{msg}/attempt/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, list["data"][0]);
    let (status, body) = app
        .get(&format!("/api/v1/app/ws_at/msg/{msg}/attempt/atmpt_nope"))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
}

#[tokio::test]
async fn attempted_messages_of_an_endpoint_and_destinations_of_a_message() {
    let app = TestApp::spawn().await;
    let (msg, ok, bad) = setup(&app).await;
    let (status, body) = app.get("/api/v1/app/ws_at/endpoint/good/msg").await;
    assert_eq!(status, StatusCode::OK);
    let m = &body["data"][0];
    assert_eq!(
        (m["id"].as_str(), m["status"].clone(), m["statusText"].clone()),
        (Some(msg.as_str()), json!(0), json!("success"))
    );
    assert_eq!(m["payload"], json!({"x": 1}));
    let (_, body) = app.get("/api/v1/app/ws_at/endpoint/bad/msg?status=3").await;
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        1,
        "the failing delivery is still sending"
    );
    assert!(body["data"][0]["nextAttempt"].is_string());
    let (_, body) = app.get("/api/v1/app/ws_at/endpoint/bad/msg?status=0").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 0);

    let (status, body) = app.get(&format!("/api/v1/app/ws_at/msg/{msg}/endpoint")).await;
    assert_eq!(status, StatusCode::OK);
    let mut got: Vec<(String, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["statusText"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![(ok, "success".to_string()), (bad, "sending".to_string())];
    want.sort();
    assert_eq!(got, want);
    assert!(
        body["data"][0].get("metadata").is_none(),
        "MessageEndpointOut has no metadata"
    );
}

#[tokio::test]
async fn delivery_log_routes_return_404_for_unknown_parents() {
    let app = TestApp::spawn().await;
    let (msg, _, _) = setup(&app).await;
    for path in [
        "/api/v1/app/ws_at/attempt/endpoint/nope".to_string(),
        "/api/v1/app/ws_at/attempt/msg/msg_nope".to_string(),
        "/api/v1/app/ws_at/endpoint/nope/msg".to_string(),
        "/api/v1/app/ws_at/msg/msg_nope/endpoint".to_string(),
        format!("/api/v1/app/ws_missing/attempt/msg/{msg}"),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::NOT_FOUND, json!("not_found")),
            "{path}"
        );
    }
}
