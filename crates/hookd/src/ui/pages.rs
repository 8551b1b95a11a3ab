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
    traffic: TrafficView,
}

/// The overview's traffic section: figures for the range and the charts.
struct TrafficView {
    /// `1h`, `24h` or `7d`.
    range: &'static str,
    messages: i64,
    deliveries: i64,
    attempts: i64,
    /// Attempts that succeeded, in percent of all attempts (`None` without attempts).
    success_rate: Option<String>,
    failed: i64,
    /// Publish-to-delivered p50, p95, p99 (bucket bounds), as text.
    latency: Option<(String, String, String)>,
    charts: Vec<String>,
}

/// The time ranges the overview charts, with the bucket each bar covers (minutes).
const RANGES: [(&str, i64, i64); 3] = [("1h", 60, 1), ("24h", 24 * 60, 30), ("7d", 7 * 24 * 60, 180)];

/// The overview's query.
#[derive(Debug, Deserialize, Default)]
pub struct OverviewQuery {
    /// `1h`, `24h` (default) or `7d`.
    #[serde(default)]
    range: String,
}

fn latency_text(ms: i64) -> String {
    match ms {
        i64::MAX => format!(
            "> {} s",
            hookd_store::LATENCY_BOUNDS_MS[hookd_store::LATENCY_BOUNDS_MS.len() - 1] / 1000
        ),
        ms if ms >= 1000 => format!("≤ {} s", ms as f64 / 1000.0),
        ms => format!("≤ {ms} ms"),
    }
}

/// The environment's traffic over the range, from the stored minutes and this node's unstored
/// ones.
async fn traffic_view(state: &AppState, env: Environment, range: &str) -> Result<TrafficView, hookd_store::StoreError> {
    use crate::ui::charts::{self, Frame, Mark, Series};
    let (name, span, bucket) = RANGES
        .iter()
        .copied()
        .find(|(n, _, _)| *n == range)
        .unwrap_or(RANGES[1]);
    let now = crate::traffic::minute_of(state.clock.now()) + 1;
    // Whole buckets, the newest ending with the current minute.
    let buckets = (span / bucket) as usize;
    let from = now - bucket * buckets as i64;
    let mut sums = vec![hookd_store::TrafficMinute::new(env, 0); buckets];
    let stored = state.store.traffic(env, from, now).await?;
    let unstored = state.dispatcher.traffic().unstored(env, from, now);
    for m in stored.iter().chain(unstored.iter()) {
        let i = ((m.minute - from) / bucket) as usize;
        if let Some(b) = sums.get_mut(i) {
            b.add(m);
        }
    }
    let mut total = hookd_store::TrafficMinute::new(env, 0);
    for b in &sums {
        total.add(b);
    }
    let at = |minute: i64| {
        let t = chrono::DateTime::from_timestamp(minute * 60, 0).unwrap_or_default();
        if span > 24 * 60 {
            t.format("%b %d %H:%M").to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    };
    let labels = || [at(from), at(from + bucket * buckets as i64 / 2), at(now)];
    let per = |f: fn(&hookd_store::TrafficMinute) -> i64| sums.iter().map(|b| Some(f(b) as f64)).collect();
    let volume = charts::render(
        &Frame {
            title: "Messages published and deliveries fanned out",
            unit: "",
            x_labels: labels(),
            y_max: None,
        },
        &[
            Series {
                name: "messages",
                mark: Mark::Bar,
                values: per(|b| b.messages),
            },
            Series {
                name: "deliveries",
                mark: Mark::Line,
                values: per(|b| b.deliveries),
            },
        ],
    );
    let outcomes = charts::render(
        &Frame {
            title: "Attempts: succeeded and failed",
            unit: "",
            x_labels: labels(),
            y_max: None,
        },
        &[
            Series {
                name: "succeeded",
                mark: Mark::Bar,
                values: per(|b| b.succeeded),
            },
            Series {
                name: "failed",
                mark: Mark::Bar,
                values: per(|b| b.attempts - b.succeeded),
            },
        ],
    );
    let rate = charts::render(
        &Frame {
            title: "Success rate of attempts",
            unit: " %",
            x_labels: labels(),
            y_max: Some(100.0),
        },
        &[Series {
            name: "success rate",
            mark: Mark::Line,
            values: sums
                .iter()
                .map(|b| (b.attempts > 0).then(|| b.succeeded as f64 * 100.0 / b.attempts as f64))
                .collect(),
        }],
    );
    let quantile = |q: f64| -> Vec<Option<f64>> {
        sums.iter()
            .map(|b| {
                crate::traffic::percentile(&b.latency, q).map(|ms| {
                    ms.min(2 * hookd_store::LATENCY_BOUNDS_MS[hookd_store::LATENCY_BOUNDS_MS.len() - 1]) as f64
                })
            })
            .collect()
    };
    let latency_chart = charts::render(
        &Frame {
            title: "Publish-to-delivered latency (upper bound of its bucket)",
            unit: " ms",
            x_labels: labels(),
            y_max: None,
        },
        &[
            Series {
                name: "p50",
                mark: Mark::Line,
                values: quantile(0.50),
            },
            Series {
                name: "p95",
                mark: Mark::Line,
                values: quantile(0.95),
            },
            Series {
                name: "p99",
                mark: Mark::Line,
                values: quantile(0.99),
            },
        ],
    );
    let p = |q| crate::traffic::percentile(&total.latency, q);
    Ok(TrafficView {
        range: name,
        messages: total.messages,
        deliveries: total.deliveries,
        attempts: total.attempts,
        success_rate: (total.attempts > 0)
            .then(|| format!("{:.1} %", total.succeeded as f64 * 100.0 / total.attempts as f64)),
        failed: total.failed,
        latency: match (p(0.50), p(0.95), p(0.99)) {
            (Some(a), Some(b), Some(c)) => Some((latency_text(a), latency_text(b), latency_text(c))),
            _ => None,
        },
        charts: vec![volume, outcomes, rate, latency_chart],
    })
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

/// `GET /?range=1h|24h|7d`: the overview.
pub async fn overview(State(state): State<AppState>, op: Operator, Query(query): Query<OverviewQuery>) -> Response {
    let traffic = match traffic_view(&state, op.env, &query.range).await {
        Ok(view) => view,
        Err(e) => return unavailable(&e),
    };
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
        traffic,
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
