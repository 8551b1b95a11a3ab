//! Access control as a matrix: every operation of hookd's own API description, and every
//! dashboard and portal page of one tenant, tried with each credential that must not reach it.
//! Each answer must be a refusal (401, 403 or 404) and must not carry anything of the tenant:
//! not its ids, its uid, its secret or its payloads, in the body or in a header. (Event types
//! are the platform's catalog, which every token of the environment may read.)

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{LogCapture, TestApp};
use crate::web::{browser, portal, sign_in};

/// What belongs to the tenant under attack, and must appear in no refused answer.
struct Victim {
    app: String,
    endpoint: String,
    /// A polling endpoint (a destination).
    poller: String,
    message: String,
    attempt: String,
    task: String,
    token_id: String,
    /// The token itself (a secret, unlike its id).
    token: String,
    secret: String,
}

impl Victim {
    fn marks(&self) -> Vec<&str> {
        vec![
            &self.app,
            &self.endpoint,
            &self.poller,
            &self.message,
            &self.attempt,
            &self.task,
            &self.token_id,
            &self.secret,
            "victim-uid",
            "victim-feed",
            "VICTIM-PAYLOAD",
        ]
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{app_id}", &self.app)
            .replace("{endpoint_id}", &self.endpoint)
            .replace("{destination_id}", &self.poller)
            .replace("{sink_id}", &self.poller)
            .replace("{consumer_id}", "victim-consumer")
            .replace("{msg_id}", &self.message)
            .replace("{attempt_id}", &self.attempt)
            .replace("{task_id}", &self.task)
            .replace("{token_id}", &self.token_id)
            .replace("{name}", "victim.only")
    }

    /// Panics when `text` (a body or a header) holds anything of the victim's.
    fn assert_absent(&self, what: &str, text: &str) {
        for mark in self.marks() {
            assert!(!text.contains(mark), "{what} leaks {mark}: {text}");
        }
    }
}

