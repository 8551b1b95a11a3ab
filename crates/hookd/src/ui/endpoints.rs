//! An application's page, and its endpoints: create with inline errors, event types grouped as
//! in the catalog, enable and disable, reveal and rotate the signing secret.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookd_core::model::{Application, Endpoint, EventType, MessageStatus};
use hookd_store::PageRequest;

use super::pages::Chrome;
use super::session::Viewer;
use super::{render, unavailable, Fields, Posted};
use crate::auth::Capability;
use crate::ops::endpoints::{EndpointIn, EndpointPatch, RotateIn};
use crate::ops::{OpsError, OpsResult};
use crate::state::AppState;

/// Most endpoints the application page lists.
const ENDPOINTS_SHOWN: usize = 250;

/// One row of an application's endpoint table.
struct EndpointRow {
    id: String,
    url: String,
    description: String,
    state: &'static str,
    filter: String,
}

impl EndpointRow {
    fn from(e: &Endpoint) -> EndpointRow {
        EndpointRow {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            state: state_of(e),
            filter: match &e.event_types {
                Some(types) => types.join(", "),
                None => "every event".to_string(),
            },
        }
    }
}

fn state_of(e: &Endpoint) -> &'static str {
    match (e.disabled, e.failing_since.is_some()) {
        (true, _) => "disabled",
        (false, true) => "failing",
        (false, false) => "enabled",
    }
}

#[derive(Template)]
#[template(path = "application.html")]
struct ApplicationPage {
    chrome: Chrome,
    app: Application,
    endpoints: Vec<EndpointRow>,
    more: bool,
}

/// The answer when the viewer's portal link did not grant what an action needs.
pub(super) fn not_granted(what: Capability) -> Response {
    (
        StatusCode::FORBIDDEN,
        format!(
            "this portal session may not do that (it needs the {} capability)",
            what.as_str()
        ),
    )
        .into_response()
}

/// The 403 to answer when the viewer may not do what `what` covers.
pub(super) fn refusal(op: &Viewer, what: Capability) -> Option<Response> {
    (!op.may(what)).then(|| not_granted(what))
}

/// Loads the viewer's application `key` (id or uid) or answers 404: one of the operator's
/// environment, or the portal session's own.
pub(super) async fn application(state: &AppState, op: &Viewer, key: &str) -> Result<Application, Response> {
    match state.store.get_application(op.env, key).await {
        Ok(Some(app)) if op.sees_app(&app.id) => Ok(app),
        Ok(Some(_)) => Err((StatusCode::NOT_FOUND, "no such application in this environment").into_response()),
        Ok(None) => Err((StatusCode::NOT_FOUND, "no such application in this environment").into_response()),
        Err(e) => Err(unavailable(&e)),
    }
}

/// `GET /apps/{app}`: the application and its endpoints.
pub async fn show_application(State(state): State<AppState>, op: Viewer, Path(key): Path<String>) -> Response {
    let app = match application(&state, &op, &key).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    let page = PageRequest::first(ENDPOINTS_SHOWN, true);
    let found = match state.store.list_endpoints(&app.id, &page).await {
        Ok(found) => found,
        Err(e) => return unavailable(&e),
    };
    let page = ApplicationPage {
        chrome: Chrome::new(&op, "applications"),
        endpoints: found.items.iter().map(EndpointRow::from).collect(),
        more: found.has_more,
        app,
    };
    render(StatusCode::OK, &page)
}

/// One event type's checkbox.
struct Choice {
    name: String,
    about: String,
    checked: bool,
}

/// The catalog's event types grouped by `groupName` (ungrouped ones last, under "Other").
struct Group {
    name: String,
    types: Vec<Choice>,
}

