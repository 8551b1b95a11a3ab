//! Token management: consumer-portal tokens scoped to one application, logout, expire-all,
//! expiry, and `hookd token create|list|revoke`.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

/// Routes of one application (`{app}`), with a body where they take one.
const APP_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/app/{app}"),
    ("GET", "/api/v1/app/{app}/endpoint"),
    ("POST", "/api/v1/app/{app}/endpoint"),
    ("GET", "/api/v1/app/{app}/endpoint/{ep}"),
    ("PUT", "/api/v1/app/{app}/endpoint/{ep}"),
    ("PATCH", "/api/v1/app/{app}/endpoint/{ep}"),
    ("DELETE", "/api/v1/app/{app}/endpoint/{ep}"),
    ("GET", "/api/v1/app/{app}/endpoint/{ep}/secret"),
    ("POST", "/api/v1/app/{app}/endpoint/{ep}/secret/rotate"),
    ("GET", "/api/v1/app/{app}/endpoint/{ep}/headers"),
    ("PUT", "/api/v1/app/{app}/endpoint/{ep}/headers"),
    ("PATCH", "/api/v1/app/{app}/endpoint/{ep}/headers"),
    ("GET", "/api/v1/app/{app}/endpoint/{ep}/msg"),
    ("GET", "/api/v1/app/{app}/endpoint/{ep}/stats"),
    ("GET", "/api/v1/app/{app}/endpoint/{ep}/attempt-stats"),
    ("POST", "/api/v1/app/{app}/endpoint/{ep}/recover"),
    ("POST", "/api/v1/app/{app}/endpoint/{ep}/replay-missing"),
    ("POST", "/api/v1/app/{app}/endpoint/{ep}/bulk-replay"),
    ("POST", "/api/v1/app/{app}/endpoint/{ep}/send-example"),
    ("GET", "/api/v1/app/{app}/msg"),
    ("POST", "/api/v1/app/{app}/msg"),
    ("POST", "/api/v1/app/{app}/msg/precheck/active"),
    ("GET", "/api/v1/app/{app}/msg/{msg}"),
    ("GET", "/api/v1/app/{app}/msg/{msg}/endpoint"),
    ("POST", "/api/v1/app/{app}/msg/{msg}/endpoint/{ep}/resend"),
    ("GET", "/api/v1/app/{app}/attempt/endpoint/{ep}"),
    ("GET", "/api/v1/app/{app}/attempt/msg/{msg}"),
    ("GET", "/api/v1/app/{app}/listen"),
];

/// Environment-wide routes (and operator-only ones) a portal token may not use, even on its
/// own application.
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("DELETE", "/api/v1/app/{app}/msg/{msg}/content"),
    ("GET", "/api/v1/app"),
    ("POST", "/api/v1/app"),
    ("PUT", "/api/v1/app/{app}"),
    ("PATCH", "/api/v1/app/{app}"),
    ("DELETE", "/api/v1/app/{app}"),
    ("POST", "/api/v1/event-type"),
    ("PUT", "/api/v1/event-type/a.b"),
    ("PATCH", "/api/v1/event-type/a.b"),
    ("DELETE", "/api/v1/event-type/a.b"),
    ("POST", "/api/v1/event-type/import/openapi"),
    ("GET", "/api/v1/background-task"),
    ("POST", "/api/v1/auth/app-portal-access/{app}"),
    ("POST", "/api/v1/auth/app/{app}/expire-all"),
];

/// A valid body for each route, so the answer is about access, not about the body.
fn body_for(method: &str, path: &str) -> serde_json::Value {
    let last = path.rsplit('/').next().unwrap_or_default();
    match (method, last) {
        ("POST", "msg") => json!({"eventType": "a.b", "payload": {}}),
        ("POST", "active") | ("POST", "send-example") => json!({"eventType": "a.b"}),
        ("POST", "recover") | ("POST", "bulk-replay") | ("POST", "replay-missing") => {
            json!({"since": "2026-01-01T00:00:00Z"})
        }
        ("PUT", "headers") | ("PATCH", "headers") => json!({"headers": {"X-Test": "1"}}),
        ("POST", "endpoint") | ("PUT", _) if path.contains("/endpoint") => json!({"url": "https://example.com/hook"}),
        ("PUT", _) if path.contains("/event-type/") => json!({"description": "x"}),
        ("PUT", _) => json!({"name": "x"}),
        ("POST", "app") => json!({"name": "x"}),
        ("POST", "event-type") => json!({"name": "c.d", "description": "x"}),
        ("POST", "openapi") => json!({"spec": {"webhooks": {}}}),
        _ => json!({}),
    }
}

