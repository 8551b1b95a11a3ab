//! Sending messages to an endpoint again, in bulk, as background tasks: `recover` (failed
//! deliveries), `replay-missing` (messages the endpoint never got, e.g. while it was disabled)
//! and `bulk-replay` (deliveries matching filters). Each runs in the background as a task whose
//! progress the background-task routes report; every message it picks gets one manual attempt.
//!
//! Also: delivery and attempt statistics of an endpoint, and `send-example`.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use hookd_core::filter::endpoint_accepts;
use hookd_core::id::IdKind;
use hookd_core::model::{Application, Endpoint, Environment, Message, MessageStatus};
use hookd_core::validate::FieldError;
use hookd_store::{
    NewDelivery, Page, PageRequest, ReplayKind, ReplayQuery, StatusCounts, TaskFilter, TaskRecord, TaskStatus,
};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::messages::{publish, MessageIn};
use super::Services;
use super::{ErrorCode, OpsError, OpsResult};

/// Longest window a replay or a statistics query may cover (the payload retention).
pub const MAX_WINDOW: Duration = Duration::days(90);
/// Default window of endpoint statistics.
pub const DEFAULT_STATS_WINDOW: Duration = Duration::days(28);
/// Messages scheduled per step of a task (progress is saved after each).
const BATCH: usize = 100;

/// A time window (Svix `RecoverIn` / `ReplayIn`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowIn {
    /// Messages created at or after.
    #[serde(deserialize_with = "datetime")]
    pub since: DateTime<Utc>,
    /// Messages created before (default: now).
    #[serde(default, deserialize_with = "opt_datetime")]
    pub until: Option<DateTime<Utc>>,
}

/// A filtered replay (Svix `BulkReplayIn`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkReplayIn {
    /// Messages created at or after.
    #[serde(deserialize_with = "datetime")]
    pub since: DateTime<Utc>,
    /// Messages created before (default: now).
    #[serde(default, deserialize_with = "opt_datetime")]
    pub until: Option<DateTime<Utc>>,
    /// Only these event types.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Only messages on this channel.
    #[serde(default)]
    pub channel: Option<String>,
    /// Only deliveries in this status (default: failed).
    #[serde(default)]
    pub status: Option<i64>,
    /// Only deliveries whose last response was in this class.
    #[serde(default)]
    pub status_code_class: Option<i64>,
}

/// `send-example` input (Svix `EventExampleIn`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    /// Event type whose example is sent; `svix.ping` sends `{"success": true}`.
    pub event_type: String,
    /// Which of the schema's examples (default the first).
    #[serde(default)]
    pub example_index: Option<usize>,
}

/// Reads RFC 3339, or a date-time without zone as UTC (what the SDKs send for naive values).
fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

fn datetime<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_datetime(&s).ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an RFC 3339 date-time")))
}

fn opt_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_datetime(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an RFC 3339 date-time"))),
    }
}