fn groups(catalog: &[EventType], checked: &[String]) -> Vec<Group> {
    let mut by_group: BTreeMap<(bool, String), Vec<Choice>> = BTreeMap::new();
    for t in catalog {
        let key = match &t.group_name {
            Some(g) => (false, g.clone()),
            None => (true, "Other".to_string()),
        };
        by_group.entry(key).or_default().push(Choice {
            name: t.name.clone(),
            about: t.description.clone(),
            checked: checked.contains(&t.name),
        });
    }
    by_group
        .into_iter()
        .map(|((_, name), types)| Group { name, types })
        .collect()
}

#[derive(Template)]
#[template(path = "endpoint_form.html")]
struct EndpointForm {
    chrome: Chrome,
    app: Application,
    /// Where the form posts; `None` for a new endpoint.
    editing: Option<String>,
    /// Names of sensitive headers kept without showing their values.
    withheld: Vec<String>,
    groups: Vec<Group>,
    url: String,
    description: String,
    channels: String,
    throttle_rate: String,
    headers: String,
    errors: Vec<(String, String)>,
}

async fn catalog(state: &AppState, op: &Viewer) -> OpsResult<Vec<EventType>> {
    crate::ops::event_types::all_event_types(state.store.as_ref(), op.env, false).await
}

/// `GET /apps/{app}/endpoints/new`: the new-endpoint form.
pub async fn new_endpoint(State(state): State<AppState>, op: Viewer, Path(key): Path<String>) -> Response {
    if let Some(r) = refusal(&op, Capability::ManageEndpoint) {
        return r;
    }
    let app = match application(&state, &op, &key).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    let types = match catalog(&state, &op).await {
        Ok(types) => types,
        Err(e) => return ops_failure(e),
    };
    let form = EndpointForm {
        chrome: Chrome::new(&op, "applications"),
        groups: groups(&types, &[]),
        editing: None,
        withheld: Vec::new(),
        app,
        url: String::new(),
        description: String::new(),
        channels: String::new(),
        throttle_rate: String::new(),
        headers: String::new(),
        errors: Vec::new(),
    };
    render(StatusCode::OK, &form)
}

/// `POST /apps/{app}/endpoints`: creates an endpoint; invalid fields are explained beside the
/// form, which keeps what was typed.
pub async fn create_endpoint(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Posted { op, fields }: Posted<Viewer>,
) -> Response {
    if let Some(r) = refusal(&op, Capability::ManageEndpoint) {
        return r;
    }
    let app = match application(&state, &op, &key).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    let checked = fields.all("event_types");
    let (input, mut errors) = endpoint_input(&fields, &checked);
    if errors.is_empty() {
        match crate::ops::endpoints::create_endpoint(&state, &app, input).await {
            Ok(e) => {
                return Redirect::to(&format!("{}/apps/{}/endpoints/{}", op.root(), app.id, e.id)).into_response();
            }
            Err(e) => match form_errors(e) {
                Ok(found) => errors.extend(found),
                Err(e) => return ops_failure(e),
            },
        }
    }
    let types = match catalog(&state, &op).await {
        Ok(types) => types,
        Err(e) => return ops_failure(e),
    };
    let form = EndpointForm {
        chrome: Chrome::new(&op, "applications"),
        groups: groups(&types, &checked),
        editing: None,
        withheld: Vec::new(),
        app,
        url: fields.one("url"),
        description: fields.one("description"),
        channels: fields.one("channels"),
        throttle_rate: fields.one("throttle_rate"),
        headers: fields.one("headers"),
        errors,
    };
    render(StatusCode::UNPROCESSABLE_ENTITY, &form)
}