async fn portal_token(app: &TestApp, uid: &str) -> (String, serde_json::Value) {
    let (status, out) = app
        .post(&format!("/api/v1/auth/app-portal-access/{uid}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    (out["token"].as_str().unwrap().to_string(), out)
}

#[tokio::test]
async fn a_portal_token_reaches_only_its_application_and_reads_event_types() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/event-type", json!({"name": "a.b", "description": "x"}))
        .await;
    let mut ids = Vec::new();
    for uid in ["ws_mine", "ws_other"] {
        let created = app.create_app(uid).await;
        let ep = app.create_endpoint(uid, "/ok", json!({})).await;
        let msg = app.send_message(uid, json!({"eventType": "a.b", "payload": {}})).await;
        ids.push((
            created["id"].as_str().unwrap().to_string(),
            ep["id"].as_str().unwrap().to_string(),
            msg["id"].as_str().unwrap().to_string(),
        ));
    }
    let (token, out) = portal_token(&app, "ws_mine").await;
    assert!(token.starts_with("hk_live_"));
    let url = out["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/portal/open?code=hkpl_", app.base)),
        "{out}"
    );
    assert!(
        !url.contains(&token),
        "the link carries a one-time code, not the API token: {out}"
    );

    // Default expiry: 28 days.
    let record = app
        .store
        .find_token(&hookd::auth::hash_token(&token))
        .await
        .unwrap()
        .unwrap();
    let days = (record.expires_at.unwrap() - app.clock_now()).num_hours() as f64 / 24.0;
    assert!((27.9..=28.0).contains(&days), "{days}");

    // Every route of the other application answers 404, by id and by uid.
    let (other_id, other_ep, other_msg) = &ids[1];
    for other in [other_id.as_str(), "ws_other"] {
        for (method, template) in APP_ROUTES {
            let path = template
                .replace("{app}", other)
                .replace("{ep}", other_ep)
                .replace("{msg}", other_msg);
            let (status, body) = app.call_as(&token, method, &path, Some(body_for(method, &path))).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        }
    }
    // Environment-wide routes answer 403; event types can be read.
    let (mine_id, mine_ep, mine_msg) = &ids[0];
    for (method, template) in ADMIN_ROUTES {
        let path = template.replace("{app}", mine_id).replace("{msg}", mine_msg);
        let (status, body) = app.call_as(&token, method, &path, Some(body_for(method, &path))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
    }
    for path in ["/api/v1/event-type", "/api/v1/event-type/a.b"] {
        let (status, _) = app.call_as(&token, "GET", path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    // Its own application works.
    for path in [
        format!("/api/v1/app/{mine_id}"),
        format!("/api/v1/app/ws_mine/endpoint/{mine_ep}"),
        format!("/api/v1/app/ws_mine/msg/{mine_msg}"),
        format!("/api/v1/app/ws_mine/attempt/msg/{mine_msg}"),
    ] {
        let (status, body) = app.call_as(&token, "GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, _) = app
        .call_as(
            &token,
            "POST",
            "/api/v1/app/ws_mine/msg",
            Some(json!({"eventType": "a.b", "payload": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Nothing of the other application changed.
    let (_, eps) = app.get("/api/v1/app/ws_other/endpoint").await;
    assert_eq!(eps["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn logout_and_expire_all_refuse_tokens_at_once() {
    let app = TestApp::spawn().await;
    app.create_app("ws_a").await;
    app.create_app("ws_b").await;
    let (a1, _) = portal_token(&app, "ws_a").await;
    let (a2, _) = portal_token(&app, "ws_a").await;
    let (b1, _) = portal_token(&app, "ws_b").await;
    for t in [&a1, &a2, &b1] {
        assert_eq!(
            app.call_as(t, "GET", "/api/v1/event-type", None).await.0,
            StatusCode::OK
        );
    }

    let (status, _) = app.call_as(&a1, "POST", "/api/v1/auth/logout", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call_as(&a1, "GET", "/api/v1/app/ws_a", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call_as(&a2, "GET", "/api/v1/app/ws_a", None).await.0,
        StatusCode::OK
    );

    let (status, _) = app.post("/api/v1/auth/app/ws_a/expire-all", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call_as(&a2, "GET", "/api/v1/app/ws_a", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call_as(&b1, "GET", "/api/v1/app/ws_b", None).await.0,
        StatusCode::OK,
        "another app's token"
    );
    assert_eq!(app.get("/api/v1/app/ws_a").await.0, StatusCode::OK, "the admin token");

    // expire-all with a grace period: tokens keep working until it ends.
    let (b2, _) = portal_token(&app, "ws_b").await;
    let (status, _) = app
        .post("/api/v1/auth/app/ws_b/expire-all", json!({"expiry": 60}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call_as(&b2, "GET", "/api/v1/app/ws_b", None).await.0,
        StatusCode::OK
    );
    app.advance(Duration::from_secs(61));
    assert_eq!(
        app.call_as(&b2, "GET", "/api/v1/app/ws_b", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // A portal token for an application that does not exist yet can create it.
    let (status, out) = app
        .post(
            "/api/v1/auth/app-portal-access/ws_new",
            json!({"application": {"name": "New", "uid": "ws_new"}, "expiry": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (status, _) = app.post("/api/v1/auth/app-portal-access/ws_none", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .post("/api/v1/auth/app-portal-access/ws_new", json!({"expiry": 5}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::spawn().await;
    let now = app.clock_now();
    let new = hookd::auth::NewToken {
        env: hookd_core::model::Environment::Live,
        app_id: None,
        name: "short-lived",
        expires_at: Some(now + chrono::Duration::seconds(30)),
    };
    let (_, token) = hookd::auth::create_token(app.store.as_ref(), new, now).await.unwrap();
    assert_eq!(app.call_as(&token, "GET", "/api/v1/app", None).await.0, StatusCode::OK);
    app.advance(Duration::from_secs(31));
    let (status, body) = app.call_as(&token, "GET", "/api/v1/app", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], json!("authentication_failed"));
}

#[test]
fn token_cli_creates_lists_and_revokes_directly_or_through_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let hookd = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
            .args(args)
            .env("RUST_LOG", "off")
            .env_remove("HOOKD_TOKEN")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let ok = |args: &[&str]| {
        let (success, stdout, stderr) = hookd(args);
        assert!(success, "{args:?}: {stderr}");
        stdout
    };
    // With no server running, straight on the database.
    let db = ["--data-dir", data_dir];
    let token = ok(&[
        &["token", "create", "--name", "ci deploys", "--expires-in-days", "30"][..],
        &db,
    ]
    .concat())
    .trim()
    .to_string();
    let sandbox = ok(&[
        &["token", "create", "--name", "sandbox", "--environment", "test"][..],
        &db,
    ]
    .concat())
    .trim()
    .to_string();
    let list = ok(&[&["token", "list"][..], &db].concat());
    assert!(
        !list.contains(&token) && !list.contains(&sandbox),
        "secrets are never listed"
    );
    let line = list
        .lines()
        .find(|l| l.ends_with("ci deploys"))
        .expect("listed by name");
    assert!(line.contains(" live ") && line.contains(" admin "), "{line}");
    assert!(!line.contains("never"), "an expiry is shown: {line}");
    let test_only = ok(&[&["token", "list", "--environment", "test"][..], &db].concat());
    assert!(test_only.contains("sandbox") && !test_only.contains("ci deploys"));

    // While hookd serves the embedded database, the CLI goes through its API.
    let server = crate::durability::spawn_serve(&db, &[]);
    let (success, _, stderr) = hookd(&[&["token", "list"][..], &db].concat());
    assert!(!success && stderr.contains("--server"), "a clear hint: {stderr}");
    let remote = ["--server", server.base.as_str(), "--token", token.as_str()];
    let second = ok(&[&["token", "create", "--name", "second"][..], &remote].concat())
        .trim()
        .to_string();
    let list = ok(&[&["token", "list"][..], &remote].concat());
    assert!(list.contains("second") && list.contains("ci deploys"));
    assert!(!list.contains("sandbox"), "an admin token sees its own environment");
    let id = |name: &str| {
        list.lines()
            .find(|l| l.ends_with(name))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_string()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |t: &str| {
        let (base, t) = (server.base.clone(), t.to_string());
        rt.block_on(async move {
            reqwest::Client::new()
                .get(format!("{base}/api/v1/app"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    assert_eq!(get(&second), 200);

    // `--environment` is honoured through the API: a live admin token mints a sandbox token
    // (which works in the sandbox, where an http loopback endpoint is accepted), and lists and
    // revokes the sandbox's tokens.
    let minted = ok(&[
        &["token", "create", "--name", "remote sandbox", "--environment", "test"][..],
        &remote,
    ]
    .concat())
    .trim()
    .to_string();
    assert!(
        minted.starts_with("hk_test_"),
        "a sandbox token, not a live one: {minted}"
    );
    let sandbox_list = ok(&[&["token", "list", "--environment", "test"][..], &remote].concat());
    assert!(
        sandbox_list.contains("remote sandbox") && !sandbox_list.contains("ci deploys"),
        "{sandbox_list}"
    );
    let rt2 = tokio::runtime::Runtime::new().unwrap();
    let base = server.base.clone();
    let (created, answer) = rt2.block_on(async {
        let client = reqwest::Client::new();
        let app = client
            .post(format!("{base}/api/v1/app"))
            .bearer_auth(&minted)
            .json(&serde_json::json!({"name": "Local", "uid": "local"}))
            .send()
            .await
            .unwrap();
        assert_eq!(app.status().as_u16(), 201);
        let endpoint = client
            .post(format!("{base}/api/v1/app/local/endpoint"))
            .bearer_auth(&minted)
            .json(&serde_json::json!({"url": "http://127.0.0.1:3000/webhooks"}))
            .send()
            .await
            .unwrap();
        (endpoint.status().as_u16(), endpoint.text().await.unwrap())
    });
    assert_eq!(created, 201, "the sandbox accepts a local http endpoint: {answer}");
    // A sandbox admin token may not mint a live token: a clear refusal, no token printed.
    let (success, stdout, stderr) = hookd(
        &[
            &["token", "create", "--name", "escalate", "--environment", "live"][..],
            &["--server", server.base.as_str(), "--token", minted.as_str()],
        ]
        .concat(),
    );
    assert!(!success && stdout.trim().is_empty(), "refused: {stdout} {stderr}");
    assert!(stderr.contains("403"), "{stderr}");
    let (success, _, stderr) = hookd(
        &[
            &["token", "list", "--environment", "live"][..],
            &["--server", server.base.as_str(), "--token", minted.as_str()],
        ]
        .concat(),
    );
    assert!(!success && stderr.contains("403"), "{stderr}");
    let sandbox_id = sandbox_list
        .lines()
        .find(|l| l.ends_with("remote sandbox"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    ok(&[&["token", "revoke", &sandbox_id][..], &remote].concat());
    assert_eq!(
        get_with(&server.base, &minted),
        401,
        "the live admin revoked the sandbox token"
    );

    ok(&[&["token", "revoke", &id("second")][..], &remote].concat());
    assert_eq!(get(&second), 401, "refused at once");
    assert_eq!(get(&token), 200, "other tokens are untouched");
    let (success, _, stderr) = hookd(&[&["token", "revoke", &id("second")][..], &remote].concat());
    assert!(!success && stderr.contains("404"), "{stderr}");
    drop(server);

    // Revoked on the database while stopped: refused after the restart.
    ok(&[&["token", "revoke", &id("ci deploys")][..], &db].concat());
    let server = crate::durability::spawn_serve(&db, &[]);
    assert_eq!(get_with(&server.base, &token), 401);
}

fn get_with(base: &str, token: &str) -> u16 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        reqwest::Client::new()
            .get(format!("{base}/api/v1/app"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[tokio::test]
async fn a_revoked_token_gets_no_stored_idempotent_answer_and_new_tokens_are_never_stored() {
    let app = TestApp::spawn().await;
    let (status, created) = app.post("/api/v1/auth/token", json!({"name": "short"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let post = |token: String, key: &'static str, path: &'static str, body: serde_json::Value| {
        let (client, base) = (app.client.clone(), app.base.clone());
        async move {
            client
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = post(token.clone(), "k1", "/api/v1/app", json!({"name": "Once"})).await;
    assert_eq!(first.status().as_u16(), 201);
    let again = post(token.clone(), "k1", "/api/v1/app", json!({"name": "Once"})).await;
    assert_eq!(again.status().as_u16(), 201);
    assert!(again.headers().contains_key("idempotent-replayed"));
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/auth/token/{}", created["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let revoked = post(token, "k1", "/api/v1/app", json!({"name": "Once"})).await;
    assert_eq!(revoked.status().as_u16(), 401, "no replay for a revoked token");

    app.create_app("ws_idem").await;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let resp = post(
            app.token.clone(),
            "same",
            "/api/v1/auth/app-portal-access/ws_idem",
            json!({}),
        )
        .await;
        assert_eq!(resp.status().as_u16(), 200);
        assert!(!resp.headers().contains_key("idempotent-replayed"));
        let body: serde_json::Value = resp.json().await.unwrap();
        tokens.push(body["token"].as_str().unwrap().to_string());
    }
    assert_ne!(
        tokens[0], tokens[1],
        "answers carrying tokens are not stored for replay"
    );
}