/// Checks a window and fills in `until`.
pub fn window(
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> OpsResult<(DateTime<Utc>, DateTime<Utc>)> {
    let until = until.unwrap_or(now);
    if since >= until {
        return Err(FieldError::new(&["since"], "since must be before until").into());
    }
    if until - since > MAX_WINDOW {
        return Err(FieldError::new(&["since"], "the window may cover at most 90 days").into());
    }
    Ok((since, until))
}

/// Starts a replay task over `kind` and returns it (status `running`).
async fn start(
    state: &Services,
    app: &Application,
    endpoint: &Endpoint,
    task: &'static str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    kind: ReplayKind,
) -> OpsResult<TaskRecord> {
    // Bounded per application and per node: one customer's replays cannot crowd out the rest.
    let slot = state.tasks.try_take(&app.id).ok_or_else(|| OpsError::Conflict {
        code: ErrorCode::TooManyTasks,
        detail: format!(
            "{} background tasks are already running for this application (at most {} on this node); \
             retry when one finishes",
            super::services::TASKS_PER_APP,
            super::services::TASKS_PER_NODE
        ),
    })?;
    let now = state.clock.now();
    let record = TaskRecord {
        id: IdKind::Task.generate(now, &mut rand::thread_rng()),
        app_id: app.id.clone(),
        endpoint_id: Some(endpoint.id.clone()),
        kind: task.to_string(),
        status: TaskStatus::Running,
        data: json!({"messagesSent": 0}),
        created_at: now,
        updated_at: now,
    };
    state.store.create_task(&record).await?;
    let query = ReplayQuery {
        app_id: app.id.clone(),
        endpoint_id: endpoint.id.clone(),
        since,
        until,
        kind,
    };
    let (state2, endpoint2, id) = (state.clone(), endpoint.clone(), record.id.clone());
    tokio::spawn(async move {
        let _slot = slot;
        let (status, data) = match run(&state2, &endpoint2, &id, &query).await {
            Ok(sent) => (TaskStatus::Finished, json!({"messagesSent": sent})),
            Err(e) => {
                tracing::error!(task = %id, error = %e, "background task failed");
                (TaskStatus::Failed, json!({"error": e.to_string()}))
            }
        };
        if let Err(e) = state2.store.update_task(&id, status, &data, state2.clock.now()).await {
            tracing::error!(task = %id, error = %e, "cannot record the end of a background task");
        }
    });
    Ok(record)
}

/// Schedules one manual attempt per picked message, batch by batch, saving progress.
async fn run(state: &Services, endpoint: &Endpoint, task_id: &str, query: &ReplayQuery) -> OpsResult<u64> {
    // Replays go to the endpoint whatever its disabled flag says; its filters still decide
    // which never-sent messages were meant for it.
    let mut filter_view = endpoint.clone();
    filter_view.disabled = false;
    let mut sent = 0u64;
    let mut after: Option<String> = None;
    loop {
        let batch = state.store.replay_candidates(query, after.as_deref(), BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id.clone());
        for m in &batch {
            let wanted = match query.kind {
                ReplayKind::Missing => endpoint_accepts(&filter_view, &m.event_type, m.channels.as_deref()),
                ReplayKind::Deliveries { .. } => true,
            };
            if wanted && m.payload.is_some() {
                schedule(state, m, endpoint).await?;
                sent += 1;
            }
        }
        state.dispatcher.wake();
        state
            .store
            .update_task(
                task_id,
                TaskStatus::Running,
                &json!({"messagesSent": sent}),
                state.clock.now(),
            )
            .await?;
        if batch.len() < BATCH {
            break;
        }
    }
    Ok(sent)
}

async fn schedule(state: &Services, m: &Message, endpoint: &Endpoint) -> OpsResult<()> {
    let now = state.clock.now();
    let d = NewDelivery {
        id: IdKind::Delivery.generate(now, &mut rand::thread_rng()),
        msg_id: m.id.clone(),
        endpoint_id: endpoint.id.clone(),
        app_id: endpoint.app_id.clone(),
        due_at: now,
        leased_until: None,
        lease_token: 0,
        lane: None,
    };
    state.store.schedule_manual(&d, now).await?;
    Ok(())
}

/// Resends every message whose delivery to the endpoint failed in the window.
pub async fn recover(
    state: &Services,
    app: &Application,
    endpoint: &Endpoint,
    input: WindowIn,
) -> OpsResult<TaskRecord> {
    let (since, until) = window(input.since, input.until, state.clock.now())?;
    let kind = ReplayKind::Deliveries {
        statuses: vec![MessageStatus::Fail],
        event_types: None,
        channel: None,
        status_code_class: None,
    };
    start(state, app, endpoint, "endpoint.recover", since, until, kind).await
}

/// Sends the messages of the window that the endpoint never got.
pub async fn replay_missing(
    state: &Services,
    app: &Application,
    endpoint: &Endpoint,
    input: WindowIn,
) -> OpsResult<TaskRecord> {
    let (since, until) = window(input.since, input.until, state.clock.now())?;
    start(
        state,
        app,
        endpoint,
        "endpoint.replay",
        since,
        until,
        ReplayKind::Missing,
    )
    .await
}

/// Resends the deliveries matching the filters (failed ones unless `status` says otherwise).
pub async fn bulk_replay(
    state: &Services,
    app: &Application,
    endpoint: &Endpoint,
    input: BulkReplayIn,
) -> OpsResult<TaskRecord> {
    let (since, until) = window(input.since, input.until, state.clock.now())?;
    let status = match input.status {
        None => MessageStatus::Fail,
        Some(code) => {
            MessageStatus::from_code(code).ok_or_else(|| FieldError::new(&["status"], "status must be 0, 1, 2 or 3"))?
        }
    };
    if input
        .status_code_class
        .is_some_and(|c| ![0, 100, 200, 300, 400, 500].contains(&c))
    {
        return Err(FieldError::new(
            &["statusCodeClass"],
            "statusCodeClass must be 0, 100, 200, 300, 400 or 500",
        )
        .into());
    }
    let kind = ReplayKind::Deliveries {
        statuses: vec![status],
        event_types: input.event_types,
        channel: input.channel,
        status_code_class: input.status_code_class,
    };
    start(state, app, endpoint, "endpoint.bulk-replay", since, until, kind).await
}

/// One background task of the environment.
pub async fn get_task(state: &Services, env: Environment, id: &str) -> OpsResult<TaskRecord> {
    state
        .store
        .get_task(env, id)
        .await?
        .ok_or(OpsError::NotFound("background task"))
}

/// Background tasks of the environment.
pub async fn list_tasks(
    state: &Services,
    env: Environment,
    filter: &TaskFilter,
    page: &PageRequest,
) -> OpsResult<Page<TaskRecord>> {
    Ok(state.store.list_tasks(env, filter, page).await?)
}

/// Deliveries (by status) and attempts (by outcome) of an endpoint over a window (default the
/// last 28 days).
pub async fn stats(
    state: &Services,
    endpoint: &Endpoint,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    attempts: bool,
) -> OpsResult<StatusCounts> {
    let now = state.clock.now();
    let until = until.unwrap_or(now);
    let since = since.unwrap_or(until - DEFAULT_STATS_WINDOW);
    if since >= until || until - since > MAX_WINDOW {
        return Err(OpsError::BadRequest {
            code: ErrorCode::InvalidRange,
            detail: "since must be before until, and the range at most 90 days".into(),
        });
    }
    Ok(if attempts {
        state.store.attempt_counts(&endpoint.id, since, until).await?
    } else {
        state.store.delivery_counts(&endpoint.id, since, until).await?
    })
}

/// Sends an event type's example (or `svix.ping`'s `{"success": true}`) to one endpoint, as a
/// real message with the usual retries; the endpoint's filters still apply. An envelope-shaped
/// example gets a new event id and the current time, so each test event is distinct.
pub async fn send_example(
    state: &Services,
    app: &Application,
    endpoint: &Endpoint,
    input: EventExampleIn,
) -> OpsResult<std::sync::Arc<Message>> {
    let payload = if input.event_type == "svix.ping" {
        json!({"success": true})
    } else {
        let et = state
            .store
            .get_event_type(app.env, &input.event_type)
            .await?
            .ok_or(OpsError::NotFound("event type"))?;
        let mut example = crate::catalog::example_of(et.schemas.as_ref(), input.example_index.unwrap_or(0))
            .ok_or_else(|| OpsError::BadRequest {
                code: ErrorCode::InvalidScheme,
                detail: "Unable to generate example message from event-type schema".into(),
            })?;
        crate::catalog::refresh_envelope(&mut example, state.clock.now());
        example
    };
    let raw =
        serde_json::value::to_raw_value(&payload).map_err(|e| OpsError::Store(hookd_store::StoreError::internal(e)))?;
    let input = MessageIn {
        event_type: input.event_type,
        payload: raw,
        event_id: None,
        channels: None,
        payload_retention_period: None,
        application: None,
    };
    publish(state, app, input, Some(&endpoint.id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_must_be_ordered_and_bounded() {
        let now = Utc::now();
        assert!(window(now - Duration::hours(1), None, now).is_ok());
        assert!(window(now, Some(now - Duration::hours(1)), now).is_err());
        assert!(window(now - Duration::days(91), None, now).is_err());
    }

    #[test]
    fn naive_date_times_are_read_as_utc() {
        assert_eq!(
            parse_datetime("2026-01-02T03:04:05.5"),
            parse_datetime("2026-01-02T03:04:05.5Z")
        );
        assert!(parse_datetime("yesterday").is_none());
    }
}