/// `GET /apps/{app}/endpoints/{endpoint}/edit`: the endpoint's settings in the form.
pub async fn edit_endpoint(
    State(state): State<AppState>,
    op: Viewer,
    Path((app_key, key)): Path<(String, String)>,
) -> Response {
    if let Some(r) = refusal(&op, Capability::ManageEndpoint) {
        return r;
    }
    let app = match application(&state, &op, &app_key).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    let (endpoint, types) = match async {
        let e = crate::ops::endpoints::get_endpoint(&state, &app, &key).await?;
        Ok::<_, OpsError>((e, catalog(&state, &op).await?))
    }
    .await
    {
        Ok(found) => found,
        Err(e) => return ops_failure(e),
    };
    let (shown, withheld) = crate::ops::endpoints::visible_headers(&endpoint);
    let checked = endpoint.event_types.clone().unwrap_or_default();
    let form = EndpointForm {
        chrome: Chrome::new(&op, "applications"),
        groups: groups(&types, &checked),
        editing: Some(endpoint.id.clone()),
        withheld,
        url: endpoint.url.clone(),
        description: endpoint.description.clone(),
        channels: endpoint.channels.clone().unwrap_or_default().join(", "),
        throttle_rate: endpoint.throttle_rate.map(|r| r.to_string()).unwrap_or_default(),
        headers: shown.iter().map(|(k, v)| format!("{k}: {v}\n")).collect(),
        errors: Vec::new(),
        app,
    };
    render(StatusCode::OK, &form)
}

/// `POST /apps/{app}/endpoints/{endpoint}/edit`: saves the form. The headers listed replace
/// the shown ones; sensitive headers whose values are withheld are kept unless a line names
/// them with a new value.
pub async fn update_endpoint(
    State(state): State<AppState>,
    Path((app_key, key)): Path<(String, String)>,
    Posted { op, fields }: Posted<Viewer>,
) -> Response {
    if let Some(r) = refusal(&op, Capability::ManageEndpoint) {
        return r;
    }
    let app = match application(&state, &op, &app_key).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    let current = match crate::ops::endpoints::get_endpoint(&state, &app, &key).await {
        Ok(e) => e,
        Err(e) => return ops_failure(e),
    };
    let checked = fields.all("event_types");
    let (input, mut errors) = endpoint_input(&fields, &checked);
    if errors.is_empty() {
        let patch = EndpointPatch {
            url: Some(input.url),
            description: Some(input.description.unwrap_or_default()),
            event_types: Some(input.event_types),
            channels: Some(input.channels),
            throttle_rate: Some(input.throttle_rate),
            ..EndpointPatch::default()
        };
        let (shown, _) = crate::ops::endpoints::visible_headers(&current);
        let new = input.headers.unwrap_or_default();
        let headers = crate::ops::endpoints::HeadersPatch {
            headers: new.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
            delete_headers: shown.keys().filter(|k| !new.contains_key(*k)).cloned().collect(),
        };
        let saved = async {
            crate::ops::endpoints::patch_endpoint(&state, &app, &current.id, patch).await?;
            crate::ops::endpoints::patch_headers(&state, &app, &current.id, headers).await
        };
        match saved.await {
            Ok(()) => {
                return Redirect::to(&format!("{}/apps/{}/endpoints/{}", op.root(), app.id, current.id))
                    .into_response();
            }
            Err(e) => match form_errors(e) {
                Ok(found) => errors.extend(found),
                Err(e) => return ops_failure(e),
            },
        }
    }
    let types = match catalog(&state, &op).await {
        Ok(types) => types,
        Err(e) => return ops_failure(e),
    };
    let (_, withheld) = crate::ops::endpoints::visible_headers(&current);
    let form = EndpointForm {
        chrome: Chrome::new(&op, "applications"),
        groups: groups(&types, &checked),
        editing: Some(current.id.clone()),
        withheld,
        app,
        url: fields.one("url"),
        description: fields.one("description"),
        channels: fields.one("channels"),
        throttle_rate: fields.one("throttle_rate"),
        headers: fields.one("headers"),
        errors,
    };
    render(StatusCode::UNPROCESSABLE_ENTITY, &form)
}

