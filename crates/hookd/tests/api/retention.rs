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
async fn payloads_outlive_their_retention_until_their_retries_end_and_expunged_ones_end_failed() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![3 * 86_400]).await;
    app.create_app("ws_ret").await;
    app.create_endpoint("ws_ret", "/status/500", json!({})).await;
    let short = app
        .send_message(
            "ws_ret",
            json!({"eventType": "a.b", "payload": {"n": 1}, "payloadRetentionPeriod": 1}),
        )
        .await;
    let short_id = short["id"].as_str().unwrap().to_string();
    let long = app
        .send_message("ws_ret", json!({"eventType": "a.b", "payload": {"n": 2}}))
        .await;
    app.wait_recorded(2).await;

    // Two days on, the short message's retention has ended but its retry (due on day 3) still
    // needs the payload: retention never starves delivery.
    app.clock.advance(Duration::from_secs(2 * 86_400));
    let expired = hookd::retention::run_once(app.store.as_ref(), app.clock.as_ref())
        .await
        .unwrap();
    assert_eq!(expired, 0, "still needed by a pending retry");
    let (_, got) = app.get(&format!("/api/v1/app/ws_ret/msg/{short_id}")).await;
    assert_eq!(got["payload"], json!({"n": 1}));

    // The retry is sent with the payload; the delivery then ends failed and the payload goes.
    app.advance(Duration::from_secs(2 * 86_400));
    app.wait_recorded(4).await;
    let sent: Vec<String> = app
        .receiver
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(
        sent.iter().filter(|b| b.as_str() == r#"{"n":1}"#).count(),
        2,
        "the first try and the retry: {sent:?}"
    );
    let expired = hookd::retention::run_once(app.store.as_ref(), app.clock.as_ref())
        .await
        .unwrap();
    assert_eq!(expired, 1);
    let (_, got) = app.get(&format!("/api/v1/app/ws_ret/msg/{short_id}")).await;
    assert_eq!(got["payload"], json!({"expired": true}));
    let (_, kept) = app
        .get(&format!("/api/v1/app/ws_ret/msg/{}", long["id"].as_str().unwrap()))
        .await;
    assert_eq!(kept["payload"], json!({"n": 2}), "the default 90 days still run");

    // A payload removed on purpose while a retry is pending: nothing is sent, the delivery
    // ends failed with the reason.
    let gone = app
        .send_message("ws_ret", json!({"eventType": "a.b", "payload": {"n": 3}}))
        .await;
    let gone_id = gone["id"].as_str().unwrap().to_string();
    app.wait_recorded(5).await;
    let (status, _) = app
        .call("DELETE", &format!("/api/v1/app/ws_ret/msg/{gone_id}/content"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.advance(Duration::from_secs(4 * 86_400));
    app.wait_recorded(6).await;
    let sent_n3 = app
        .receiver
        .requests()
        .iter()
        .filter(|r| r.body.as_ref() == br#"{"n":3}"#)
        .count();
    assert_eq!(sent_n3, 1, "only the first try");
    let (_, dest) = app.get(&format!("/api/v1/app/ws_ret/msg/{gone_id}/endpoint")).await;
    assert_eq!(
        (
            dest["data"][0]["statusText"].clone(),
            dest["data"][0]["nextAttempt"].clone()
        ),
        (json!("fail"), json!(null))
    );
}

#[tokio::test]
async fn bulk_expunge_and_expunge_all_contents_remove_payloads() {
    let app = TestApp::spawn().await;
    app.create_app("ws_bx").await;
    let ep = app.create_endpoint("ws_bx", "/ok", json!({})).await;
    let m1 = app
        .send_message("ws_bx", json!({"eventType": "a.b", "payload": {"secret": 1}}))
        .await;
    let m2 = app
        .send_message(
            "ws_bx",
            json!({"eventType": "a.b", "eventId": "evt_two", "payload": {"secret": 2}}),
        )
        .await;
    let m3 = app
        .send_message("ws_bx", json!({"eventType": "a.b", "payload": {"secret": 3}}))
        .await;
    let id = |m: &serde_json::Value| m["id"].as_str().unwrap().to_string();

    let (status, out) = app
        .post(
            "/api/v1/app/ws_bx/msg/bulk-expunge",
            json!({"ids": [id(&m1), "evt_two", "msg_missing"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        out["results"],
        json!({id(&m1): "expunged", "evt_two": "expunged", "msg_missing": "not-found"})
    );
    for m in [&m1, &m2] {
        let (_, got) = app.get(&format!("/api/v1/app/ws_bx/msg/{}", id(m))).await;
        assert_eq!(got["payload"], json!({"expired": true}));
    }
    let (_, got) = app.get(&format!("/api/v1/app/ws_bx/msg/{}", id(&m3))).await;
    assert_eq!(
        got["payload"],
        json!({"secret": 3}),
        "an unnamed message keeps its payload"
    );
    let too_many: Vec<String> = (0..251).map(|i| format!("msg_{i}")).collect();
    let (status, _) = app
        .post("/api/v1/app/ws_bx/msg/bulk-expunge", json!({"ids": too_many}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, task) = app.post("/api/v1/app/ws_bx/msg/expunge-all-contents", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    assert_eq!(task["task"], json!("application.purge_content"));
    assert_eq!(task["status"], json!("finished"));
    assert_eq!(task["data"]["messagesPurged"], json!(1));
    let (_, fetched) = app
        .get(&format!("/api/v1/background-task/{}", task["id"].as_str().unwrap()))
        .await;
    assert_eq!(fetched["id"], task["id"]);
    let (_, got) = app.get(&format!("/api/v1/app/ws_bx/msg/{}", id(&m3))).await;
    assert_eq!(got["payload"], json!({"expired": true}));
    let (status, body) = app
        .post(
            &format!(
                "/api/v1/app/ws_bx/msg/{}/endpoint/{}/resend",
                id(&m3),
                ep["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("missing_payload"))
    );
}

#[tokio::test]
async fn pruning_deletes_old_finished_messages_and_keeps_those_still_being_delivered() {
    let app = TestApp::spawn().await;
    app.create_app("ws_pr").await;
    app.create_endpoint("ws_pr", "/ok", json!({"filterTypes": null, "channels": ["ok"]}))
        .await;
    app.create_endpoint("ws_pr", "/status/500", json!({"channels": ["failing"]}))
        .await;
    let done = app
        .send_message("ws_pr", json!({"eventType": "a.b", "channels": ["ok"], "payload": {}}))
        .await;
    let retrying = app
        .send_message(
            "ws_pr",
            json!({"eventType": "a.b", "channels": ["failing"], "payload": {}}),
        )
        .await;
    app.wait_recorded(2).await;
    app.advance(std::time::Duration::from_secs(2 * 86_400 + 5));
    // Two days on, the failing delivery has a retry scheduled again after its next attempt.
    let young = app
        .send_message("ws_pr", json!({"eventType": "a.b", "channels": ["ok"], "payload": {}}))
        .await;
    app.wait_recorded(4).await;
    let deleted = hookd::retention::prune(app.store.as_ref(), app.clock.as_ref(), 1)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let get = |m: &serde_json::Value| format!("/api/v1/app/ws_pr/msg/{}", m["id"].as_str().unwrap());
    assert_eq!(app.get(&get(&done)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&get(&retrying)).await.0,
        StatusCode::OK,
        "still being delivered"
    );
    assert_eq!(app.get(&get(&young)).await.0, StatusCode::OK, "younger than a day");
    let (_, attempts) = app
        .get(&format!(
            "/api/v1/app/ws_pr/attempt/msg/{}",
            done["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        attempts["data"].as_array().is_none_or(|a| a.is_empty()),
        "its attempts went with it: {attempts}"
    );
}

#[test]
fn prune_cli_deletes_in_batches_on_the_embedded_database() {
    use hookd_core::id::IdKind;
    use hookd_core::model::{Application, Environment, Message};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let old = chrono::Utc::now() - chrono::Duration::days(40);
    let open = || {
        hookd_store_sqlite::SqliteStore::open(&hookd_store_sqlite::SqliteOptions {
            path: path.clone(),
            synchronous: hookd_store_sqlite::Synchronous::Full,
            cache_mib: hookd_store_sqlite::DEFAULT_CACHE_MIB,
        })
        .unwrap()
    };
    let app_id = rt.block_on(async {
        let store = open();
        let app = Application {
            id: IdKind::Application.generate(old, &mut rand::thread_rng()),
            env: Environment::Live,
            uid: None,
            name: "old".into(),
            metadata: Default::default(),
            throttle_rate: None,
            created_at: old,
            updated_at: old,
        };
        hookd_store::CatalogStore::create_application(&store, &app)
            .await
            .unwrap();
        for age in [40, 35, 5] {
            let at = chrono::Utc::now() - chrono::Duration::days(age);
            let m = Message {
                id: IdKind::Message.generate(at, &mut rand::thread_rng()),
                app_id: app.id.clone(),
                event_id: None,
                event_type: "a.b".into(),
                channels: None,
                payload: Some("{}".into()),
                created_at: at,
                expires_at: at + chrono::Duration::days(90),
            };
            hookd_store::MessageStore::create_message(&store, &m, &[])
                .await
                .unwrap();
        }
        app.id
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["prune", "--older-than", "30", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "deleted 2 messages older than 30 days"
    );
    let left = rt.block_on(async {
        let store = open();
        hookd_store::MessageStore::list_messages(
            &store,
            &app_id,
            &hookd_store::MessageFilter::default(),
            &hookd_store::PageRequest::first(10, false),
        )
        .await
        .unwrap()
        .items
        .len()
    });
    assert_eq!(left, 1);
}
