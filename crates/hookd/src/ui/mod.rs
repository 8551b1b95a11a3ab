//! The operator dashboard at `/`: server-rendered pages (askama templates in
//! `crates/hookd/templates`, one small stylesheet embedded in the binary, no JavaScript needed),
//! behind a sign-in with an admin token ([`session`]).
//!
//! Every response carries a strict Content-Security-Policy (nothing but this origin's
//! stylesheet; no scripts, no framing) and is never cached; every value shown is escaped by the
//! templates; every form carries the session's CSRF token.

pub mod charts;
pub mod endpoints;
pub mod failed;
pub mod messages;
pub mod pages;
pub mod portal;
pub mod session;
pub mod settings;

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The dashboard's Content-Security-Policy: this origin's stylesheet and inline SVG images,
/// nothing else; forms post only here; never framed.
pub const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../../assets/hookd.css");

/// The dashboard's and the portal's routes, for the API router to serve beside `/api/v1`.
pub fn router(config: &crate::config::Config) -> Router<AppState> {
    let dashboard = Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/env", post(pages::switch_environment))
        .route("/apps", get(pages::applications).post(pages::create_application))
        .route("/tasks/{id}", get(failed::task))
        .route("/catalog", get(settings::catalog))
        .route("/tokens", get(settings::tokens).post(settings::create))
        .route("/tokens/{id}/revoke", post(settings::revoke))
        .route("/assets/hookd.css", get(stylesheet))
        .merge(application_routes(""))
        .layer(axum::middleware::map_response(protect));
    let csp = HeaderValue::from_str(&portal::csp(&config.portal)).expect("frame sources are checked by the config");
    let portal = Router::new()
        .route("/portal", get(|| async { axum::response::Redirect::to("/portal/") }))
        .route("/portal/", get(portal::home))
        .route("/portal/open", get(portal::open_page).post(portal::open))
        .route("/portal/open.js", get(portal::open_script))
        .route("/portal/theme.css", get(portal::theme_css))
        .route("/portal/logout", post(portal::logout))
        .route("/portal/catalog", get(settings::catalog))
        .route("/portal/tasks/{id}", get(failed::task))
        .merge(application_routes("/portal"))
        .layer(axum::middleware::map_response(move |r| protect_portal(r, csp.clone())));
    dashboard.merge(portal)
}

/// An application's pages, under `root`: the dashboard's (`""`) and the portal's (`/portal`)
/// are the same handlers, limited by the [`session::Viewer`] each path gets.
fn application_routes(root: &str) -> Router<AppState> {
    let at = |path: &str| format!("{root}/apps/{{app}}{path}");
    Router::new()
        .route(&at(""), get(endpoints::show_application))
        .route(&at("/endpoints"), post(endpoints::create_endpoint))
        .route(&at("/endpoints/new"), get(endpoints::new_endpoint))
        .route(&at("/messages"), get(messages::list))
        .route(&at("/messages/{message}"), get(messages::show))
        .route(&at("/messages/{message}/resend"), post(messages::resend))
        .route(&at("/endpoints/{endpoint}"), get(endpoints::show_endpoint))
        .route(
            &at("/endpoints/{endpoint}/edit"),
            get(endpoints::edit_endpoint).post(endpoints::update_endpoint),
        )
        .route(&at("/endpoints/{endpoint}/failed"), get(failed::list))
        .route(&at("/endpoints/{endpoint}/failed/retry"), post(failed::retry_selected))
        .route(&at("/endpoints/{endpoint}/failed/retry-all"), post(failed::retry_all))
        .route(&at("/endpoints/{endpoint}/failed/review"), post(failed::mark_reviewed))
        .route(&at("/endpoints/{endpoint}/{action}"), post(endpoints::endpoint_action))
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
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    common_headers(response)
}

/// Adds the security headers every portal response carries: its own CSP, which lets the sites
/// in `portal.frame_ancestors` (and no others) frame it.
async fn protect_portal(mut response: Response, csp: HeaderValue) -> Response {
    response.headers_mut().insert(CONTENT_SECURITY_POLICY, csp);
    common_headers(response)
}

fn common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers
        .entry(REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
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

/// A form posted by a signed-in viewer (an [`session::Operator`] unless named) whose `csrf`
/// field is the session's token; any other post is answered `403` before the handler runs (a
/// browser without a session is sent to sign in).
pub struct Posted<V = session::Operator> {
    /// Who posted it.
    pub op: V,
    /// What was posted.
    pub fields: Fields,
}

impl<V> axum::extract::FromRequest<AppState> for Posted<V>
where
    V: axum::extract::FromRequestParts<AppState, Rejection = Response> + session::Signed + Send,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Posted<V>, Response> {
        let (mut parts, body) = req.into_parts();
        let op = V::from_request_parts(&mut parts, state).await?;
        let req = axum::extract::Request::from_parts(parts, body);
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = Fields::parse(&body);
        if !op.viewer().csrf_ok(&fields.one("csrf")) {
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
