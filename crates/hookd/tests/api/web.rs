//! Pages driven over HTTP like a browser without JavaScript: no redirect followed (so each
//! answer can be checked), cookies passed by hand, forms posted from this origin.

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::StatusCode;

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
