//! The dashboard's pages: sign-in and sign-out, the overview, applications.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use hookd_core::model::{Application, Environment};
use hookd_store::{Cursor, PageRequest};
use serde::Deserialize;

use super::session::{self, Operator, Viewer};
use super::{render, unavailable, Posted};
use crate::auth::hash_token;
use crate::auth::Capability;
use crate::ops::applications::ApplicationIn;
use crate::ops::OpsError;
use crate::state::AppState;

/// What every signed-in page shows around its content, and what its viewer may do.
pub struct Chrome {
    /// The session's environment (`live` or `test`).
    pub env: &'static str,
    /// The sandbox: the page carries the TEST MODE banner.
    pub test_mode: bool,
    /// The session's CSRF token, for the sign-out form and the page's own forms.
    pub csrf: String,
    /// The navigation entry to mark as current.
    pub current: &'static str,
    /// The environment the operator may switch to (a live session: the other one).
    pub switch_to: Option<&'static str>,
    /// Where the viewer's pages live: `""` (dashboard) or `/portal`.
    pub root: &'static str,
    /// Set on the consumer portal's pages.
    pub portal: Option<PortalChrome>,
    /// May add, edit, enable, disable and delete endpoints.
    pub can_manage: bool,
    /// May reveal signing secrets.
    pub can_view_secret: bool,
    /// May rotate signing secrets.
    pub can_rotate: bool,
    /// May resend, recover and send test events.
    pub can_attempt: bool,
}

/// The portal's look and its one application.
pub struct PortalChrome {
    /// The application the portal shows.
    pub app_id: String,
    /// The theme stylesheet's query.
    pub theme: String,
    /// A logo to show instead of the name.
    pub logo: Option<String>,
    /// Show "powered by hookd".
    pub powered_by: bool,
}

