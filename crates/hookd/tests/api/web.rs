//! Pages driven over HTTP like a browser without JavaScript: no redirect followed (so each
//! answer can be checked), cookies passed by hand, forms posted from this origin; signing in
//! to the dashboard and opening portal links as a browser does.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

/// A client that follows no redirect.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Where an answer redirects to (empty when it does not).
pub fn location(headers: &HeaderMap) -> &str {
    headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The CSRF token in a page's forms.
pub fn csrf(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let at = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[at..].split('"').next().unwrap().to_string()
}

/// `GET path` with `cookie`: status, headers and body.
pub async fn page(app: &TestApp, path: &str, cookie: &str) -> (StatusCode, HeaderMap, String) {
    let r = browser()
        .get(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.headers().clone(), r.text().await.unwrap())
}

/// Posts `form` to `path` with `cookie`, as a form of this origin's pages.
pub async fn post_form(
    app: &TestApp,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let r = browser()
        .post(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .header("origin", &app.base)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.headers().clone(), r.text().await.unwrap())
}

/// Signs in with `token` (as a form from the dashboard's own page) and returns the cookie pair.
pub async fn sign_in(app: &TestApp, token: &str) -> String {
    let r = browser()
        .post(format!("{}/login", app.base))
        .header("origin", &app.base)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in");
    assert_eq!(location(r.headers()), "/");
    cookies(r.headers())
}

/// A portal link for application `uid` made with `body`.
pub async fn link(app: &TestApp, uid: &str, body: Value) -> String {
    let (status, out) = app.post(&format!("/api/v1/auth/app-portal-access/{uid}"), body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    out["url"].as_str().unwrap().to_string()
}

/// The link's path and query on the test server: links may name a public URL, and tests only
/// ever talk to loopback.
pub fn on_loopback(app: &TestApp, url: &str) -> String {
    let parsed = url::Url::parse(url).unwrap();
    format!("{}{}?{}", app.base, parsed.path(), parsed.query().unwrap_or(""))
}

/// What a browser does with a portal link: loads the page, posts its form; returns the answer
/// to the post.
pub async fn open_link(app: &TestApp, url: &str) -> reqwest::Response {
    let html = browser()
        .get(on_loopback(app, url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        let marker = format!(r#"name="{name}" value=""#);
        let at = html.find(&marker).unwrap_or_else(|| panic!("{name} in {html}")) + marker.len();
        html[at..].split('"').next().unwrap().replace("&#38;", "&")
    };
    browser()
        .post(format!("{}/portal/open", app.base))
        .header("origin", &app.base)
        .form(&[("code", value("code")), ("theme", value("theme"))])
        .send()
        .await
        .unwrap()
}

/// Opens a portal link for `uid` and returns the session's cookie pair.
pub async fn portal(app: &TestApp, uid: &str, body: Value) -> String {
    let url = link(app, uid, body).await;
    let r = open_link(app, &url).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    cookies(r.headers())
}

/// The `name=value` pairs a response sets, as one `Cookie` header.
pub fn cookies(headers: &HeaderMap) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