/// The endpoint a form describes, and the errors the form itself shows (before any rule of
/// the endpoint is checked).
fn endpoint_input(fields: &Fields, checked: &[String]) -> (EndpointIn, Vec<(String, String)>) {
    let mut errors = Vec::new();
    let list = |s: String| -> Option<Vec<String>> {
        let items: Vec<String> = s
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        (!items.is_empty()).then_some(items)
    };
    let throttle = fields.one("throttle_rate");
    let throttle_rate = if throttle.is_empty() {
        None
    } else {
        match throttle.parse::<u16>() {
            Ok(rate) => Some(rate),
            Err(_) => {
                errors.push((
                    "throttleRate".to_string(),
                    "a whole number of messages per second, 1 to 65535".to_string(),
                ));
                None
            }
        }
    };
    let mut headers = BTreeMap::new();
    for line in fields.one("headers").lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                headers.insert(name.trim().to_string(), value.trim().to_string());
            }
            _ => errors.push((
                "headers".to_string(),
                format!("\"{line}\" is not a header: write one \"Name: value\" per line"),
            )),
        }
    }
    let input = EndpointIn {
        url: fields.one("url"),
        description: Some(fields.one("description")).filter(|d| !d.is_empty()),
        event_types: (!checked.is_empty()).then(|| checked.to_vec()),
        channels: list(fields.one("channels")),
        throttle_rate,
        headers: (!headers.is_empty()).then_some(headers),
        ..EndpointIn::default()
    };
    (input, errors)
}

#[derive(Template)]
#[template(path = "endpoint.html")]
struct EndpointPage {
    chrome: Chrome,
    app: Application,
    endpoint: Endpoint,
    state: &'static str,
    filter: String,
    channels: String,
    headers: Vec<(String, String)>,
    withheld: Vec<String>,
    secret: Option<String>,
    notice: Option<&'static str>,
    /// Background tasks the last action started.
    tasks: Vec<String>,
    /// Of the newest attempts (at most [`LATENCY_SAMPLE`]), how many succeeded, and how many
    /// there are.
    succeeded: usize,
    attempted: usize,
    /// Response time percentiles (p50, p95, p99) of the newest attempts, in ms.
    latency: Option<(i64, i64, i64)>,
    /// How many attempts the percentiles cover.
    sampled: usize,
    /// Event types a test event can be sent as.
    test_types: Vec<String>,
}

/// The newest attempts the endpoint page's latency percentiles cover.
const LATENCY_SAMPLE: usize = 500;

/// The `q`-quantile (0..=1) of sorted `values` (nearest rank).
fn quantile(sorted: &[i64], q: f64) -> i64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn endpoint_page(
    state: &AppState,
    op: &Viewer,
    app: Application,
    key: &str,
    secret: Option<String>,
    notice: Option<&'static str>,
    tasks: Vec<String>,
) -> Response {
    let endpoint = match crate::ops::endpoints::get_endpoint(state, &app, key).await {
        Ok(e) => e,
        Err(e) => return ops_failure(e),
    };
    let (shown, withheld) = crate::ops::endpoints::visible_headers(&endpoint);
    let recent = hookd_store::AttemptFilter {
        app_id: app.id.clone(),
        endpoint_id: Some(endpoint.id.clone()),
        ..hookd_store::AttemptFilter::default()
    };
    // The newest attempts, found through the endpoint's index: the health figures cost the
    // same however long the endpoint's history is.
    let sample = match state
        .store
        .list_attempts(&recent, &PageRequest::first(LATENCY_SAMPLE, false))
        .await
    {
        Ok(page) => page.items,
        Err(e) => return unavailable(&e),
    };
    let succeeded = sample.iter().filter(|a| a.status == MessageStatus::Success).count();
    let mut durations: Vec<i64> = sample
        .iter()
        .filter(|a| a.response_status_code != 0)
        .map(|a| a.response_duration_ms)
        .collect();
    durations.sort_unstable();
    let latency = (!durations.is_empty()).then(|| {
        (
            quantile(&durations, 0.50),
            quantile(&durations, 0.95),
            quantile(&durations, 0.99),
        )
    });
    let mut test_types = vec!["svix.ping".to_string()];
    match catalog(state, op).await {
        Ok(types) => test_types.extend(types.into_iter().map(|t| t.name)),
        Err(e) => return ops_failure(e),
    }
    let page = EndpointPage {
        succeeded,
        attempted: sample.len(),
        sampled: durations.len(),
        latency,
        test_types,
        chrome: Chrome::new(op, "applications"),
        state: state_of(&endpoint),
        filter: endpoint
            .event_types
            .as_ref()
            .map(|t| t.join(", "))
            .unwrap_or_else(|| "every event type".to_string()),
        channels: endpoint
            .channels
            .as_ref()
            .map(|c| c.join(", "))
            .unwrap_or_else(|| "any channel".to_string()),
        headers: shown.into_iter().collect(),
        withheld,
        secret,
        notice,
        tasks,
        app,
        endpoint,
    };
    render(StatusCode::OK, &page)
}

