//! The consumer portal: a link from `app-portal-access` opens once, reaches one application of
//! one environment, and each capability it grants (and only those) works.

use reqwest::header::SET_COOKIE;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::web::{browser, cookies, csrf, link, location, on_loopback, open_link, page, portal, post_form};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_portal_link_opens_once_and_reaches_only_its_application_in_its_environment() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/v1/event-type",
        json!({"name": "invoice.paid", "description": "x"}),
    )
    .await;
    let mine = id(&app.create_app("ws_mine").await);
    let other = id(&app.create_app("ws_other").await);
    let my_ep = id(&app.create_endpoint("ws_mine", "/ok", json!({})).await);
    let other_ep = id(&app
        .create_endpoint("ws_other", "/ok", json!({"description": "theirs"}))
        .await);
    let other_msg = id(&app
        .send_message(
            "ws_other",
            json!({"eventType": "invoice.paid", "payload": {"secret": "of-other"}}),
        )
        .await);
    // The sandbox has an application with the same uid.
    let test_token = app.test_token().await;
    let (status, sandbox) = app
        .call_as(
            &test_token,
            "POST",
            "/api/v1/app",
            Some(json!({"name": "sandbox twin", "uid": "ws_mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sandbox}");
    let sandbox_id = id(&sandbox);

    let url = link(&app, "ws_mine", json!({})).await;
    assert!(
        url.starts_with(&format!("{}/portal/open?code=hkpl_", app.base)),
        "{url}"
    );
    // Loading the link spends nothing (a chat preview may fetch it); its form does.
    let r = browser().get(on_loopback(&app, &url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["referrer-policy"],
        "same-origin",
        "the code is never sent to another site"
    );
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let r = open_link(&app, &url).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(r.headers()),
        format!("/portal/apps/{mine}"),
        "the code leaves the address bar"
    );
    let line = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(line.starts_with("hookd_portal=hkds_"), "{line}");
    assert!(
        line.contains("Path=/portal; HttpOnly; SameSite=Lax"),
        "over http the cookie is sent on the link's own navigation: {line}"
    );
    let cookie = cookies(r.headers());
    let secret = cookie.split(';').next().unwrap().trim_start_matches("hookd_portal=");
    let stored = app
        .store
        .find_session(&hookd::auth::hash_token(secret), app.clock_now())
        .await
        .unwrap()
        .expect("the session is stored by the hash of its secret");
    assert_eq!(stored.app_id.as_deref(), Some(mine.as_str()));

    // The link works once.
    let again = open_link(&app, &url).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(again.text().await.unwrap().contains("expired"));

    let (status, _, html) = page(&app, &format!("/portal/apps/{mine}"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&my_ep) && !html.contains("Applications</a>"), "{html}");
    let (status, _, _) = page(&app, "/portal/", &cookie).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Nothing of another application, by id or uid, nor of the sandbox's twin.
    for path in [
        format!("/portal/apps/{other}"),
        "/portal/apps/ws_other".to_string(),
        format!("/portal/apps/{other}/endpoints/{other_ep}"),
        format!("/portal/apps/{other}/messages"),
        format!("/portal/apps/{other}/messages/{other_msg}"),
        format!("/portal/apps/{other}/endpoints/{other_ep}/failed"),
        format!("/portal/apps/{mine}/endpoints/{other_ep}"),
        format!("/portal/apps/{mine}/messages/{other_msg}"),
        format!("/portal/apps/{sandbox_id}"),
    ] {
        let (status, _, body) = page(&app, &path, &cookie).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(
            !body.contains("of-other") && !body.contains("theirs"),
            "{path} leaks: {body}"
        );
    }
    let token = csrf(&html);
    for action in ["disable", "delete", "reveal", "rotate"] {
        let path = format!("/portal/apps/{other}/endpoints/{other_ep}/{action}");
        let (status, _, _) = post_form(&app, &path, &cookie, &[("csrf", &token)]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let other_endpoint = app.get(&format!("/api/v1/app/ws_other/endpoint/{other_ep}")).await.1;
    assert_eq!(other_endpoint["disabled"], false);

    // The portal session is not a dashboard session, under either cookie name.
    for as_dashboard in [cookie.clone(), format!("hookd_session={secret}")] {
        let (status, headers, _) = page(&app, &format!("/apps/{mine}"), &as_dashboard).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location(&headers), "/login");
    }
    let (status, _, _) = page(&app, "/", &format!("hookd_session={secret}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Without a session, or with a forged one, the portal asks for a new link.
    for cookie in ["", "hookd_portal=hkds_forged"] {
        let (status, _, body) = page(&app, &format!("/portal/apps/{mine}"), cookie).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("new link"));
    }

    // Signing out ends it.
    let (status, _, _) = post_form(&app, "/portal/logout", &cookie, &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = page(&app, &format!("/portal/apps/{mine}"), &cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Every action of the portal's endpoint page with what it needs.
const ACTIONS: &[(&str, &str)] = &[
    ("disable", "ManageEndpoint"),
    ("reveal", "ViewEndpointSecret"),
    ("rotate", "ManageEndpointSecret"),
    ("test", "CreateAttempts"),
    ("recover", "CreateAttempts"),
];

#[tokio::test]
async fn each_capability_is_enforced_and_read_only_changes_nothing() {
    let app = TestApp::spawn().await;
    let mine = id(&app.create_app("ws_mine").await);
    let ep = id(&app.create_endpoint("ws_mine", "/ok", json!({})).await);
    let msg = id(&app
        .send_message("ws_mine", json!({"eventType": "svix.ping", "payload": {}}))
        .await);
    app.wait_delivery_status("ws_mine", &msg, "success").await;
    let endpoint_page = format!("/portal/apps/{mine}/endpoints/{ep}");
    let an_hour_ago = (app.clock_now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();

    let cases: [(Value, &[&str]); 6] = [
        (json!({"capabilities": ["ViewBase"]}), &[]),
        (json!({"capabilities": ["ViewBase", "ViewEndpointSecret"]}), &["reveal"]),
        (
            json!({"capabilities": ["ViewBase", "ManageEndpointSecret"]}),
            &["reveal", "rotate"],
        ),
        (
            json!({"capabilities": ["ViewBase", "CreateAttempts"]}),
            &["test", "recover"],
        ),
        (
            json!({"capabilities": ["ViewBase", "ManageEndpoint"]}),
            &["disable", "reveal", "rotate"],
        ),
        (json!({"readOnly": true}), &["reveal"]),
    ];
    for (body, allowed) in cases {
        let cookie = portal(&app, "ws_mine", body.clone()).await;
        let (status, _, html) = page(&app, &endpoint_page, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = csrf(&html);
        for (action, needs) in ACTIONS {
            let shown = html.contains(&format!("{endpoint_page}/{action}\""));
            assert_eq!(shown, allowed.contains(action), "{body}: the {action} button");
            let form = [
                ("csrf", token.as_str()),
                ("event_type", "svix.ping"),
                ("since", an_hour_ago.as_str()),
            ];
            let (status, _, answer) = post_form(&app, &format!("{endpoint_page}/{action}"), &cookie, &form).await;
            if allowed.contains(action) {
                assert!(
                    status.is_success() || status.is_redirection(),
                    "{body}: {action} → {status} {answer}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {action}");
                assert!(answer.contains(needs), "{body}: {action} names {needs}: {answer}");
            }
            if *action == "disable" && allowed.contains(action) {
                let (status, _, _) = post_form(&app, &format!("{endpoint_page}/enable"), &cookie, &form).await;
                assert!(status.is_success(), "enabled again");
            }
        }
        let can_manage = allowed.contains(&"disable");
        let (status, _, _) = page(&app, &format!("/portal/apps/{mine}/endpoints/new"), &cookie).await;
        assert_eq!(status == StatusCode::OK, can_manage, "{body}: the new-endpoint form");
        let (status, _, _) = page(&app, &format!("{endpoint_page}/edit"), &cookie).await;
        assert_eq!(status == StatusCode::OK, can_manage, "{body}: the edit form");
        let can_attempt = allowed.contains(&"test");
        let (_, _, message) = page(&app, &format!("/portal/apps/{mine}/messages/{msg}"), &cookie).await;
        assert!(message.contains("svix.ping"), "every session sees the message log");
        assert_eq!(message.contains("Resend"), can_attempt, "{body}: the resend button");
        let (status, _, _) = post_form(
            &app,
            &format!("/portal/apps/{mine}/messages/{msg}/resend"),
            &cookie,
            &[("csrf", &token), ("endpoint", &ep)],
        )
        .await;
        assert_eq!(status == StatusCode::SEE_OTHER, can_attempt, "{body}: resend");
        if !can_attempt {
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
        let (status, _, _) = post_form(
            &app,
            &format!("{endpoint_page}/failed/retry-all"),
            &cookie,
            &[("csrf", &token)],
        )
        .await;
        assert_eq!(status == StatusCode::SEE_OTHER, can_attempt, "{body}: retry all");
    }
    let endpoint = app.get(&format!("/api/v1/app/ws_mine/endpoint/{ep}")).await.1;
    assert_eq!(endpoint["disabled"], false, "{endpoint}");

    // An unknown capability is refused when the link is made.
    let (status, out) = app
        .post(
            "/api/v1/auth/app-portal-access/ws_mine",
            json!({"capabilities": ["ViewBase", "Everything"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(out["detail"][0]["loc"], json!(["body", "capabilities", "1"]), "{out}");
}

#[tokio::test]
async fn a_full_portal_adds_an_endpoint_sends_a_test_event_resends_and_deletes() {
    let app = TestApp::spawn().await;
    let schema = json!({"1": {"type": "object", "examples": [{"invoice": "in_1", "amount": 1200}]}});
    let (status, out) = app
        .post(
            "/api/v1/event-type",
            json!({"name": "invoice.paid", "description": "An invoice was paid", "groupName": "billing", "schemas": schema}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let mine = id(&app.create_app("ws_mine").await);
    let cookie = portal(&app, "ws_mine", json!({})).await;
    let (status, _, form) = page(&app, &format!("/portal/apps/{mine}/endpoints/new"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("<h3>billing</h3>") && form.contains(r#"value="invoice.paid""#));
    let token = csrf(&form);
    let url = app.receiver.url("/ok");
    let (status, headers, _body) = post_form(
        &app,
        &format!("/portal/apps/{mine}/endpoints"),
        &cookie,
        &[("csrf", &token), ("url", &url), ("event_types", "invoice.paid")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{_body}");
    let endpoint_page = location(&headers);
    assert!(
        endpoint_page.starts_with(&format!("/portal/apps/{mine}/endpoints/ep_")),
        "{endpoint_page}"
    );
    let ep = endpoint_page.rsplit('/').next().unwrap().to_string();

    let (status, headers, body) = post_form(
        &app,
        &format!("{endpoint_page}/test"),
        &cookie,
        &[("csrf", &token), ("event_type", "invoice.paid")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let message_page = location(&headers);
    assert!(message_page.starts_with("/portal/apps/"), "{message_page}");
    let msg = message_page.rsplit('/').next().unwrap().to_string();
    app.wait_delivery_status("ws_mine", &msg, "success").await;
    let (_, _, html) = page(&app, message_page, &cookie).await;
    assert!(html.contains("HTTP 200"), "the attempt shows in the portal: {html}");
    assert!(html.contains("in_1"), "with the catalog's example as its payload");

    let (status, _, _) = post_form(
        &app,
        &format!("{message_page}/resend"),
        &cookie,
        &[("csrf", &token), ("endpoint", &ep)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    app.receiver.wait_for(2, |r| r.path == "/ok").await;

    let (status, _, catalog) = page(&app, "/portal/catalog", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(catalog.contains("invoice.paid") && catalog.contains("An invoice was paid"));

    let (status, headers, _) = post_form(&app, &format!("{endpoint_page}/delete"), &cookie, &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), format!("/portal/apps/{mine}"));
    let (status, _) = app.get(&format!("/api/v1/app/ws_mine/endpoint/{ep}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn expire_all_with_session_ids_ends_those_portal_sessions_and_tokens_only() {
    let app = TestApp::spawn().await;
    let mine = id(&app.create_app("ws_mine").await);
    let mut opened = Vec::new();
    for session in ["s1", "s2"] {
        let (status, out) = app
            .post("/api/v1/auth/app-portal-access/ws_mine", json!({"sessionId": session}))
            .await;
        assert_eq!(status, StatusCode::OK);
        let r = open_link(&app, out["url"].as_str().unwrap()).await;
        opened.push((cookies(r.headers()), out["token"].as_str().unwrap().to_string()));
    }
    let (status, _) = app
        .post("/api/v1/auth/app/ws_mine/expire-all", json!({"sessionIds": ["s1"]}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let home = format!("/portal/apps/{mine}");
    assert_eq!(page(&app, &home, &opened[0].0).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(page(&app, &home, &opened[1].0).await.0, StatusCode::OK);
    let api = "/api/v1/app/ws_mine/endpoint";
    assert_eq!(
        app.call_as(&opened[0].1, "GET", api, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.call_as(&opened[1].1, "GET", api, None).await.0, StatusCode::OK);

    // Without session ids, every one of them ends.
    let (status, _) = app.post("/api/v1/auth/app/ws_mine/expire-all", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(page(&app, &home, &opened[1].0).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_portal_is_framed_only_where_configured_themed_by_link_or_config_and_linked_at_its_public_url() {
    let app = TestApp::spawn_with(|c| {
        c.portal.public_url = "https://hooks.example.com/".into();
        c.portal.frame_ancestors = vec!["https://app.example.com".into()];
        c.portal.primary_color = "#123456".into();
    })
    .await;
    let mine = id(&app.create_app("ws_mine").await);
    let url = link(&app, "ws_mine", json!({})).await;
    assert!(
        url.starts_with("https://hooks.example.com/portal/open?code=hkpl_"),
        "{url}"
    );
    // The test server is plain http on loopback: open the same path there, with a theme.
    let local =
        on_loopback(&app, &url) + "&primaryColor=%23ff0000&darkMode=true&hidePoweredBy=true&fontFamily=%3C%2Fstyle%3E";
    let r = open_link(&app, &local).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let line = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        line.contains("SameSite=None; Secure; Partitioned"),
        "behind https the cookie works inside the frame: {line}"
    );
    let cookie = cookies(r.headers());
    let (status, headers, html) = page(&app, &format!("/portal/apps/{mine}"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors https://app.example.com;"), "{csp}");
    assert!(headers.get("x-frame-options").is_none());
    assert!(!html.contains("Powered by"));
    let theme = html
        .split(r#"href="/portal/theme.css?"#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the theme stylesheet")
        .replace("&#38;", "&");
    let (_, _, css) = page(&app, &format!("/portal/theme.css?{theme}"), "").await;
    assert!(
        css.contains("--accent: #ff0000") && css.contains("color-scheme: dark"),
        "{css}"
    );
    assert!(
        !css.contains("</style>") && !css.contains("font-family"),
        "an unsafe font is ignored: {css}"
    );

    // A link without a theme gets the configured one; the dashboard is still never framed.
    let cookie = portal(&app, "ws_mine", json!({})).await;
    let (_, _, html) = page(&app, &format!("/portal/apps/{mine}"), &cookie).await;
    assert!(html.contains("/portal/theme.css?primaryColor=%23123456") && html.contains("Powered by hookd"));
    let (_, headers, _) = page(&app, "/login", "").await;
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
}
