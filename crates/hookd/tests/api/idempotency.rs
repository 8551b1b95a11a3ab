//! `idempotency-key` on POST: replay of the first success, per token, failures not kept.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

async fn post_with_key(app: &TestApp, token: &str, path: &str, key: &str, body: Value) -> (u16, Value, bool) {
    let resp = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let replayed = resp.headers().get("idempotent-replayed").is_some();
    (status, resp.json().await.unwrap(), replayed)
}

#[tokio::test]
async fn a_repeated_key_replays_the_first_response_and_does_the_work_once() {
    let app = TestApp::spawn().await;
    app.create_app("ws_idem").await;
    let body = json!({"eventType": "a.b", "payload": {"n": 1}});
    let (s1, first, replayed1) =
        post_with_key(&app, &app.token, "/api/v1/app/ws_idem/msg", "key-1", body.clone()).await;
    let (s2, second, replayed2) =
        post_with_key(&app, &app.token, "/api/v1/app/ws_idem/msg", "key-1", body.clone()).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(first, second, "same status and body");
    assert!(!replayed1 && replayed2);
    let (_, list) = app.get("/api/v1/app/ws_idem/msg").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "one message for two calls");
    let (_, third, _) = post_with_key(&app, &app.token, "/api/v1/app/ws_idem/msg", "key-2", body).await;
    assert_ne!(third["id"], first["id"], "a new key is a new request");
}

#[tokio::test]
async fn keys_are_scoped_per_token() {
    let app = TestApp::spawn().await;
    let other = app.new_token().await;
    let (s1, a, _) = post_with_key(&app, &app.token, "/api/v1/app", "same", json!({"name": "A"})).await;
    let (s2, b, replayed) = post_with_key(&app, &other, "/api/v1/app", "same", json!({"name": "B"})).await;
    assert_eq!((s1, s2), (201, 201));
    assert!(!replayed);
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn failed_requests_are_not_kept_so_the_key_can_be_retried() {
    let app = TestApp::spawn().await;
    let (s1, body, _) = post_with_key(&app, &app.token, "/api/v1/app", "retry-me", json!({"name": ""})).await;
    assert_eq!(s1, 422, "{body}");
    let (s2, body, replayed) =
        post_with_key(&app, &app.token, "/api/v1/app", "retry-me", json!({"name": "Fixed"})).await;
    assert_eq!(s2, 201, "{body}");
    assert!(!replayed);
    assert_eq!(body["name"], "Fixed");
}

#[tokio::test]
async fn concurrent_duplicates_create_one_resource() {
    let app = TestApp::spawn().await;
    app.create_app("ws_race").await;
    let body = json!({"eventType": "a.b", "payload": {}});
    let calls = (0..8).map(|_| post_with_key(&app, &app.token, "/api/v1/app/ws_race/msg", "race", body.clone()));
    let results = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .filter(|(s, _, _)| *s == 202)
        .map(|(_, b, _)| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "every success carries the one message: {results:?}");
    assert!(results.iter().all(|(s, _, _)| *s == 202 || *s == 409), "{results:?}");
    let (_, list) = app.get("/api/v1/app/ws_race/msg").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn get_requests_ignore_the_header_and_status_is_unchanged() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(format!("{}/api/v1/app", app.base))
        .bearer_auth(&app.token)
        .header("idempotency-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_key_is_replayed_for_24_hours_and_then_free_again() {
    let app = TestApp::spawn().await;
    let (_, first, _) = post_with_key(&app, &app.token, "/api/v1/app", "daily", json!({"name": "Day one"})).await;
    app.clock.advance(std::time::Duration::from_secs(23 * 3600));
    let (_, again, replayed) =
        post_with_key(&app, &app.token, "/api/v1/app", "daily", json!({"name": "Day one"})).await;
    assert!(replayed);
    assert_eq!(again["id"], first["id"]);
    app.clock.advance(std::time::Duration::from_secs(2 * 3600));
    let (status, later, replayed) =
        post_with_key(&app, &app.token, "/api/v1/app", "daily", json!({"name": "Day two"})).await;
    assert_eq!(status, 201);
    assert!(!replayed, "after 24 hours the key starts a new request");
    assert_ne!(later["id"], first["id"]);
}

#[tokio::test]
async fn an_unreadable_or_oversized_key_is_refused_not_ignored() {
    let app = TestApp::spawn().await;
    for key in [
        reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        "k".repeat(257).parse().unwrap(),
    ] {
        let resp = app
            .client
            .post(format!("{}/api/v1/app", app.base))
            .bearer_auth(&app.token)
            .header("idempotency-key", key)
            .json(&json!({"name": "A"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "invalid_idempotency_key");
    }
    let (_, list) = app.get("/api/v1/app").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "nothing was created");
}

/// Counts the rows of `table` and whether `needle` appears anywhere in the embedded database's
/// files, after a checkpoint (the write-ahead log folded in).
fn embedded_db(app: &TestApp, table: &str, needle: &str) -> (i64, bool) {
    let path = app.data_dir().join("hookd.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    let rows: i64 = conn
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap();
    let mut found = false;
    for suffix in ["", "-wal"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", path.display())) {
            found |= bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        }
    }
    (rows, found)
}

/// Stored answers keep no copy of a message's payload: a replay reads it again (exactly as
/// published, or `{"expired":true}` once expunged), so after `expunge-all-contents` no byte of
/// it is left in the database; and expired keys are deleted by the retention pass.
#[tokio::test]
async fn stored_answers_hold_no_payload_and_expired_keys_are_deleted() {
    if std::env::var("HOOKD_TEST_BACKEND").as_deref() == Ok("postgres") {
        return; // reads the embedded database's file
    }
    let app = TestApp::spawn().await;
    app.create_app("ws_idem").await;
    let body = json!({"eventType": "a.b", "payload": {"note": "PAYLOAD-XYZZY-7", "n":  1}});
    let (status, first, _) = post_with_key(&app, &app.token, "/api/v1/app/ws_idem/msg", "pay", body.clone()).await;
    assert_eq!(status, 202);
    let (status, again, replayed) =
        post_with_key(&app, &app.token, "/api/v1/app/ws_idem/msg", "pay", body.clone()).await;
    assert!(replayed && status == 202);
    assert_eq!(again, first, "the replay carries the payload, read again");
    let (keys, found) = embedded_db(&app, "idempotency", "PAYLOAD-XYZZY-7");
    assert_eq!(keys, 1);
    assert!(found, "the message itself holds the payload (the search works)");

    let (status, _) = app
        .post("/api/v1/app/ws_idem/msg/expunge-all-contents", json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, found) = embedded_db(&app, "idempotency", "PAYLOAD-XYZZY-7");
    assert!(!found, "no byte of the payload is left in the database");
    let (_, expunged, replayed) = post_with_key(&app, &app.token, "/api/v1/app/ws_idem/msg", "pay", body).await;
    assert!(replayed);
    assert_eq!(expunged["payload"], json!({"expired": true}));
    assert_eq!(expunged["id"], first["id"]);

    app.clock.advance(std::time::Duration::from_secs(25 * 3600));
    hookd::retention::run_once(app.store.as_ref(), app.clock.as_ref())
        .await
        .unwrap();
    let (keys, _) = embedded_db(&app, "idempotency", "PAYLOAD-XYZZY-7");
    assert_eq!(keys, 0, "expired keys are deleted");
}