/// `GET /apps/{app}/endpoints/{endpoint}`: an endpoint's settings and state.
pub async fn show_endpoint(
    State(state): State<AppState>,
    op: Viewer,
    Path((app_key, key)): Path<(String, String)>,
) -> Response {
    match application(&state, &op, &app_key).await {
        Ok(app) => endpoint_page(&state, &op, app, &key, None, None, Vec::new()).await,
        Err(r) => r,
    }
}

/// What each endpoint action needs a portal session to have been granted.
fn needs(action: &str) -> &'static [Capability] {
    match action {
        "enable" | "disable" | "delete" => &[Capability::ManageEndpoint],
        "enable-replay" => &[Capability::ManageEndpoint, Capability::CreateAttempts],
        "test" | "recover" => &[Capability::CreateAttempts],
        "reveal" => &[Capability::ViewEndpointSecret],
        "rotate" => &[Capability::ManageEndpointSecret],
        _ => &[],
    }
}

/// `POST /apps/{app}/endpoints/{endpoint}/{action}`: `enable`, `disable`, `delete`, `test`
/// (sends an example of an event type), `recover` (resends what failed since a time, in a
/// background task), `enable-replay`, `reveal` (shows the signing secret once, on this page) or
/// `rotate` (a new secret; the old one keeps signing for 24 hours).
pub async fn endpoint_action(
    State(state): State<AppState>,
    Path((app_key, key, action)): Path<(String, String, String)>,
    Posted { op, fields }: Posted<Viewer>,
) -> Response {
    let app = match application(&state, &op, &app_key).await {
        Ok(app) => app,
        Err(r) => return r,
    };
    if let Some(missing) = needs(&action).iter().find(|c| !op.may(**c)) {
        return not_granted(*missing);
    }
    let done = match action.as_str() {
        "delete" => {
            return match crate::ops::endpoints::delete_endpoint(&state, &app, &key).await {
                Ok(()) => Redirect::to(&format!("{}/apps/{}", op.root(), app.id)).into_response(),
                Err(e) => ops_failure(e),
            };
        }
        "recover" => {
            let Some(since) = super::messages::utc(&fields.one("since")) else {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "give the time to recover from as YYYY-MM-DDTHH:MM (UTC)",
                )
                    .into_response();
            };
            let window = crate::ops::replay::WindowIn { since, until: None };
            let started = async {
                let endpoint = crate::ops::endpoints::get_endpoint(&state, &app, &key).await?;
                crate::ops::replay::recover(&state, &app, &endpoint, window).await
            };
            return match started.await {
                Ok(task) => endpoint_page(&state, &op, app, &key, None, Some(RECOVERING), vec![task.id]).await,
                Err(e) => ops_failure(e),
            };
        }
        "enable" | "disable" => {
            let patch = EndpointPatch {
                disabled: Some(action == "disable"),
                ..EndpointPatch::default()
            };
            crate::ops::endpoints::patch_endpoint(&state, &app, &key, patch)
                .await
                .map(|_| (None, if action == "enable" { "Enabled." } else { "Disabled." }))
        }
        "test" => {
            let input = crate::ops::replay::EventExampleIn {
                event_type: fields.one("event_type"),
                example_index: None,
            };
            let sent = async {
                let endpoint = crate::ops::endpoints::get_endpoint(&state, &app, &key).await?;
                crate::ops::replay::send_example(&state, &app, &endpoint, input).await
            };
            return match sent.await {
                Ok(message) => {
                    Redirect::to(&format!("{}/apps/{}/messages/{}", op.root(), app.id, message.id)).into_response()
                }
                Err(e) => ops_failure(e),
            };
        }
        "enable-replay" => {
            return match enable_and_replay(&state, &app, &key).await {
                Ok(tasks) => endpoint_page(&state, &op, app, &key, None, Some(REPLAYING), tasks).await,
                Err(e) => ops_failure(e),
            };
        }
        "reveal" => crate::ops::endpoints::get_endpoint(&state, &app, &key)
            .await
            .and_then(|e| crate::ops::endpoints::verification_key(&e))
            .map(|secret| (Some(secret), "Keep this secret on the receiving side only.")),
        "rotate" => crate::ops::endpoints::rotate_secret(&state, &app, &key, RotateIn::default())
            .await
            .map(|secret| {
                (
                    Some(secret),
                    "Rotated. The previous secret keeps signing beside this one for 24 hours.",
                )
            }),
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    match done {
        Ok((secret, notice)) => endpoint_page(&state, &op, app, &key, secret, Some(notice), Vec::new()).await,
        Err(e) => ops_failure(e),
    }
}