async fn victim(app: &TestApp) -> Victim {
    let (status, out) = app
        .post(
            "/api/v1/event-type",
            json!({"name": "victim.only", "description": "an event type of the live catalog"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let created = app.create_app("victim-uid").await;
    let endpoint = app.create_endpoint("victim-uid", "/ok", json!({})).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    let (status, poller) = app
        .post(
            "/api/v1/app/victim-uid/destination",
            json!({"type": "pollingEndpoint", "uid": "victim-feed"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{poller}");
    let msg = app
        .send_message(
            "victim-uid",
            json!({"eventType": "victim.only", "payload": {"note": "VICTIM-PAYLOAD"}}),
        )
        .await;
    let msg_id = msg["id"].as_str().unwrap().to_string();
    app.wait_delivery_status("victim-uid", &msg_id, "success").await;
    let attempts = app.get(&format!("/api/v1/app/victim-uid/attempt/msg/{msg_id}")).await.1;
    let secret = app
        .get(&format!("/api/v1/app/victim-uid/endpoint/{endpoint_id}/secret"))
        .await
        .1;
    let (status, task) = app
        .post(
            &format!("/api/v1/app/victim-uid/endpoint/{endpoint_id}/recover"),
            json!({"since": (app.clock_now() - chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    let (status, token) = app
        .post("/api/v1/auth/token", json!({"name": "victim's deploys"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    Victim {
        app: created["id"].as_str().unwrap().to_string(),
        endpoint: endpoint_id,
        poller: poller["id"].as_str().unwrap().to_string(),
        message: msg_id,
        attempt: attempts["data"][0]["id"].as_str().unwrap().to_string(),
        task: task["id"].as_str().unwrap().to_string(),
        token_id: token["id"].as_str().unwrap().to_string(),
        token: token["token"].as_str().unwrap().to_string(),
        secret: secret["key"].as_str().unwrap().to_string(),
    }
}

/// Every operation hookd describes, as (method, path template).
fn operations() -> Vec<(String, String)> {
    let spec: Value =
        serde_json::from_str(include_str!("../../openapi/hookd-api.json")).expect("hookd's API description");
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(ops.len() >= 50, "the description lists every route: {}", ops.len());
    ops
}

/// Routes anyone may call: health for load balancers, the API description, metrics (which
/// carry no tenant's data and take a token of their own when configured).
const PUBLIC: &[&str] = &[
    "/api/v1/health",
    "/api/v1/health/ping",
    "/api/v1/openapi.json",
    "/metrics",
];

/// A body that passes each route's checks, so the answer is about access.
fn body_for(method: &str, path: &str) -> Option<Value> {
    if matches!(method, "GET" | "DELETE") {
        return None;
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    Some(match (method, last) {
        ("POST", "msg") => json!({"eventType": "victim.only", "payload": {}}),
        ("POST", "active") | ("POST", "send-example") => json!({"eventType": "victim.only"}),
        ("POST", "recover" | "bulk-replay" | "replay-missing") => json!({"since": "2026-12-01T00:00:00Z"}),
        ("PUT" | "PATCH", "headers") => json!({"headers": {"X-Test": "1"}}),
        ("POST", "bulk-expunge") => json!({"ids": ["msg_x"]}),
        ("POST", "seek") => json!({"after": "2026-12-01T00:00:00Z"}),
        (_, "transformation") => json!({"code": null}),
        (_, _) if path.contains("/destination") => json!({"type": "pollingEndpoint", "config": {}}),
        ("POST", "expunge-all-contents" | "expire-all" | "logout" | "rotate") => json!({}),
        (_, _) if path.contains("/endpoint") => json!({"url": "https://example.com/hook"}),
        (_, _) if path.contains("/event-type/import") => json!({"spec": {"webhooks": {}}}),
        (_, _) if path.contains("/event-type") => json!({"name": "other.type", "description": "x"}),
        ("POST", "token") => json!({"name": "x"}),
        _ => json!({"name": "x"}),
    })
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = browser().request(method, format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers: String = r
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("")))
        .collect();
    let text = r.text().await.unwrap();
    (status, format!("{headers}\n{text}"))
}

#[tokio::test]
async fn no_credential_but_the_tenants_own_reaches_any_api_route_and_no_refusal_leaks_its_data() {
    let logs = LogCapture::start();
    let app = TestApp::spawn().await;
    let victim = victim(&app).await;
    let now = app.clock_now();

    // Credentials that must not work at all.
    let expired = hookd::auth::create_token(
        app.store.as_ref(),
        hookd::auth::NewToken {
            env: hookd_core::model::Environment::Live,
            app_id: None,
            name: "expired",
            expires_at: Some(now + chrono::Duration::seconds(30)),
        },
        now,
    )
    .await
    .unwrap()
    .1;
    let (_, revoked) = app.post("/api/v1/auth/token", json!({"name": "revoked"})).await;
    let revoked_token = revoked["token"].as_str().unwrap().to_string();
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/auth/token/{}", revoked["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.advance(std::time::Duration::from_secs(60));
    // Credentials that work, elsewhere: another application's portal token, and the
    // sandbox's admin token.
    app.create_app("attacker").await;
    let (_, portal) = app.post("/api/v1/auth/app-portal-access/attacker", json!({})).await;
    let other_app = portal["token"].as_str().unwrap().to_string();
    let sandbox = app.test_token().await;

    for (method, template) in operations() {
        if PUBLIC.contains(&template.as_str()) {
            continue;
        }
        let path = victim.fill(&template);
        let what = |who: &str| format!("{method} {template} as {who}");
        for (who, token) in [
            ("no token", None),
            ("a made-up token", Some("hk_live_0123456789abcdefghijABCDEFGHIJ01")),
            ("an expired token", Some(expired.as_str())),
            ("a revoked token", Some(revoked_token.as_str())),
        ] {
            let (status, text) = call(&app, token, &method, &path, body_for(&method, &path)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{}: {text}", what(who));
            victim.assert_absent(&what(who), &text);
        }
        if template == "/api/v1/auth/logout" {
            continue; // ends the caller's own token: nothing of anyone else's to reach
        }
        // Another application's token: refused, except reading the environment's catalog.
        let (status, text) = call(&app, Some(&other_app), &method, &path, body_for(&method, &path)).await;
        let reads_catalog = method == "GET" && template.starts_with("/api/v1/event-type");
        if !(reads_catalog && status.is_success()) {
            assert!(
                matches!(status.as_u16(), 403 | 404),
                "{}: {status} {text}",
                what("another application's token")
            );
        }
        victim.assert_absent(&what("another application's token"), &text);
        // The sandbox's admin token administers its own environment: it may list and create
        // there (a `PUT` to an unknown application creates one in the sandbox, as in Svix),
        // and finds nothing of the live tenant.
        let (status, text) = call(&app, Some(&sandbox), &method, &path, body_for(&method, &path)).await;
        assert!(
            status.is_success() || matches!(status.as_u16(), 403 | 404),
            "{}: {status} {text}",
            what("the sandbox's admin token")
        );
        victim.assert_absent(&what("the sandbox's admin token"), &text);
    }
    // Nothing of the live tenant was changed by any of it.
    let endpoint = app
        .get(&format!("/api/v1/app/victim-uid/endpoint/{}", victim.endpoint))
        .await
        .1;
    assert_eq!(endpoint["url"], json!(app.receiver.url("/ok")));
    let secret = app
        .get(&format!("/api/v1/app/victim-uid/endpoint/{}/secret", victim.endpoint))
        .await
        .1;
    assert_eq!(secret["key"], json!(victim.secret));
    let live_app = app.get("/api/v1/app/victim-uid").await.1;
    assert_eq!(live_app["name"], "App victim-uid", "{live_app}");
    let message = app
        .get(&format!("/api/v1/app/victim-uid/msg/{}", victim.message))
        .await
        .1;
    assert_eq!(
        message["payload"]["note"], "VICTIM-PAYLOAD",
        "its content is still there: {message}"
    );
    let poller = app.get("/api/v1/app/victim-uid/destination/victim-feed").await.1;
    assert_eq!(
        (poller["id"].as_str(), poller["status"].as_str()),
        (Some(victim.poller.as_str()), Some("enabled")),
        "{poller}"
    );
    let polled = app
        .get(&format!("/api/v1/app/victim-uid/attempt/endpoint/{}", victim.poller))
        .await
        .1;
    assert_eq!(
        polled["data"],
        json!([]),
        "nobody else polled the tenant's messages: {polled}"
    );

    // Everything logged meanwhile, at every level, holds no secret: not the endpoint's signing
    // secret, no token tried (working or not), and no payload.
    let logged = logs.text();
    assert!(logged.contains(&victim.message), "the capture saw hookd's own logs");
    for (what, secret) in [
        ("the endpoint's secret", victim.secret.as_str()),
        ("the admin token", app.token.as_str()),
        ("the victim's new token", victim.token.as_str()),
        ("another application's token", other_app.as_str()),
        ("the sandbox's token", sandbox.as_str()),
        ("an expired token", expired.as_str()),
        ("a revoked token", revoked_token.as_str()),
        ("a payload", "VICTIM-PAYLOAD"),
    ] {
        assert!(!logged.contains(secret), "the logs hold {what}");
    }
}

/// The tenant's dashboard pages and forms, and the same under `/portal`.
fn pages(v: &Victim) -> Vec<(&'static str, String)> {
    let app = format!("/apps/{}", v.app);
    let ep = format!("{app}/endpoints/{}", v.endpoint);
    let msg = format!("{app}/messages/{}", v.message);
    vec![
        ("GET", app.clone()),
        ("GET", format!("{app}/endpoints/new")),
        ("POST", format!("{app}/endpoints")),
        ("GET", ep.clone()),
        ("GET", format!("{ep}/edit")),
        ("POST", format!("{ep}/edit")),
        ("GET", format!("{ep}/failed")),
        ("POST", format!("{ep}/failed/retry")),
        ("POST", format!("{ep}/failed/retry-all")),
        ("POST", format!("{ep}/failed/review")),
        ("POST", format!("{ep}/disable")),
        ("POST", format!("{ep}/delete")),
        ("POST", format!("{ep}/reveal")),
        ("POST", format!("{ep}/rotate")),
        ("POST", format!("{ep}/test")),
        ("POST", format!("{ep}/recover")),
        ("POST", format!("{ep}/enable-replay")),
        ("GET", format!("{app}/messages")),
        ("GET", msg.clone()),
        ("POST", format!("{msg}/resend")),
        ("GET", format!("/tasks/{}", v.task)),
    ]
}

/// A browser session's cookie and the CSRF token of its forms (read from a page of its own).
async fn with_csrf(app: &TestApp, cookie: String, own_page: &str) -> (String, String) {
    let (_, _, html) = crate::web::page(app, own_page, &cookie).await;
    let csrf = crate::web::csrf(&html);
    (cookie, csrf)
}

#[tokio::test]
async fn no_other_session_reaches_a_tenants_dashboard_or_portal_pages_and_none_leaks_them() {
    let app = TestApp::spawn().await;
    let victim = victim(&app).await;
    app.create_app("attacker").await;
    let sandbox = with_csrf(&app, sign_in(&app, &app.test_token().await).await, "/catalog").await;
    let other_portal = with_csrf(&app, portal(&app, "attacker", json!({})).await, "/portal/catalog").await;
    let own_read_only = with_csrf(
        &app,
        portal(&app, "victim-uid", json!({"readOnly": true})).await,
        "/portal/catalog",
    )
    .await;

    for (method, path) in pages(&victim) {
        for root in ["", "/portal"] {
            let path = format!("{root}{path}");
            // The answer's headers and body as one text, to look for leaks in both.
            let send = |cookie: String, csrf: String| {
                let (path, app) = (path.clone(), &app);
                async move {
                    let form = [
                        ("csrf", csrf.as_str()),
                        ("since", "2026-12-01T00:00"),
                        ("event_type", "svix.ping"),
                    ];
                    let (status, headers, body) = match method {
                        "GET" => crate::web::page(app, &path, &cookie).await,
                        _ => crate::web::post_form(app, &path, &cookie, &form).await,
                    };
                    let headers: String = headers.iter().map(|(k, v)| format!("{k}: {v:?}\n")).collect();
                    (status, format!("{headers}\n{body}"))
                }
            };
            // No session: the dashboard asks to sign in, the portal for a new link.
            let (status, text) = send(String::new(), String::new()).await;
            let expected = if root.is_empty() { 303 } else { 401 };
            assert_eq!(status.as_u16(), expected, "{method} {path} without a session");
            victim.assert_absent(&format!("{method} {path} without a session"), &text);
            // The sandbox's operator (on dashboard paths) and another application's portal
            // session (on portal paths) find nothing.
            let (who, (cookie, csrf)) = if root.is_empty() {
                ("the sandbox's operator", sandbox.clone())
            } else {
                ("another application's portal", other_portal.clone())
            };
            let (status, text) = send(cookie, csrf).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path} as {who}: {text}");
            victim.assert_absent(&format!("{method} {path} as {who}"), &text);
            // The tenant's own read-only portal may look, never change.
            if !root.is_empty() && method == "POST" && !path.ends_with("/reveal") {
                let (status, _) = send(own_read_only.0.clone(), own_read_only.1.clone()).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} read-only");
            }
        }
    }
    let endpoint = app
        .get(&format!("/api/v1/app/victim-uid/endpoint/{}", victim.endpoint))
        .await
        .1;
    assert_eq!(endpoint["disabled"], false, "nothing changed: {endpoint}");
}
