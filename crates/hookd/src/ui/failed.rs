//! An endpoint's failed deliveries, the dead-letter view: filter them, retry the selected ones
//! or every one that matches (a background task with its progress), with each failure's
//! cause told apart: the customer's endpoint, or hookd's side (address policy, DNS, proxy).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookd_core::model::{Application, Endpoint, MessageStatus};
use hookd_store::{AttemptFilter, Cursor, MessageFilter, PageRequest};
use serde::Deserialize;

use super::endpoints::{application, ops_failure, refusal};
use super::messages::utc;
use super::pages::Chrome;
use super::session::Viewer;
use super::{render, unavailable, Fields, Posted};
use crate::auth::Capability;
use crate::ops::attempts::FailureCause;
use crate::ops::replay::BulkReplayIn;
use crate::state::AppState;

/// Failed deliveries shown (and retried "selected") per page.
const PER_PAGE: usize = 50;

/// The view's filters.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct FailedQuery {
    #[serde(default)]
    event_type: String,
    /// Messages created at or after (UTC).
    #[serde(default)]
    since: String,
    /// Messages created before (UTC).
    #[serde(default)]
    until: String,
    /// Only failures of this cause (`endpoint` or `hookd`).
    #[serde(default)]
    cause: String,
    /// `unreviewed` (the default), `reviewed` or `all`.
    #[serde(default)]
    show: String,
    /// How many deliveries the last "mark reviewed" marked.
    #[serde(default)]
    marked: Option<usize>,
    #[serde(default)]
    after: String,
    /// How many deliveries the last "retry selected" resent.
    #[serde(default)]
    retried: Option<usize>,
}

struct FailedRow {
    msg_id: String,
    event_type: String,
    created: String,
    attempts: i64,
    reviewed: bool,
    code: i64,
    cause: &'static str,
    response: String,
}

#[derive(Template)]
#[template(path = "failed.html")]
struct FailedPage {
    chrome: Chrome,
    app: Application,
    endpoint: Endpoint,
    query: FailedQuery,
    rows: Vec<FailedRow>,
    next: Option<String>,
    error: Option<String>,
}

impl FailedPage {
    fn next_query(&self, after: &str) -> String {
        let q = &self.query;
        form_urlencoded::Serializer::new(String::new())
            .append_pair("event_type", &q.event_type)
            .append_pair("since", &q.since)
            .append_pair("until", &q.until)
            .append_pair("cause", &q.cause)
            .append_pair("show", &q.show)
            .append_pair("after", after)
            .finish()
    }
}

/// The viewer's endpoint `key` of application `app_key`, once the viewer is known to hold
/// `need` (a page that only shows asks for `ViewBase`, which every viewer holds).
async fn target(
    state: &AppState,
    op: &Viewer,
    need: Capability,
    app_key: &str,
    key: &str,
) -> Result<(Application, Endpoint), Response> {
    if let Some(r) = refusal(op, need) {
        return Err(r);
    }
    let app = application(state, op, app_key).await?;
    match crate::ops::endpoints::get_endpoint(state, &app, key).await {
        Ok(e) => Ok((app, e)),
        Err(e) => Err(ops_failure(e)),
    }
}

