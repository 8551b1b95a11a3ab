//! The operator dashboard: signing in and out, sessions, CSRF, security headers, and the pages,
//! driven over HTTP like a browser without JavaScript.

use std::time::Duration;

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::web::{browser, csrf, location, page, post_form, sign_in};

/// The session cookie's `name=value` from a sign-in answer, and the whole `Set-Cookie` line.
fn session_cookie(headers: &HeaderMap) -> (String, String) {
    let line = headers
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_string();
    let pair = line.split(';').next().unwrap().to_string();
    (pair, line)
}

#[tokio::test]
async fn signing_in_with_an_admin_token_sets_a_strict_http_only_cookie_whose_secret_is_stored_hashed() {
    let app = TestApp::spawn().await;
    let (status, headers, _) = page(&app, "/", "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/login");

    let (status, headers, html) = page(&app, "/login", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Admin token"));
    assert_eq!(headers["content-security-policy"], hookd::ui::CSP);
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");

    let r = browser()
        .post(format!("{}/login", app.base))
        .header("origin", &app.base)
        .form(&[("token", app.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (pair, line) = session_cookie(r.headers());
    assert!(pair.starts_with("hookd_session=hkds_"), "{line}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    assert!(!line.contains("Secure"), "plain http: {line}");
    let secret = pair.trim_start_matches("hookd_session=");
    let now = app.clock_now();
    let stored = app
        .store
        .find_session(&hookd::auth::hash_token(secret), now)
        .await
        .unwrap();
    let stored = stored.expect("the session is found by the hash of its secret");
    assert_eq!((stored.app_id, stored.env.as_str()), (None, "live"));
    assert_eq!(
        app.store.find_session(secret, now).await.unwrap(),
        None,
        "the secret itself is not stored"
    );

    let (status, headers, html) = page(&app, "/", &pair).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Overview") && html.contains("Queue lag"));
    assert!(html.contains("None: no endpoint is disabled or failing."));
    assert!(!html.contains("TEST MODE"));
    assert_eq!(headers["content-security-policy"], hookd::ui::CSP);
    let (status, headers, _) = page(&app, "/login", &pair).await;
    assert_eq!(
        (status, location(&headers)),
        (StatusCode::SEE_OTHER, "/"),
        "already signed in"
    );
}

#[tokio::test]
async fn a_wrong_or_application_scoped_token_or_a_cross_site_form_signs_no_one_in() {
    let app = TestApp::spawn().await;
    let app_in = app.create_app("shop").await;
    let (_, portal) = app
        .post(
            &format!("/api/v1/auth/app-portal-access/{}", app_in["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    let portal_token = portal["token"].as_str().expect("a portal token").to_string();
    for token in ["hk_live_wrong", portal_token.as_str(), ""] {
        let r = browser()
            .post(format!("{}/login", app.base))
            .header("origin", &app.base)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "token {token:?}");
        assert!(r.headers().get(SET_COOKIE).is_none());
        assert!(r.text().await.unwrap().contains("not a valid admin token"));
    }
    for (name, value) in [("origin", "http://evil.example"), ("sec-fetch-site", "cross-site")] {
        let r = browser()
            .post(format!("{}/login", app.base))
            .header(name, value)
            .form(&[("token", app.token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(r.headers().get(SET_COOKIE).is_none());
    }
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused_and_signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let cookie = sign_in(&app, &app.token).await;
    let other = sign_in(&app, &app.token).await;
    let (_, _, html) = page(&app, "/", &cookie).await;
    let token = csrf(&html);
    let (_, _, other_html) = page(&app, "/", &other).await;
    assert_ne!(csrf(&other_html), token, "each session has its own CSRF token");

    for form in [
        vec![],
        vec![("csrf", "0".repeat(64))],
        vec![("csrf", csrf(&other_html))],
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, _) = post_form(&app, "/logout", &cookie, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert_eq!(page(&app, "/", &cookie).await.0, StatusCode::OK, "still signed in");

    let (status, headers, _) = post_form(&app, "/logout", &cookie, &[("csrf", &token)]).await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/login"));
    assert!(
        session_cookie(&headers).1.contains("Max-Age=0"),
        "the cookie is cleared"
    );
    let (status, headers, _) = page(&app, "/", &cookie).await;
    assert_eq!(
        (status, location(&headers)),
        (StatusCode::SEE_OTHER, "/login"),
        "the session is gone"
    );
    assert_eq!(page(&app, "/", &other).await.0, StatusCode::OK, "other sessions stay");
}

#[tokio::test]
async fn a_session_expires_after_its_lifetime_and_is_secure_behind_https() {
    let app = TestApp::spawn_with(|c| c.dashboard.session_ttl_secs = 600).await;
    let cookie = sign_in(&app, &app.token).await;
    assert_eq!(page(&app, "/", &cookie).await.0, StatusCode::OK);
    app.advance(Duration::from_secs(601));
    let (status, headers, _) = page(&app, "/", &cookie).await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/login"));

    let r = browser()
        .post(format!("{}/login", app.base))
        .header("x-forwarded-proto", "https")
        .form(&[("token", app.token.as_str())])
        .send()
        .await
        .unwrap();
    let line = session_cookie(r.headers()).1;
    assert!(line.ends_with("; Secure") && line.contains("Max-Age=600"), "{line}");
}

#[tokio::test]
async fn the_sandbox_carries_the_test_mode_banner_and_sees_only_its_own_applications() {
    let app = TestApp::spawn().await;
    app.create_app("live-shop").await;
    let sandbox = app.test_token().await;
    let cookie = sign_in(&app, &sandbox).await;
    let (_, _, html) = page(&app, "/", &cookie).await;
    assert!(html.contains("TEST MODE"));
    let (_, _, html) = page(&app, "/apps", &cookie).await;
    assert!(
        !html.contains("live-shop"),
        "a live application is not shown in the sandbox"
    );
    let (_, _, html) = page(&app, "/apps?q=live-shop", &cookie).await;
    assert!(html.contains("No application has that name, id or uid."));
}

#[tokio::test]
async fn the_applications_page_creates_lists_and_finds_applications_with_inline_errors_and_escaped_values() {
    let app = TestApp::spawn().await;
    let cookie = sign_in(&app, &app.token).await;
    let (_, _, html) = page(&app, "/apps", &cookie).await;
    assert!(html.contains("No applications yet."));
    let token = csrf(&html);

    let name = "<script>alert(1)</script> & Co";
    let (status, headers, _) = post_form(
        &app,
        "/apps",
        &cookie,
        &[("csrf", &token), ("name", name), ("uid", "shop-1")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let created = location(&headers).to_string();
    assert!(created.starts_with("/apps?q=app_"), "{created}");

    let (_, _, html) = page(&app, "/apps", &cookie).await;
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; Co"),
        "escaped: {html}"
    );
    assert!(!html.contains("<script>alert"), "never raw");
    let (_, _, found) = page(&app, &created, &cookie).await;
    assert!(found.contains("shop-1"));
    let (_, _, by_uid) = page(&app, "/apps?q=shop-1", &cookie).await;
    assert!(by_uid.contains(created.trim_start_matches("/apps?q=")));
    let (_, _, by_name) = page(&app, "/apps?q=%26+co", &cookie).await;
    assert!(
        by_name.contains(created.trim_start_matches("/apps?q=")),
        "part of the name, any case"
    );

    let (status, _, html) = post_form(
        &app,
        "/apps",
        &cookie,
        &[("csrf", &token), ("name", "Again"), ("uid", "shop-1")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains(r#"class="error""#) && html.contains(r#"value="Again""#),
        "the form keeps its input"
    );
    let (status, _, html) = post_form(
        &app,
        "/apps",
        &cookie,
        &[("csrf", &token), ("name", ""), ("uid", "bad uid!")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.matches(r#"class="error""#).count() >= 2,
        "both fields explain themselves: {html}"
    );

    let (status, _, _) = post_form(&app, "/apps", &cookie, &[("name", "No token")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, apps) = app.get("/api/v1/app").await;
    assert_eq!(apps["data"].as_array().unwrap().len(), 1, "nothing else was created");
}

#[tokio::test]
async fn the_dashboard_can_be_turned_off() {
    let app = TestApp::spawn_with(|c| c.dashboard.enabled = false).await;
    assert_eq!(page(&app, "/login", "").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/health").await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_endpoint_is_created_from_the_catalogs_groups_with_inline_errors_then_disabled_enabled_revealed_and_rotated()
{
    let app = TestApp::spawn().await;
    for (name, group) in [
        ("payment.failed", Some("billing")),
        ("payment.succeeded", Some("billing")),
        ("user.created", None),
    ] {
        let body = json!({"name": name, "description": format!("About {name}"), "groupName": group});
        assert_eq!(app.post("/api/v1/event-type", body).await.0, StatusCode::CREATED);
    }
    let created = app.create_app("acme").await;
    let app_id = created["id"].as_str().unwrap().to_string();
    let cookie = sign_in(&app, &app.token).await;

    let (status, _, html) = page(&app, &format!("/apps/{app_id}"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No endpoints yet"));
    let (status, _, form) = page(&app, &format!("/apps/{app_id}/endpoints/new"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let group = form.find("<h3>billing</h3>").expect("event types grouped by groupName");
    let other = form.find("<h3>Other</h3>").expect("ungrouped event types last");
    let payment = form
        .find(r#"value="payment.failed""#)
        .expect("a checkbox per event type");
    let user = form.find(r#"value="user.created""#).expect("a checkbox per event type");
    assert!(
        group < payment && payment < other && other < user,
        "each event type sits in its group"
    );
    let token = csrf(&form);

    let path = format!("/apps/{app_id}/endpoints");
    let bad = [
        ("csrf", token.as_str()),
        ("url", "not a url"),
        ("throttle_rate", "fast"),
        ("headers", "no colon here"),
        ("event_types", "payment.failed"),
    ];
    let (status, _, html) = post_form(&app, &path, &cookie, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("whole number of messages per second"), "{html}");
    assert!(html.contains("is not a header"));
    assert!(html.contains(r#"value="not a url""#), "the form keeps its input");
    assert!(
        html.contains(r#"value="payment.failed" checked"#),
        "and its checked event types"
    );
    assert!(!html.contains(r#"value="user.created" checked"#));
    let (status, _, html) = post_form(&app, &path, &cookie, &[("csrf", &token), ("url", "not a url")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let url_field = html.find(r#"id="url""#).unwrap();
    let error = html.find(r#"class="error""#).expect("the URL is explained");
    assert!(
        error > url_field && error < html.find(r#"id="description""#).unwrap(),
        "beside its field: {html}"
    );

    let url = app.receiver.url("/ok");
    let good = [
        ("csrf", token.as_str()),
        ("url", url.as_str()),
        ("description", "Orders <team>"),
        ("event_types", "payment.failed"),
        ("event_types", "payment.succeeded"),
        ("channels", "eu, vip"),
        ("throttle_rate", "5"),
        ("headers", "X-Team: billing"),
    ];
    let (status, headers, _) = post_form(&app, &path, &cookie, &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let endpoint_page = location(&headers).to_string();
    let endpoint_id = endpoint_page.rsplit('/').next().unwrap().to_string();
    let (_, api) = app.get(&format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}")).await;
    assert_eq!(api["filterTypes"], json!(["payment.failed", "payment.succeeded"]));
    assert_eq!(api["channels"], json!(["eu", "vip"]));
    assert_eq!(api["throttleRate"], 5);
    assert_eq!(api["description"], "Orders <team>");

    let (_, _, html) = page(&app, &endpoint_page, &cookie).await;
    assert!(html.contains("payment.failed, payment.succeeded") && html.contains("X-Team: billing"));
    assert!(html.contains("Orders &#60;team&#62;"));
    let (_, _, list) = page(&app, &format!("/apps/{app_id}"), &cookie).await;
    assert!(list.contains(&endpoint_id) && list.contains("state-enabled"));

    let action = |name: &str| format!("{endpoint_page}/{name}");
    let (status, _, _) = post_form(&app, &action("disable"), &cookie, &[("csrf", "forged")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, html) = post_form(&app, &action("disable"), &cookie, &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Disabled.") && html.contains("state-disabled"));
    assert_eq!(
        app.get(&format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}")).await.1["disabled"],
        true
    );
    post_form(&app, &action("enable"), &cookie, &[("csrf", &token)]).await;
    assert_eq!(
        app.get(&format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}")).await.1["disabled"],
        false
    );

    let secret_of = |html: &str| {
        let at = html.find(r#"<code class="secret">"#).expect("the secret is shown") + r#"<code class="secret">"#.len();
        html[at..].split('<').next().unwrap().to_string()
    };
    let secret_path = format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret");
    let (_, _, html) = page(&app, &endpoint_page, &cookie).await;
    assert!(!html.contains("whsec_"), "the secret is shown only when asked for");
    let (_, _, html) = post_form(&app, &action("reveal"), &cookie, &[("csrf", &token)]).await;
    let revealed = secret_of(&html);
    assert!(revealed.starts_with("whsec_"));
    assert_eq!(revealed, app.get(&secret_path).await.1["key"]);
    let (_, _, html) = post_form(&app, &action("rotate"), &cookie, &[("csrf", &token)]).await;
    let rotated = secret_of(&html);
    assert_ne!(rotated, revealed);
    assert_eq!(rotated, app.get(&secret_path).await.1["key"]);

    let sandbox = sign_in(&app, &app.test_token().await).await;
    assert_eq!(
        page(&app, &endpoint_page, &sandbox).await.0,
        StatusCode::NOT_FOUND,
        "another environment's endpoint"
    );
}

#[tokio::test]
async fn messages_are_filtered_by_type_channel_time_and_event_id_and_a_message_shows_its_deliveries_and_attempts() {
    let app = TestApp::spawn().await;
    app.create_app("acme").await;
    app.create_endpoint("acme", "/ok", json!({})).await;
    let paid = app
        .send_message(
            "acme",
            json!({"eventType": "invoice.paid", "eventId": "evt-paid-1", "channels": ["eu"], "payload": {"note": "<b>bold</b>", "amount": 42}}),
        )
        .await;
    app.advance(Duration::from_secs(1));
    let sent = app
        .send_message("acme", json!({"eventType": "invoice.sent", "payload": {"amount": 7}}))
        .await;
    let paid_id = paid["id"].as_str().unwrap().to_string();
    let sent_id = sent["id"].as_str().unwrap().to_string();
    app.wait_delivery_status("acme", &paid_id, "success").await;
    let cookie = sign_in(&app, &app.token).await;
    let app_id = app.get("/api/v1/app/acme").await.1["id"].as_str().unwrap().to_string();
    let list = |query: &str| format!("/apps/acme/messages{query}");

    let (status, _, html) = page(&app, &list(""), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let (at_sent, at_paid) = (html.find(&sent_id).unwrap(), html.find(&paid_id).unwrap());
    assert!(at_sent < at_paid, "newest first");
    let (_, _, html) = page(&app, &list("?event_type=invoice.paid"), &cookie).await;
    assert!(html.contains(&paid_id) && !html.contains(&sent_id));
    let (_, _, html) = page(&app, &list("?channel=eu"), &cookie).await;
    assert!(html.contains(&paid_id) && !html.contains(&sent_id));
    let (_, _, html) = page(&app, &list("?event_id=evt-paid-1"), &cookie).await;
    assert!(html.contains(&paid_id) && !html.contains(&sent_id));
    let earlier = (app.clock_now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M");
    let later = (app.clock_now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M");
    let (_, _, html) = page(&app, &list(&format!("?until={earlier}")), &cookie).await;
    assert!(html.contains("No messages match."));
    let (_, _, html) = page(&app, &list(&format!("?since={earlier}&until={later}")), &cookie).await;
    assert!(html.contains(&paid_id) && html.contains(&sent_id));
    let (_, _, html) = page(&app, &list("?status=success"), &cookie).await;
    assert!(html.contains(&paid_id), "delivered");
    let (_, _, html) = page(&app, &list("?status=fail"), &cookie).await;
    assert!(!html.contains(&paid_id) && !html.contains(&sent_id), "nothing failed");
    let (_, _, html) = page(&app, &list("?since=yesterday"), &cookie).await;
    assert!(html.contains("write a date and time as YYYY-MM-DDTHH:MM"));

    let (status, _, html) = page(&app, &format!("/apps/{app_id}/messages/{paid_id}"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("&#60;b&#62;bold&#60;/b&#62;"), "the payload, escaped");
    assert!(html.contains("&#34;amount&#34;: 42"), "pretty-printed");
    assert!(html.contains("state-success"), "the delivery succeeded");
    assert!(html.contains("HTTP 200") && html.contains("scheduled"));
    assert!(html.contains("webhook-signature: v1,"), "the request's headers");
    let (status, _, _) = page(&app, &format!("/apps/{app_id}/messages/msg_missing"), &cookie).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_live_operator_switches_to_the_sandbox_and_back_but_a_sandbox_session_cannot_reach_live() {
    let app = TestApp::spawn().await;
    app.create_app("live-shop").await;
    let cookie = sign_in(&app, &app.token).await;
    let (_, _, html) = page(&app, "/", &cookie).await;
    assert!(html.contains("Switch to the sandbox"));
    let token = csrf(&html);
    let (status, headers, _) = post_form(&app, "/env", &cookie, &[("csrf", &token), ("env", "test")]).await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/"));
    let env_cookie = headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(env_cookie, "hookd_env=test");
    let both = format!("{cookie}; {env_cookie}");
    let (_, _, html) = page(&app, "/apps", &both).await;
    assert!(html.contains("TEST MODE") && !html.contains("live-shop") && html.contains("Back to live"));
    let (status, _, _) = post_form(&app, "/env", &both, &[("csrf", "forged"), ("env", "live")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let sandbox = sign_in(&app, &app.test_token().await).await;
    let (_, _, html) = page(&app, "/", &sandbox).await;
    assert!(
        !html.contains("Switch to"),
        "a sandbox session has nowhere to switch to"
    );
    let sandbox_csrf = csrf(&html);
    let (status, _, _) = post_form(&app, "/env", &sandbox, &[("csrf", &sandbox_csrf), ("env", "live")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let forged_env = format!("{sandbox}; hookd_env=live");
    let (_, _, html) = page(&app, "/apps", &forged_env).await;
    assert!(
        html.contains("TEST MODE") && !html.contains("live-shop"),
        "the cookie cannot lift a sandbox session"
    );
}

#[tokio::test]
async fn tokens_are_created_shown_once_listed_and_revoked_and_the_catalog_shows_schemas_by_group() {
    let app = TestApp::spawn().await;
    let schema = json!({"1": {"type": "object", "examples": [{"invoiceId": "inv_1"}]}});
    let body = json!({"name": "invoice.paid", "description": "An invoice was paid", "groupName": "billing", "schemas": schema});
    assert_eq!(app.post("/api/v1/event-type", body).await.0, StatusCode::CREATED);
    let cookie = sign_in(&app, &app.token).await;
    let (status, _, html) = page(&app, "/catalog", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h2>billing</h2>") && html.contains("invoice.paid") && html.contains("inv_1"));

    let (_, _, html) = page(&app, "/tokens", &cookie).await;
    let token = csrf(&html);
    let (status, _, html) = post_form(
        &app,
        "/tokens",
        &cookie,
        &[("csrf", &token), ("name", "ci"), ("expires_in_days", "0")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("1 to 3650"));
    let (status, _, html) = post_form(
        &app,
        "/tokens",
        &cookie,
        &[("csrf", &token), ("name", "ci"), ("expires_in_days", "30")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let at = html.find(r#"<code class="secret">"#).unwrap() + r#"<code class="secret">"#.len();
    let secret = html[at..].split('<').next().unwrap().to_string();
    assert!(secret.starts_with("hk_live_"));
    assert_eq!(
        app.call_as(&secret, "GET", "/api/v1/app", None).await.0,
        StatusCode::OK,
        "the new token works"
    );
    let (_, _, listed) = page(&app, "/tokens", &cookie).await;
    assert!(!listed.contains(&secret), "the secret is shown only once");
    let (_, tokens) = app.get("/api/v1/auth/token").await;
    let ci = tokens["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .expect("listed by the API");
    let id = ci["id"].as_str().unwrap().to_string();
    assert!(
        listed.contains(&format!(r#"action="/tokens/{id}/revoke""#)),
        "the page lists it"
    );
    let (status, _, _) = post_form(&app, &format!("/tokens/{id}/revoke"), &cookie, &[("csrf", "forged")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = post_form(&app, &format!("/tokens/{id}/revoke"), &cookie, &[("csrf", &token)]).await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/tokens"));
    assert_eq!(
        app.call_as(&secret, "GET", "/api/v1/app", None).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
}

#[tokio::test]
async fn failed_deliveries_are_listed_with_their_cause_and_retried_selected_or_all_matching() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![]).await;
    app.create_app("acme").await;
    let endpoint = app.create_endpoint("acme", "/status/500", json!({})).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for (i, kind) in ["invoice.paid", "invoice.sent", "invoice.paid"].iter().enumerate() {
        app.advance(Duration::from_secs(1));
        let m = app
            .send_message("acme", json!({"eventType": kind, "payload": {"n": i}}))
            .await;
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        app.wait_delivery_status("acme", id, "fail").await;
    }
    let app_id = app.get("/api/v1/app/acme").await.1["id"].as_str().unwrap().to_string();
    let cookie = sign_in(&app, &app.token).await;
    let view = format!("/apps/{app_id}/endpoints/{endpoint_id}/failed");

    let (status, _, html) = page(&app, &view, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    for id in &ids {
        assert!(html.contains(&format!(r#"value="{id}""#)), "{id} is listed to select");
    }
    assert!(html.contains("HTTP 500") && html.contains("cause-endpoint"));
    let (_, _, html) = page(&app, &format!("{view}?event_type=invoice.sent"), &cookie).await;
    assert!(html.contains(&ids[1]) && !html.contains(&ids[0]) && !html.contains(&ids[2]));
    let (_, _, html) = page(&app, &format!("{view}?cause=hookd"), &cookie).await;
    assert!(
        html.contains("No failed deliveries match."),
        "a 500 is the endpoint's doing"
    );
    let token = csrf(&html);

    // Marking reviewed: the default view then leaves it out; "reviewed" and "all" show it.
    let (status, headers, _) = post_form(
        &app,
        &format!("{view}/review"),
        &cookie,
        &[("csrf", &token), ("msg", &ids[2])],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location(&headers).ends_with("?marked=1"));
    let (_, _, html) = page(&app, &view, &cookie).await;
    assert!(!html.contains(&format!(r#"value="{}""#, ids[2])) && html.contains(&ids[0]));
    let (_, _, html) = page(&app, &format!("{view}?show=reviewed"), &cookie).await;
    assert!(html.contains(&ids[2]) && !html.contains(&format!(r#"value="{}""#, ids[0])));
    let (_, _, html) = page(&app, &format!("{view}?show=all"), &cookie).await;
    assert!(ids.iter().all(|id| html.contains(id.as_str())));
    let (status, _, _) = post_form(&app, &format!("{view}/review"), &cookie, &[("msg", &ids[0])]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let before = app.receiver.requests().len();
    let (status, headers, _) = post_form(
        &app,
        &format!("{view}/retry"),
        &cookie,
        &[("csrf", &token), ("msg", &ids[0]), ("msg", &ids[1])],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location(&headers).ends_with("?retried=2"));
    app.receiver.wait_for(before + 2, |_| true).await;
    let (status, _, _) = post_form(&app, &format!("{view}/retry"), &cookie, &[("msg", &ids[0])]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token, nothing resent");

    let (status, headers, _) = post_form(
        &app,
        &format!("{view}/retry-all"),
        &cookie,
        &[("csrf", &token), ("event_type", "invoice.paid")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let task_page = location(&headers).to_string();
    assert!(task_page.starts_with("/tasks/qtask_"), "{task_page}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, html) = page(&app, &task_page, &cookie).await;
        assert_eq!(status, StatusCode::OK);
        if html.contains("state-finished") {
            assert!(html.contains("endpoint.bulk-replay"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the task never finished: {html}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent_to = |id: &str| {
        let id = id.to_string();
        move |r: &crate::helpers::Recorded| r.header("webhook-id") == Some(id.as_str())
    };
    // invoice.paid: the first attempt, then once more by "retry all" (the first also by
    // "retry selected"); invoice.sent: its attempt and "retry selected" only.
    assert_eq!(app.receiver.wait_for(3, sent_to(&ids[0])).await.len(), 3);
    assert_eq!(app.receiver.wait_for(2, sent_to(&ids[2])).await.len(), 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = app
        .receiver
        .requests()
        .into_iter()
        .filter(|r| sent_to(&ids[1])(r))
        .count();
    assert_eq!(sent, 2, "invoice.sent did not match the retry-all filter");
}

#[test]
fn hookd_side_failures_are_told_from_the_endpoints() {
    use hookd::ops::attempts::FailureCause;
    let refused = format!(
        "refused: 10.1.2.3 is a private-network address; add it to {} to allow it",
        hookd_core::net::ALLOW_KEY
    );
    assert_eq!(FailureCause::of(0, &refused), FailureCause::Hookd);
    assert_eq!(FailureCause::of(503, "busy"), FailureCause::Endpoint);
}

#[tokio::test]
async fn a_test_event_is_sent_and_its_attempt_appears_and_the_endpoint_page_shows_success_rate_and_latency() {
    let app = TestApp::spawn().await;
    app.create_app("acme").await;
    let endpoint = app.create_endpoint("acme", "/ok", json!({})).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let app_id = app.get("/api/v1/app/acme").await.1["id"].as_str().unwrap().to_string();
    let cookie = sign_in(&app, &app.token).await;
    let endpoint_page = format!("/apps/{app_id}/endpoints/{endpoint_id}");
    let (_, _, html) = page(&app, &endpoint_page, &cookie).await;
    assert!(html.contains("no answered attempt yet") && html.contains(r#"<option value="svix.ping">"#));
    let token = csrf(&html);

    let (status, headers, _) = post_form(
        &app,
        &format!("{endpoint_page}/test"),
        &cookie,
        &[("csrf", &token), ("event_type", "svix.ping")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let message_page = location(&headers).to_string();
    let msg_id = message_page.rsplit('/').next().unwrap().to_string();
    assert!(msg_id.starts_with("msg_"), "{message_page}");
    app.wait_delivery_status("acme", &msg_id, "success").await;
    let (_, _, html) = page(&app, &message_page, &cookie).await;
    assert!(
        html.contains("svix.ping") && html.contains("HTTP 200"),
        "the attempt appears on the message's page"
    );

    let (_, _, html) = page(&app, &endpoint_page, &cookie).await;
    assert!(
        html.contains("100 %") && html.contains("1 of its newest 1 attempts"),
        "{html}"
    );
    assert!(html.contains("over the newest 1 answered attempts"));
}

#[tokio::test]
async fn after_a_disable_one_action_enables_the_endpoint_sends_what_it_missed_and_resends_what_failed() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![]).await;
    app.create_app("acme").await;
    let endpoint = app.create_endpoint("acme", "/status/500", json!({})).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    let app_id = app.get("/api/v1/app/acme").await.1["id"].as_str().unwrap().to_string();
    let failed = app
        .send_message("acme", json!({"eventType": "invoice.paid", "payload": {}}))
        .await;
    let failed_id = failed["id"].as_str().unwrap().to_string();
    app.wait_delivery_status("acme", &failed_id, "fail").await;

    let cookie = sign_in(&app, &app.token).await;
    let endpoint_page = format!("/apps/{app_id}/endpoints/{endpoint_id}");
    let (_, _, html) = page(&app, &endpoint_page, &cookie).await;
    let token = csrf(&html);
    assert!(
        !html.contains("Enable and replay"),
        "only offered for a disabled endpoint"
    );
    let (_, _, overview) = page(&app, "/", &cookie).await;
    assert!(
        overview.contains(&format!("/endpoints/{endpoint_id}")) && overview.contains("failing since"),
        "the overview lists a failing endpoint: {overview}"
    );
    post_form(&app, &format!("{endpoint_page}/disable"), &cookie, &[("csrf", &token)]).await;
    app.advance(Duration::from_secs(5));
    let kept = app
        .send_message("acme", json!({"eventType": "invoice.sent", "payload": {}}))
        .await;
    let kept_id = kept["id"].as_str().unwrap().to_string();
    let (_, _, html) = page(&app, &endpoint_page, &cookie).await;
    assert!(html.contains("Enable and replay what it missed"));
    let (_, _, overview) = page(&app, "/", &cookie).await;
    assert!(overview.contains("disabled; failing since"), "and then as disabled");

    let (status, _, html) = post_form(
        &app,
        &format!("{endpoint_page}/enable-replay"),
        &cookie,
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Enabled.") && html.matches(r#"href="/tasks/qtask_"#).count() == 2,
        "{html}"
    );
    let (_, api) = app.get(&format!("/api/v1/app/acme/endpoint/{endpoint_id}")).await;
    assert_eq!(api["disabled"], false, "enabled");
    let by_id = |id: String| move |r: &crate::helpers::Recorded| r.header("webhook-id") == Some(id.as_str());
    assert_eq!(
        app.receiver.wait_for(1, by_id(kept_id)).await.len(),
        1,
        "the message published while it was disabled is sent"
    );
    assert_eq!(
        app.receiver.wait_for(2, by_id(failed_id)).await.len(),
        2,
        "the failure since it began failing is resent"
    );
}

#[tokio::test]
async fn an_endpoint_is_edited_in_the_form_keeping_withheld_sensitive_headers() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post(
            "/api/v1/event-type",
            json!({"name": "invoice.paid", "description": "Paid"})
        )
        .await
        .0,
        StatusCode::CREATED
    );
    app.create_app("acme").await;
    let body = json!({"filterTypes": ["invoice.paid"], "channels": ["eu"], "throttleRate": 3, "headers": {"X-Team": "billing", "Authorization": "Bearer s3cret"}});
    let endpoint = app.create_endpoint("acme", "/ok", body).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    let app_id = app.get("/api/v1/app/acme").await.1["id"].as_str().unwrap().to_string();
    let cookie = sign_in(&app, &app.token).await;
    let edit = format!("/apps/{app_id}/endpoints/{endpoint_id}/edit");

    let (status, _, form) = page(&app, &edit, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("Edit endpoint") && form.contains("X-Team: billing"));
    assert!(!form.contains("s3cret"), "a sensitive value is never shown");
    assert!(form.contains("<code>Authorization</code>"), "but named as kept");
    assert!(form.contains(r#"value="eu""#) && form.contains(r#"value="3""#));
    let token = csrf(&form);

    let url = app.receiver.url("/ok");
    let bad = [("csrf", token.as_str()), ("url", "nope")];
    let (status, _, html) = post_form(&app, &edit, &cookie, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Edit endpoint") && html.contains(r#"class="error""#));

    let good = [
        ("csrf", token.as_str()),
        ("url", url.as_str()),
        ("description", "Renamed"),
        ("channels", ""),
        ("throttle_rate", ""),
        ("headers", "X-Region: eu"),
    ];
    let (status, headers, _) = post_form(&app, &edit, &cookie, &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), format!("/apps/{app_id}/endpoints/{endpoint_id}"));
    let (_, api) = app.get(&format!("/api/v1/app/acme/endpoint/{endpoint_id}")).await;
    assert_eq!(api["description"], "Renamed");
    assert_eq!(
        api["filterTypes"],
        serde_json::Value::Null,
        "no box checked: every event type"
    );
    assert_eq!(api["channels"], serde_json::Value::Null);
    assert_eq!(api["throttleRate"], serde_json::Value::Null);
    let (_, stored) = app
        .get(&format!("/api/v1/app/acme/endpoint/{endpoint_id}/headers"))
        .await;
    assert_eq!(stored["headers"]["X-Region"], "eu");
    assert!(
        stored["headers"].get("X-Team").is_none(),
        "a shown header left out is removed"
    );
    assert!(
        stored["sensitive"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "Authorization"),
        "the withheld header is kept: {stored}"
    );
}

#[tokio::test]
async fn the_retention_pass_deletes_expired_sessions() {
    let app = TestApp::spawn_with(|c| c.dashboard.session_ttl_secs = 60).await;
    let cookie = sign_in(&app, &app.token).await;
    let secret = cookie.trim_start_matches("hookd_session=").to_string();
    let hash = hookd::auth::hash_token(&secret);
    let session = app
        .store
        .find_session(&hash, app.clock_now())
        .await
        .unwrap()
        .expect("live");
    app.advance(Duration::from_secs(61));
    hookd::retention::run_once(app.store.as_ref(), app.clock.as_ref())
        .await
        .unwrap();
    assert!(
        !app.store.delete_session(&session.id).await.unwrap(),
        "the expired row is gone"
    );
}

#[tokio::test]
async fn the_overview_charts_traffic_from_per_minute_counts_that_are_stored_at_shutdown() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![]).await;
    app.create_app("acme").await;
    app.create_endpoint("acme", "/ok", json!({})).await;
    app.create_app("broken").await;
    app.create_endpoint("broken", "/status/500", json!({})).await;
    let mut sent = Vec::new();
    for _ in 0..3 {
        let m = app
            .send_message("acme", json!({"eventType": "svix.ping", "payload": {}}))
            .await;
        sent.push(("acme", m["id"].as_str().unwrap().to_string()));
    }
    let m = app
        .send_message("broken", json!({"eventType": "svix.ping", "payload": {}}))
        .await;
    sent.push(("broken", m["id"].as_str().unwrap().to_string()));
    for (app_uid, msg) in &sent {
        let status = if *app_uid == "acme" { "success" } else { "fail" };
        app.wait_delivery_status(app_uid, msg, status).await;
    }
    let cookie = sign_in(&app, &app.token).await;
    for range in ["1h", "24h", "7d"] {
        let (status, _, html) = page(&app, &format!("/?range={range}"), &cookie).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(html.matches(r#"<svg class="chart""#).count(), 4, "{range}");
        assert!(
            html.contains(r#"<p class="figure">4</p><p class="hint">4 deliveries fanned out"#),
            "{html}"
        );
        assert!(
            html.contains("75.0 %") && html.contains("of 4 attempts"),
            "{range}: {html}"
        );
        assert!(html.contains(r#"<h2>Failed for good</h2><p class="figure">1</p>"#));
        assert!(
            html.contains("publish to delivered"),
            "latency percentiles of the three deliveries"
        );
        assert!(html.contains("aria-label=\"Success rate of attempts\""));
    }
    let (_, _, html) = page(&app, "/?range=1h", &cookie).await;
    assert!(html.contains(r#"href="/?range=1h#traffic" aria-current="page""#));

    // The sandbox counts its own traffic.
    let test_cookie = sign_in(&app, &app.test_token().await).await;
    let (_, _, html) = page(&app, "/", &test_cookie).await;
    assert!(html.contains(r#"<p class="figure">0</p><p class="hint">0 deliveries fanned out"#));

    // Counts kept in memory are stored when hookd stops.
    let store = app.store.clone();
    let now = hookd::traffic::minute_of(app.clock_now());
    let _data = app.stop_keeping_data().await;
    let stored = store
        .traffic(hookd_core::model::Environment::Live, now - 60, now + 1)
        .await
        .unwrap();
    let messages: i64 = stored.iter().map(|m| m.messages).sum();
    let attempts: i64 = stored.iter().map(|m| m.attempts).sum();
    let delivered: i64 = stored.iter().map(|m| m.latency.iter().sum::<i64>()).sum();
    assert_eq!((messages, attempts, delivered), (4, 4, 3));
}