impl Chrome {
    /// The chrome of `viewer`'s pages, with `current` marked in the navigation.
    pub fn new(viewer: &Viewer, current: &'static str) -> Chrome {
        Chrome {
            env: viewer.env.as_str(),
            test_mode: viewer.env == Environment::Test,
            csrf: viewer.csrf.clone(),
            current,
            switch_to: (viewer.portal.is_none() && viewer.session.env == Environment::Live).then_some(
                match viewer.env {
                    Environment::Live => "test",
                    Environment::Test => "live",
                },
            ),
            root: viewer.root(),
            portal: viewer.portal.as_ref().map(|p| PortalChrome {
                app_id: p.app_id.clone(),
                theme: p.theme.to_query(),
                logo: p.theme.logo.clone(),
                powered_by: !p.theme.hide_powered_by,
            }),
            can_manage: viewer.may(Capability::ManageEndpoint),
            can_view_secret: viewer.may(Capability::ViewEndpointSecret),
            can_rotate: viewer.may(Capability::ManageEndpointSecret),
            can_attempt: viewer.may(Capability::CreateAttempts),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<&'static str>,
}

/// `GET /login`: the sign-in form, or the overview for a browser already signed in.
pub async fn login_form(op: Result<Operator, Response>) -> Response {
    if op.is_ok() {
        return Redirect::to("/").into_response();
    }
    render(StatusCode::OK, &LoginPage { error: None })
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginIn {
    /// An admin API token.
    #[serde(default)]
    token: String,
}

/// `POST /login`: exchanges an admin token for a session cookie.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, Form(input): Form<LoginIn>) -> Response {
    if !session::same_origin(&headers) {
        let page = LoginPage {
            error: Some("This form must be sent from hookd's own sign-in page."),
        };
        return render(StatusCode::FORBIDDEN, &page);
    }
    let refused = || {
        let page = LoginPage {
            error: Some("That is not a valid admin token of this hookd."),
        };
        render(StatusCode::UNAUTHORIZED, &page)
    };
    let token = input.token.trim();
    if token.is_empty() || token.len() > 200 {
        return refused();
    }
    let record = match state.tokens.find(&hash_token(token)).await {
        Ok(Some(record)) => record,
        Ok(None) => return refused(),
        Err(e) => return unavailable(&e),
    };
    let now = state.clock.now();
    if record.app_id.is_some() || record.expires_at.is_some_and(|at| at <= now) {
        return refused();
    }
    let secret = match session::open(&state, record.env).await {
        Ok(secret) => secret,
        Err(e) => return unavailable(&e),
    };
    let cookie = session::set_cookie(
        &secret,
        state.config.dashboard.session_ttl_secs,
        session::is_https(&state, &headers),
    );
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(SET_COOKIE, cookie);
    response
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, Posted { op, .. }: Posted) -> Response {
    if let Err(e) = state.store.delete_session(&op.session.id).await {
        return unavailable(&e);
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session::set_cookie("", 0, false));
    response
}

/// The answer to a form without this session's CSRF token.
pub fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "this form has expired or did not come from this dashboard; reload the page and try again",
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    due: u64,
    claimed: u64,
    scheduled: u64,
    parked: u64,
    capped: bool,
    lag: String,
    disabled_endpoints: u64,
    in_flight: usize,
    open_circuits: usize,
    troubled: Vec<TroubledRow>,
}

/// An endpoint the overview lists as needing attention.
struct TroubledRow {
    app_id: String,
    id: String,
    url: String,
    state: &'static str,
    since: String,
}

/// Endpoints the overview lists as needing attention.
const TROUBLED_SHOWN: usize = 20;

/// `GET /`: the overview.
pub async fn overview(State(state): State<AppState>, op: Operator) -> Response {
    let stats = match state.queue_stats().await {
        Ok(stats) => stats,
        Err(e) => return unavailable(&e),
    };
    let engine = state.dispatcher.stats();
    let troubled = match state.store.troubled_endpoints(op.env, TROUBLED_SHOWN).await {
        Ok(found) => found
            .into_iter()
            .map(|e| TroubledRow {
                state: if e.disabled { "disabled" } else { "failing" },
                since: match (e.disabled, e.failing_since) {
                    (false, Some(at)) => format!("failing since {}", at.format("%Y-%m-%d %H:%M")),
                    (true, Some(at)) => format!("disabled; failing since {}", at.format("%Y-%m-%d %H:%M")),
                    (_, None) => format!("disabled {}", e.updated_at.format("%Y-%m-%d %H:%M")),
                },
                app_id: e.app_id,
                id: e.id,
                url: e.url,
            })
            .collect(),
        Err(e) => return unavailable(&e),
    };
    let lag = match stats.oldest_due_at {
        Some(at) => {
            let secs = (state.clock.now() - at).num_milliseconds().max(0) as f64 / 1000.0;
            format!("{secs:.1} s")
        }
        None => "none".to_string(),
    };
    let page = OverviewPage {
        chrome: Chrome::new(&op, "overview"),
        due: stats.due,
        claimed: stats.claimed,
        scheduled: stats.scheduled,
        parked: stats.parked,
        capped: stats.capped,
        lag,
        disabled_endpoints: stats.disabled_endpoints,
        in_flight: engine.in_flight,
        open_circuits: engine.open_circuits,
        troubled,
    };
    render(StatusCode::OK, &page)
}

/// One row of the applications table.
struct AppRow {
    id: String,
    uid: String,
    name: String,
    created: String,
}

impl AppRow {
    fn from(app: &Application) -> AppRow {
        AppRow {
            id: app.id.clone(),
            uid: app.uid.clone().unwrap_or_default(),
            name: app.name.clone(),
            created: app.created_at.format("%Y-%m-%d %H:%M").to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "applications.html")]
struct ApplicationsPage {
    chrome: Chrome,
    q: String,
    rows: Vec<AppRow>,
    next: Option<String>,
    searched: bool,
    form_name: String,
    form_uid: String,
    errors: Vec<(String, String)>,
}

/// The applications page's query.
#[derive(Debug, Deserialize, Default)]
pub struct AppsQuery {
    /// An application's id or uid, or part of its name.
    #[serde(default)]
    q: String,
    /// Continue after this application id.
    #[serde(default)]
    after: String,
}

const APPS_PER_PAGE: usize = 50;

/// `GET /apps`: the environment's applications, newest first, or the one a search names.
pub async fn applications(State(state): State<AppState>, op: Operator, Query(query): Query<AppsQuery>) -> Response {
    match app_list(&state, &op, &query).await {
        Ok((rows, next)) => {
            let page = ApplicationsPage {
                chrome: Chrome::new(&op, "applications"),
                searched: !query.q.trim().is_empty(),
                q: query.q,
                rows,
                next,
                form_name: String::new(),
                form_uid: String::new(),
                errors: Vec::new(),
            };
            render(StatusCode::OK, &page)
        }
        Err(e) => unavailable(&e),
    }
}

async fn app_list(
    state: &AppState,
    op: &Operator,
    query: &AppsQuery,
) -> Result<(Vec<AppRow>, Option<String>), hookd_store::StoreError> {
    let q = query.q.trim();
    if !q.is_empty() {
        // The application the text names by id or uid first, then those whose name holds it.
        let mut found: Vec<Application> = state.store.get_application(op.env, q).await?.into_iter().collect();
        for app in state.store.search_applications(op.env, q, APPS_PER_PAGE).await? {
            if found.iter().all(|f| f.id != app.id) {
                found.push(app);
            }
        }
        return Ok((found.iter().map(AppRow::from).collect(), None));
    }
    let page = PageRequest {
        limit: APPS_PER_PAGE,
        cursor: Some(query.after.clone())
            .filter(|a| !a.is_empty())
            .map(|key| Cursor { key, backwards: false }),
        ascending: false,
    };
    let found = state.store.list_applications(op.env, &page).await?;
    let next = found
        .has_more
        .then(|| found.items.last().map(|a| a.id.clone()))
        .flatten();
    Ok((found.items.iter().map(AppRow::from).collect(), next))
}

/// The new-application form.
#[derive(Debug, Deserialize)]
pub struct NewAppIn {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    uid: String,
}

/// `POST /apps`: creates an application; invalid fields are shown beside the form.
pub async fn create_application(State(state): State<AppState>, op: Operator, Form(input): Form<NewAppIn>) -> Response {
    if !op.csrf_ok(&input.csrf) {
        return forbidden();
    }
    let uid = Some(input.uid.trim().to_string()).filter(|u| !u.is_empty());
    let app_in = ApplicationIn {
        name: input.name.trim().to_string(),
        uid,
        ..ApplicationIn::default()
    };
    let errors: Vec<(String, String)> =
        match crate::ops::applications::create_application(&state, op.env, app_in, false).await {
            Ok((app, _)) => return Redirect::to(&format!("/apps?q={}", app.id)).into_response(),
            Err(OpsError::Invalid(fields)) => fields
                .into_iter()
                .map(|f| (f.loc.last().cloned().unwrap_or_default(), f.msg))
                .collect(),
            Err(OpsError::Conflict { detail, .. }) => vec![("uid".to_string(), detail)],
            Err(OpsError::Store(e)) => return unavailable(&e),
            Err(e) => vec![(String::new(), e.to_string())],
        };
    match app_list(&state, &op, &AppsQuery::default()).await {
        Ok((rows, next)) => {
            let page = ApplicationsPage {
                chrome: Chrome::new(&op, "applications"),
                q: String::new(),
                searched: false,
                rows,
                next,
                form_name: input.name,
                form_uid: input.uid,
                errors,
            };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => unavailable(&e),
    }
}

/// The environment-switch form.
#[derive(Debug, Deserialize)]
pub struct SwitchIn {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    env: String,
}

/// `POST /env`: a live operator switches between live and the sandbox; a sandbox session has
/// nowhere to switch to.
pub async fn switch_environment(
    State(state): State<AppState>,
    headers: HeaderMap,
    op: Operator,
    Form(input): Form<SwitchIn>,
) -> Response {
    if !op.csrf_ok(&input.csrf) {
        return forbidden();
    }
    let env = match (op.session.env, Environment::parse(&input.env)) {
        (Environment::Live, Some(env)) => env,
        _ => return (StatusCode::FORBIDDEN, "this session cannot act in that environment").into_response(),
    };
    let secure = session::is_https(&state, &headers);
    let ttl = state.config.dashboard.session_ttl_secs;
    let cookie = session::cookie_line(session::ENV_COOKIE, env.as_str(), ttl, secure);
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(SET_COOKIE, cookie);
    response
}