/// `GET /apps/{app}/endpoints/{endpoint}/failed`: the endpoint's failed deliveries, newest
/// message first.
pub async fn list(
    State(state): State<AppState>,
    op: Viewer,
    Path((app_key, key)): Path<(String, String)>,
    Query(query): Query<FailedQuery>,
) -> Response {
    let (app, endpoint) = match target(&state, &op, Capability::ViewBase, &app_key, &key).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut error = None;
    let since = parse_time("From", &query.since, &mut error);
    let until = parse_time("Until", &query.until, &mut error);
    let filter = MessageFilter {
        event_types: Some(vec![query.event_type.trim().to_string()]).filter(|t| !t[0].is_empty()),
        channel: None,
        after: since.map(|t| t - chrono::Duration::microseconds(1)),
        before: until,
        status: Some(MessageStatus::Fail),
        reviewed: match query.show.as_str() {
            "all" => None,
            "reviewed" => Some(true),
            _ => Some(false),
        },
    };
    let page = PageRequest {
        limit: PER_PAGE,
        cursor: Some(query.after.clone())
            .filter(|a| !a.is_empty())
            .map(|key| Cursor { key, backwards: false }),
        ascending: false,
    };
    let found = match state.store.list_endpoint_deliveries(&endpoint.id, &filter, &page).await {
        Ok(found) => found,
        Err(e) => return unavailable(&e),
    };
    let next = found
        .has_more
        .then(|| found.items.last().map(|(d, _)| d.msg_id.clone()))
        .flatten();
    let mut rows = Vec::with_capacity(found.items.len());
    for (delivery, message) in &found.items {
        // The latest attempt says why it failed (an indexed read of one row per delivery).
        let latest = AttemptFilter {
            app_id: app.id.clone(),
            msg_id: Some(delivery.msg_id.clone()),
            endpoint_id: Some(endpoint.id.clone()),
            ..AttemptFilter::default()
        };
        let attempt = match state.store.list_attempts(&latest, &PageRequest::first(1, false)).await {
            Ok(page) => page.items.into_iter().next(),
            Err(e) => return unavailable(&e),
        };
        let (code, response) = attempt
            .map(|a| (a.response_status_code, a.response))
            .unwrap_or((0, String::new()));
        let cause = FailureCause::of(code, &response).label();
        if !query.cause.is_empty() && query.cause != cause {
            continue;
        }
        rows.push(FailedRow {
            msg_id: delivery.msg_id.clone(),
            event_type: message.event_type.clone(),
            created: message.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            attempts: delivery.total_attempts,
            reviewed: delivery.reviewed_at.is_some(),
            code,
            cause,
            response: response.chars().take(160).collect(),
        });
    }
    let page = FailedPage {
        chrome: Chrome::new(&op, "applications"),
        app,
        endpoint,
        query,
        rows,
        next,
        error,
    };
    render(StatusCode::OK, &page)
}

fn parse_time(field: &str, value: &str, error: &mut Option<String>) -> Option<chrono::DateTime<chrono::Utc>> {
    if value.trim().is_empty() {
        return None;
    }
    let parsed = utc(value);
    if parsed.is_none() {
        *error = Some(format!("{field}: write a date and time as YYYY-MM-DDTHH:MM (UTC)"));
    }
    parsed
}

/// The endpoint a selection form was posted for, and the selected messages (at most a page),
/// once the viewer is known to hold `need`.
async fn selection(
    state: &AppState,
    op: &Viewer,
    need: Capability,
    (app_key, key): (&str, &str),
    fields: &Fields,
) -> Result<(Application, Endpoint, Vec<String>), Response> {
    let (app, endpoint) = target(state, op, need, app_key, key).await?;
    let selected = fields.all("msg");
    if selected.len() > PER_PAGE {
        let why = "select at most one page of deliveries; retry all matching for more";
        return Err((StatusCode::UNPROCESSABLE_ENTITY, why).into_response());
    }
    Ok((app, endpoint, selected))
}