/// The notice after "recover".
const RECOVERING: &str = "A background task now resends every delivery that failed since then:";

/// The notice after "enable and replay".
const REPLAYING: &str = "Enabled. Two background tasks now send what it missed:";

/// Enables an endpoint and sends what it missed, in two background tasks: the messages
/// published while it was disabled (which were never fanned out to it), and the deliveries that
/// failed since its failing run began (or, for one disabled by hand, since it was disabled), at
/// most the 90 days a replay covers. Returns the tasks' ids.
async fn enable_and_replay(state: &AppState, app: &Application, key: &str) -> OpsResult<Vec<String>> {
    let endpoint = crate::ops::endpoints::get_endpoint(state, app, key).await?;
    let now = state.clock.now();
    let since = endpoint
        .failing_since
        .unwrap_or(endpoint.updated_at)
        .min(endpoint.updated_at)
        .max(now - chrono::Duration::days(90) + chrono::Duration::seconds(1))
        .min(now - chrono::Duration::seconds(1));
    let patch = EndpointPatch {
        disabled: Some(false),
        ..EndpointPatch::default()
    };
    let endpoint = crate::ops::endpoints::patch_endpoint(state, app, key, patch).await?;
    let window = || crate::ops::replay::WindowIn { since, until: None };
    let missing = crate::ops::replay::replay_missing(state, app, &endpoint, window()).await?;
    let failed = crate::ops::replay::recover(state, app, &endpoint, window()).await?;
    Ok(vec![missing.id, failed.id])
}

/// A use-case's refusal as the errors a form shows (by field; `""` above the form), or the
/// error back when it is not the form's to explain.
fn form_errors(e: OpsError) -> Result<Vec<(String, String)>, OpsError> {
    match e {
        OpsError::Invalid(found) => Ok(found
            .into_iter()
            .map(|f| (f.loc.last().cloned().unwrap_or_default(), f.msg))
            .collect()),
        OpsError::Conflict { detail, .. } | OpsError::BadRequest { detail, .. } => Ok(vec![(String::new(), detail)]),
        e => Err(e),
    }
}

/// A use-case failure that is not the form's to explain.
pub(super) fn ops_failure(e: OpsError) -> Response {
    match e {
        OpsError::NotFound(what) => (StatusCode::NOT_FOUND, format!("no such {what}")).into_response(),
        OpsError::Store(e) => unavailable(&e),
        other => (StatusCode::UNPROCESSABLE_ENTITY, other.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.50), 50);
        assert_eq!(quantile(&values, 0.95), 95);
        assert_eq!(quantile(&values, 0.99), 99);
        assert_eq!(quantile(&[7], 0.99), 7);
    }
}
