//! Messages: create (202), eventId, validation, get by id or eventId, list filters.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn create_message_returns_202_with_the_payload_and_no_endpoints_needed() {
    let app = TestApp::spawn().await;
    app.create_app("ws_msg").await;
    let (status, body) = app
        .post(
            "/api/v1/app/ws_msg/msg",
            json!({"eventType": "not.in.catalog", "eventId": "evt_1", "payload": {"a": 1}, "channels": ["eu"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() == 31);
    assert_eq!(body["eventId"], "evt_1");
    assert_eq!(body["eventType"], "not.in.catalog");
    assert_eq!(body["payload"], json!({"a": 1}));
    assert_eq!(body["channels"], json!(["eu"]));
    assert!(body["timestamp"].is_string());
    let (_, without) = app
        .post(
            "/api/v1/app/ws_msg/msg?with_content=false",
            json!({"eventType": "x", "payload": {"a": 1}}),
        )
        .await;
    assert_eq!(without["payload"], json!({}));
    let (_, data_alias) = app
        .post("/api/v1/app/ws_msg/msg", json!({"eventType": "x", "data": {"b": 2}}))
        .await;
    assert_eq!(data_alias["payload"], json!({"b": 2}));
}

#[tokio::test]
async fn duplicate_event_id_returns_409() {
    let app = TestApp::spawn().await;
    app.create_app("ws_dup").await;
    app.create_app("ws_other").await;
    app.send_message("ws_dup", json!({"eventType": "x", "eventId": "evt_1", "payload": {}}))
        .await;
    let (status, body) = app
        .post(
            "/api/v1/app/ws_dup/msg",
            json!({"eventType": "x", "eventId": "evt_1", "payload": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");
    app.send_message("ws_other", json!({"eventType": "x", "eventId": "evt_1", "payload": {}}))
        .await;
    let (_, list) = app.get("/api/v1/app/ws_dup/msg").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "the rejected duplicate left nothing behind"
    );
}

#[tokio::test]
async fn invalid_messages_return_422_with_their_location() {
    let app = TestApp::spawn().await;
    app.create_app("ws_bad").await;
    let cases = [
        (json!({"eventType": "x", "payload": [1, 2]}), json!(["body", "payload"])),
        (json!({"eventType": "x", "payload": "text"}), json!(["body", "payload"])),
        (json!({"payload": {}}), json!(["body", "eventType"])),
        (json!({"eventType": "x"}), json!(["body", "payload"])),
        (
            json!({"eventType": "bad type", "payload": {}}),
            json!(["body", "eventType"]),
        ),
        (
            json!({"eventType": "x", "payload": {}, "eventId": "has space"}),
            json!(["body", "eventId"]),
        ),
        (
            json!({"eventType": "x", "payload": {}, "channels": ["a", "b", "c", "d", "e", "f"]}),
            json!(["body", "channels"]),
        ),
        (
            json!({"eventType": "x", "payload": {}, "payloadRetentionPeriod": 0}),
            json!(["body", "payloadRetentionPeriod"]),
        ),
        (
            json!({"eventType": "x", "payload": {}, "channels": "eu"}),
            json!(["body", "channels"]),
        ),
    ];
    for (input, loc) in cases {
        let (status, body) = app.post("/api/v1/app/ws_bad/msg", input.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{input}: {body}");
        assert_eq!(body["detail"][0]["loc"], loc, "{input}: {body}");
    }
    let (_, body) = app
        .post("/api/v1/app/ws_bad/msg", json!({"eventType": "x", "payload": [1]}))
        .await;
    assert_eq!(body["detail"][0]["msg"], "Payload must be an object.");
}

#[tokio::test]
async fn message_to_unknown_app_returns_404_unless_the_app_comes_with_it() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post("/api/v1/app/ws_new/msg", json!({"eventType": "x", "payload": {}}))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let (status, body) = app
        .post(
            "/api/v1/app/ws_new/msg",
            json!({"eventType": "x", "payload": {}, "application": {"name": "New", "uid": "other"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "application", "uid"]));
    let (status, _) = app
        .post(
            "/api/v1/app/ws_new/msg",
            json!({"eventType": "x", "payload": {}, "application": {"name": "New", "uid": "ws_new"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(app.get("/api/v1/app/ws_new").await.0, StatusCode::OK);
}

#[tokio::test]
async fn get_message_by_id_or_event_id_and_404_otherwise() {
    let app = TestApp::spawn().await;
    app.create_app("ws_get").await;
    let msg = app
        .send_message(
            "ws_get",
            json!({"eventType": "x", "eventId": "evt_9", "payload": {"k": "v"}}),
        )
        .await;
    for key in [msg["id"].as_str().unwrap(), "evt_9"] {
        let (status, body) = app.get(&format!("/api/v1/app/ws_get/msg/{key}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], msg["id"]);
        assert_eq!(body["payload"], json!({"k": "v"}));
    }
    let (_, body) = app.get("/api/v1/app/ws_get/msg/evt_9?with_content=false").await;
    assert_eq!(body["payload"], json!({}));
    let (status, body) = app.get("/api/v1/app/ws_get/msg/msg_nope").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    assert_eq!(
        app.get("/api/v1/app/ws_missing/msg/evt_9").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn list_filters_by_event_types_channel_and_time_newest_first() {
    let app = TestApp::spawn().await;
    app.create_app("ws_list").await;
    let start = app.clock.now_rfc3339();
    let mut ids = Vec::new();
    for (t, ch) in [("a.one", "eu"), ("b.two", "us"), ("a.one", "us")] {
        app.clock.advance(Duration::from_secs(1));
        let m = app
            .send_message("ws_list", json!({"eventType": t, "payload": {}, "channels": [ch]}))
            .await;
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    let list = |q: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app.get(&format!("/api/v1/app/ws_list/msg{q}")).await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("").await, vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    assert_eq!(list("?event_types=a.one").await, vec![ids[2].clone(), ids[0].clone()]);
    assert_eq!(list("?event_types=a.one,b.two").await.len(), 3);
    assert_eq!(list("?event_types[]=b.two").await, vec![ids[1].clone()]);
    assert_eq!(list("?channel=us").await, vec![ids[2].clone(), ids[1].clone()]);
    let (_, first) = app.get(&format!("/api/v1/app/ws_list/msg/{}", ids[0])).await;
    let (_, last) = app.get(&format!("/api/v1/app/ws_list/msg/{}", ids[2])).await;
    let after = first["timestamp"].as_str().unwrap().replace('+', "%2B");
    let before = last["timestamp"].as_str().unwrap();
    let (_, body) = app
        .get(&format!("/api/v1/app/ws_list/msg?after={after}&before={before}"))
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["id"], ids[1].as_str());
    let (_, body) = app
        .get(&format!("/api/v1/app/ws_list/msg?after={}", start.replace('+', "%2B")))
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    let (status, body) = app.get("/api/v1/app/ws_list/msg?before=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "before"]));
    let (_, body) = app.get("/api/v1/app/ws_list/msg?with_content=false&limit=1").await;
    assert_eq!(body["data"][0]["payload"], json!({}));
    assert_eq!(body["done"], false);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_in_svix_shape() {
    let app = TestApp::spawn_with(|c| c.api.max_body_bytes = 64 * 1024).await;
    app.create_app("ws_big").await;
    let big = "x".repeat(100 * 1024);
    let (status, body) = app
        .post(
            "/api/v1/app/ws_big/msg",
            json!({"eventType": "a.b", "payload": {"blob": big}}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
    let (_, list) = app.get("/api/v1/app/ws_big/msg").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "nothing was stored");
}