/// `POST /apps/{app}/endpoints/{endpoint}/failed/retry`: resends the selected deliveries now
/// (each as a manual attempt), at most one page of them.
pub async fn retry_selected(
    State(state): State<AppState>,
    Path((app_key, key)): Path<(String, String)>,
    Posted { op, fields }: Posted<Viewer>,
) -> Response {
    let found = selection(&state, &op, Capability::CreateAttempts, (&app_key, &key), &fields).await;
    let (app, endpoint, selected) = match found {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut retried = 0;
    for msg_id in &selected {
        let message = match state.store.get_message(&app.id, msg_id).await {
            Ok(Some(m)) => m,
            Ok(None) => continue, // deleted meanwhile
            Err(e) => return unavailable(&e),
        };
        if let Err(e) = crate::ops::attempts::resend(&state, &app, &message, &endpoint).await {
            return ops_failure(e);
        }
        retried += 1;
    }
    Redirect::to(&format!(
        "{}/apps/{}/endpoints/{}/failed?retried={retried}",
        op.root(),
        app.id,
        endpoint.id
    ))
    .into_response()
}

/// `POST /apps/{app}/endpoints/{endpoint}/failed/review`: marks the selected failed deliveries
/// reviewed, so the default view no longer lists them (resending one clears its mark).
pub async fn mark_reviewed(
    State(state): State<AppState>,
    Path((app_key, key)): Path<(String, String)>,
    Posted { op, fields }: Posted<Viewer>,
) -> Response {
    let found = selection(&state, &op, Capability::ManageEndpoint, (&app_key, &key), &fields).await;
    let (app, endpoint, selected) = match found {
        Ok(found) => found,
        Err(r) => return r,
    };
    match state
        .store
        .mark_reviewed(&endpoint.id, &selected, state.clock.now())
        .await
    {
        Ok(n) => Redirect::to(&format!(
            "{}/apps/{}/endpoints/{}/failed?marked={n}",
            op.root(),
            app.id,
            endpoint.id
        ))
        .into_response(),
        Err(e) => unavailable(&e),
    }
}

/// `POST /apps/{app}/endpoints/{endpoint}/failed/retry-all`: resends every failed delivery the
/// filters match, in a background task whose progress has its own page.
pub async fn retry_all(
    State(state): State<AppState>,
    Path((app_key, key)): Path<(String, String)>,
    Posted { op, fields }: Posted<Viewer>,
) -> Response {
    let (app, endpoint) = match target(&state, &op, Capability::CreateAttempts, &app_key, &key).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let now = state.clock.now();
    let mut error = None;
    let since = parse_time("From", &fields.one("since"), &mut error);
    let until = parse_time("Until", &fields.one("until"), &mut error);
    if let Some(message) = error {
        return (StatusCode::UNPROCESSABLE_ENTITY, message).into_response();
    }
    let event_type = fields.one("event_type");
    let input = BulkReplayIn {
        // The longest window a replay covers, ending now, unless the filters narrow it.
        since: since.unwrap_or(now - chrono::Duration::days(90) + chrono::Duration::seconds(1)),
        until,
        event_types: (!event_type.is_empty()).then(|| vec![event_type]),
        channel: None,
        status: Some(MessageStatus::Fail.code()),
        status_code_class: None,
    };
    match crate::ops::replay::bulk_replay(&state, &app, &endpoint, input).await {
        Ok(task) => Redirect::to(&format!("{}/tasks/{}", op.root(), task.id)).into_response(),
        Err(e) => ops_failure(e),
    }
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Chrome,
    id: String,
    kind: String,
    status: &'static str,
    running: bool,
    data: String,
    app_id: String,
    endpoint_id: String,
}

/// `GET /tasks/{id}`: a background task's progress (the page refreshes itself while it runs).
pub async fn task(State(state): State<AppState>, op: Viewer, Path(id): Path<String>) -> Response {
    let task = match crate::ops::replay::get_task(&state, op.env, &id).await {
        Ok(task) if op.sees_app(&task.app_id) => task,
        Ok(_) => return ops_failure(crate::ops::OpsError::NotFound("task")),
        Err(e) => return ops_failure(e),
    };
    let page = TaskPage {
        chrome: Chrome::new(&op, "applications"),
        status: task.status.as_str(),
        running: task.status == hookd_store::TaskStatus::Running,
        data: serde_json::to_string_pretty(&task.data).unwrap_or_default(),
        kind: task.kind,
        app_id: task.app_id,
        endpoint_id: task.endpoint_id.unwrap_or_default(),
        id: task.id,
    };
    render(StatusCode::OK, &page)
}
