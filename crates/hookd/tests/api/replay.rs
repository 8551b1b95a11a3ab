//! Recover, replay-missing, bulk-replay (background tasks), endpoint statistics, send-example.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, WAIT};

/// Reads a background task until it is no longer running (bounded).
async fn finished_task(app: &TestApp, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, task) = app.get(&format!("/api/v1/background-task/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{task}");
        if task["status"] != "running" {
            return task;
        }
        assert!(tokio::time::Instant::now() < deadline, "task {id} still running");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn an_hour_ago(app: &TestApp) -> String {
    (app.clock_now() - chrono::Duration::hours(1)).to_rfc3339()
}

#[tokio::test]
async fn recover_resends_failed_deliveries_as_manual_attempts_in_the_background() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![]).await;
    app.create_app("ws_rec").await;
    app.create_endpoint("ws_rec", "/status/500", json!({"uid": "ep"})).await;
    for i in 0..3 {
        app.send_message("ws_rec", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
    }
    app.wait_recorded(3).await;
    app.call(
        "PATCH",
        "/api/v1/app/ws_rec/endpoint/ep",
        Some(json!({"url": app.receiver.url("/ok")})),
    )
    .await;
    let (status, task) = app
        .post(
            "/api/v1/app/ws_rec/endpoint/ep/recover",
            json!({"since": an_hour_ago(&app)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    assert!(task["id"].as_str().unwrap().starts_with("qtask_"));
    assert_eq!(
        (task["task"].as_str(), task["status"].as_str()),
        (Some("endpoint.recover"), Some("running"))
    );
    assert!(task["updatedAt"].is_string());
    app.receiver.wait_for(3, |r| r.path == "/ok").await;
    let done = finished_task(&app, task["id"].as_str().unwrap()).await;
    assert_eq!(
        (done["status"].clone(), done["data"]["messagesSent"].clone()),
        (json!("finished"), json!(3))
    );
    app.wait_recorded(6).await;
    let (_, attempts) = app.get("/api/v1/app/ws_rec/attempt/endpoint/ep?status=0").await;
    let manual: Vec<i64> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["triggerType"].as_i64().unwrap())
        .collect();
    assert_eq!(manual, vec![1, 1, 1]);
    // Nothing failed any more: a second recover sends nothing.
    let (_, again) = app
        .post(
            "/api/v1/app/ws_rec/endpoint/ep/recover",
            json!({"since": an_hour_ago(&app)}),
        )
        .await;
    let done = finished_task(&app, again["id"].as_str().unwrap()).await;
    assert_eq!(done["data"]["messagesSent"], 0);
}

#[tokio::test]
async fn replay_missing_sends_what_the_endpoint_never_got_respecting_its_filters() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/v1/event-type",
        json!({"name": "user.created", "description": "x"}),
    )
    .await;
    app.create_app("ws_miss").await;
    app.create_endpoint(
        "ws_miss",
        "/ok",
        json!({"uid": "ep", "disabled": true, "eventTypes": ["user.created"]}),
    )
    .await;
    app.send_message("ws_miss", json!({"eventType": "user.created", "payload": {"n": 1}}))
        .await;
    app.send_message("ws_miss", json!({"eventType": "user.created", "payload": {"n": 2}}))
        .await;
    app.send_message("ws_miss", json!({"eventType": "other.type", "payload": {"n": 3}}))
        .await;
    app.call(
        "PATCH",
        "/api/v1/app/ws_miss/endpoint/ep",
        Some(json!({"disabled": false})),
    )
    .await;
    let (status, task) = app
        .post(
            "/api/v1/app/ws_miss/endpoint/ep/replay-missing",
            json!({"since": an_hour_ago(&app)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    assert_eq!(task["task"], "endpoint.replay");
    let got = app.receiver.wait_for(2, |r| r.path == "/ok").await;
    let done = finished_task(&app, task["id"].as_str().unwrap()).await;
    assert_eq!(
        done["data"]["messagesSent"], 2,
        "the other.type message was never meant for this endpoint"
    );
    assert!(got
        .iter()
        .all(|r| !String::from_utf8_lossy(&r.body).contains("\"n\":3")));
}

#[tokio::test]
async fn bulk_replay_resends_failed_deliveries_matching_the_filters() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![]).await;
    app.create_app("ws_bulk").await;
    app.create_endpoint("ws_bulk", "/status/503", json!({"uid": "ep"}))
        .await;
    app.send_message("ws_bulk", json!({"eventType": "keep.me", "payload": {}}))
        .await;
    app.send_message("ws_bulk", json!({"eventType": "skip.me", "payload": {}}))
        .await;
    app.wait_recorded(2).await;
    let (status, task) = app
        .post(
            "/api/v1/app/ws_bulk/endpoint/ep/bulk-replay",
            json!({"since": an_hour_ago(&app), "eventTypes": ["keep.me"], "statusCodeClass": 500}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    assert_eq!(task["task"], "endpoint.bulk-replay");
    let done = finished_task(&app, task["id"].as_str().unwrap()).await;
    assert_eq!(done["data"]["messagesSent"], 1);
    app.wait_recorded(3).await;
    let (_, list) = app.get("/api/v1/background-task?task=endpoint.bulk-replay").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["status"], "finished");
}

#[tokio::test]
async fn replay_inputs_are_validated_and_unknown_tasks_are_404() {
    let app = TestApp::spawn().await;
    app.create_app("ws_val").await;
    app.create_endpoint("ws_val", "/ok", json!({"uid": "ep"})).await;
    let future = (app.clock_now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, body) = app
        .post("/api/v1/app/ws_val/endpoint/ep/recover", json!({"since": future}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "since"]));
    let (status, body) = app
        .post("/api/v1/app/ws_val/endpoint/ep/replay-missing", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "since"]));
    let (status, _) = app
        .post(
            "/api/v1/app/ws_val/endpoint/ep/bulk-replay",
            json!({"since": an_hour_ago(&app), "status": 7}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.post(
            "/api/v1/app/ws_val/endpoint/nope/recover",
            json!({"since": an_hour_ago(&app)})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = app.get("/api/v1/background-task/qtask_nope").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
}

#[tokio::test]
async fn stats_count_deliveries_by_status_and_attempts_by_outcome() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![60]).await;
    app.create_app("ws_stats").await;
    app.create_endpoint("ws_stats", "/status/500", json!({"uid": "bad"}))
        .await;
    app.create_endpoint("ws_stats", "/ok", json!({"uid": "good"})).await;
    app.send_message("ws_stats", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.send_message("ws_stats", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(4).await;
    let (status, bad) = app.get("/api/v1/app/ws_stats/endpoint/bad/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        bad,
        json!({"success": 0, "pending": 0, "sending": 2, "fail": 0, "canceled": 0})
    );
    app.advance(Duration::from_secs(80));
    app.wait_recorded(6).await;
    let (_, bad) = app.get("/api/v1/app/ws_stats/endpoint/bad/stats").await;
    assert_eq!(bad["fail"], 2);
    let (_, good) = app.get("/api/v1/app/ws_stats/endpoint/good/stats").await;
    assert_eq!(good["success"], 2);
    let (_, attempts) = app.get("/api/v1/app/ws_stats/endpoint/bad/attempt-stats").await;
    assert_eq!(attempts, json!({"success": 0, "fail": 4, "canceled": 0}));
    let since = (app.clock_now() + chrono::Duration::hours(1))
        .to_rfc3339()
        .replace('+', "%2B");
    let (status, body) = app
        .get(&format!("/api/v1/app/ws_stats/endpoint/bad/stats?since={since}"))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_range"))
    );
}

#[tokio::test]
async fn send_example_delivers_the_schema_example_or_a_ping_to_that_endpoint_only() {
    let app = TestApp::spawn().await;
    let schema = json!({"1": {"type": "object", "examples": [{"type": "user.created", "data": {"id": "usr_1"}}]}});
    app.post(
        "/api/v1/event-type",
        json!({"name": "user.created", "description": "x", "schemas": schema}),
    )
    .await;
    app.post("/api/v1/event-type", json!({"name": "no.example", "description": "x"}))
        .await;
    app.create_app("ws_ex").await;
    app.create_endpoint("ws_ex", "/ok", json!({"uid": "target"})).await;
    app.create_endpoint("ws_ex", "/status/201", json!({"uid": "bystander"}))
        .await;
    let (status, msg) = app
        .post(
            "/api/v1/app/ws_ex/endpoint/target/send-example",
            json!({"eventType": "user.created"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{msg}");
    assert_eq!(msg["payload"], json!({"type": "user.created", "data": {"id": "usr_1"}}));
    let (_, ping) = app
        .post(
            "/api/v1/app/ws_ex/endpoint/target/send-example",
            json!({"eventType": "svix.ping"}),
        )
        .await;
    assert_eq!(ping["payload"], json!({"success": true}));
    let got = app.receiver.wait_for(2, |r| r.path == "/ok").await;
    assert!(got.iter().any(|r| &r.body[..] == br#"{"success":true}"#));
    app.wait_recorded(2).await;
    assert!(
        app.receiver.requests().iter().all(|r| r.path == "/ok"),
        "only the chosen endpoint receives examples"
    );
    let (status, body) = app
        .post(
            "/api/v1/app/ws_ex/endpoint/target/send-example",
            json!({"eventType": "no.example"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_scheme"))
    );
    let (status, _) = app
        .post(
            "/api/v1/app/ws_ex/endpoint/target/send-example",
            json!({"eventType": "never.defined"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
