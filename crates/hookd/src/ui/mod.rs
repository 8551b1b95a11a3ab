//! The operator dashboard at `/`: server-rendered pages (askama templates in
//! `crates/hookd/templates`, one small stylesheet embedded in the binary, no JavaScript needed),
//! behind a sign-in with an admin token ([`session`]).
//!
//! Every response carries a strict Content-Security-Policy (nothing but this origin's
//! stylesheet; no scripts, no framing) and is never cached; every value shown is escaped by the
//! templates; every form carries the session's CSRF token.

pub mod endpoints;
pub mod failed;
pub mod messages;
pub mod pages;
pub mod session;
pub mod settings;

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// The dashboard's Content-Security-Policy: this origin's stylesheet and inline SVG images,
/// nothing else; forms post only here; never framed.
pub const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../../assets/hookd.css");

/// The dashboard's routes, for the API router to serve beside `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", axum::routing::post(pages::logout))
        .route("/env", axum::routing::post(pages::switch_environment))
        .route("/apps", get(pages::applications).post(pages::create_application))
        .route("/apps/{app}", get(endpoints::show_application))
        .route("/apps/{app}/endpoints", axum::routing::post(endpoints::create_endpoint))
        .route("/apps/{app}/endpoints/new", get(endpoints::new_endpoint))
        .route("/apps/{app}/messages", get(messages::list))
        .route("/apps/{app}/messages/{message}", get(messages::show))
        .route("/apps/{app}/endpoints/{endpoint}", get(endpoints::show_endpoint))
        .route(
            "/apps/{app}/endpoints/{endpoint}/edit",
            get(endpoints::edit_endpoint).post(endpoints::update_endpoint),
        )
        .route("/apps/{app}/endpoints/{endpoint}/failed", get(failed::list))
        .route(
            "/apps/{app}/endpoints/{endpoint}/failed/retry",
            axum::routing::post(failed::retry_selected),
        )
        .route(
            "/apps/{app}/endpoints/{endpoint}/failed/retry-all",
            axum::routing::post(failed::retry_all),
        )
        .route(
            "/apps/{app}/endpoints/{endpoint}/failed/review",
            axum::routing::post(failed::mark_reviewed),
        )
        .route("/tasks/{id}", get(failed::task))
        .route(
            "/apps/{app}/endpoints/{endpoint}/{action}",
            axum::routing::post(endpoints::endpoint_action),
        )
        .route("/catalog", get(settings::catalog))
        .route("/tokens", get(settings::tokens).post(settings::create))
        .route("/tokens/{id}/revoke", axum::routing::post(settings::revoke))
        .route("/assets/hookd.css", get(stylesheet))
        .layer(axum::middleware::map_response(protect))
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Adds the security headers every dashboard response carries.
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The fields of a posted form, repeated names kept in order (event types are checkboxes).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Reads an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn one(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A form posted by a signed-in operator whose `csrf` field is the session's token; any other
/// post is answered `403` before the handler runs (a browser without a session is sent to
/// sign in).
pub struct Posted {
    /// Who posted it.
    pub op: session::Operator,
    /// What was posted.
    pub fields: Fields,
}

impl axum::extract::FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Posted, Response> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = req.into_parts();
        let op = session::Operator::from_request_parts(&mut parts, state).await?;
        let req = axum::extract::Request::from_parts(parts, body);
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = Fields::parse(&body);
        if !op.csrf_ok(&fields.one("csrf")) {
            return Err(pages::forbidden());
        }
        Ok(Posted { op, fields })
    }
}

/// Renders a template as a page with `status`.
pub(crate) fn render(status: StatusCode, page: &impl askama::Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a dashboard page");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// The answer when the database cannot be reached.
pub(crate) fn unavailable(e: &hookd_store::StoreError) -> Response {
    tracing::warn!(error = %e, "dashboard page without its data");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, HeaderValue::from_static("5"))],
        "hookd cannot reach its database right now; try again in a moment",
    )
        .into_response()
}
