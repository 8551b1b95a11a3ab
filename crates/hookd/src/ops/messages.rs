//! Messages: publishing an event and fanning it out.

use std::sync::Arc;

use chrono::Duration;
use hookd_core::filter::endpoint_accepts;
use hookd_core::id::IdKind;
use hookd_core::model::{Application, Endpoint, Environment, Message};
use hookd_core::validate::{self, FieldError};
use hookd_store::{MessageFilter, NewDelivery, Page, PageRequest, StoreError};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::applications::{create_application, ApplicationIn};
use super::Services;
use super::{ErrorCode, OpsError, OpsResult, Problems};
use crate::config::Validation;

/// Shortest and longest payload retention, in days.
pub const RETENTION_DAYS: std::ops::RangeInclusive<i64> = 1..=90;
/// Retention when none is given, in days.
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

/// A message to publish (Svix `MessageIn`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    /// Event type name; need not exist in the catalog.
    pub event_type: String,
    /// The JSON object to deliver, kept byte for byte (`data` is accepted as an alias).
    #[serde(alias = "data")]
    pub payload: Box<RawValue>,
    /// The publisher's idempotency id, unique per application.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Channels for endpoint filtering.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Days to keep the payload.
    #[serde(default)]
    pub payload_retention_period: Option<i64>,
    /// Creates the application when the path names none that exists.
    #[serde(default)]
    pub application: Option<ApplicationIn>,
}

/// Deepest nesting of arrays and objects a payload may have. Deeper JSON is refused, not
/// stored: many receivers' parsers stop at 128 levels (serde_json, for one), and hookd's own
/// answer nests the payload one level further.
pub const MAX_PAYLOAD_DEPTH: usize = 100;

/// How deeply the arrays and objects of the JSON text `json` nest (brackets inside strings
/// are text, not nesting). Counted without parsing, so any depth costs one pass. A string is
/// skipped to its closing quote with `memchr` rather than byte by byte: most of a payload's
/// bytes are its keys and values.
pub fn json_depth(json: &str) -> usize {
    let bytes = json.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while let Some(&b) = bytes.get(at) {
        match b {
            b'"' => {
                // To the closing quote, stepping over each escaped character.
                at += 1;
                loop {
                    let Some(rest) = bytes.get(at..) else {
                        return deepest; // ends inside an escape: not JSON, counted so far
                    };
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(found) if rest[found] == b'\\' => at += found + 2,
                        Some(found) => {
                            at += found;
                            break;
                        }
                        None => return deepest, // an unclosed string: not JSON, counted so far
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    deepest
}

fn check(input: &MessageIn) -> OpsResult<()> {
    let mut p = Problems::default();
    p.check(validate::check_event_type_name("eventType", &input.event_type));
    if !input.payload.get().trim_start().starts_with('{') {
        p.check(Err(FieldError::new(&["payload"], "Payload must be an object.")));
    } else if json_depth(input.payload.get()) > MAX_PAYLOAD_DEPTH {
        p.check(Err(FieldError::new(
            &["payload"],
            format!("Payload nests arrays and objects more than {MAX_PAYLOAD_DEPTH} levels deep."),
        )));
    }
    if let Some(id) = &input.event_id {
        p.check(validate::check_uid("eventId", id, IdKind::Message.prefix()));
    }
    if let Some(channels) = &input.channels {
        p.check(validate::check_channels(
            "channels",
            channels,
            validate::MAX_MESSAGE_CHANNELS,
        ));
    }
    if let Some(days) = input.payload_retention_period {
        if !RETENTION_DAYS.contains(&days) {
            p.check(Err(FieldError::new(
                &["payloadRetentionPeriod"],
                format!(
                    "payloadRetentionPeriod must be between {} and {} days",
                    RETENTION_DAYS.start(),
                    RETENTION_DAYS.end()
                ),
            )));
        }
    }
    p.finish()
}

/// Resolves the application of a message, creating it from `application` when allowed.
async fn resolve_app(state: &Services, env: Environment, key: &str, input: &mut MessageIn) -> OpsResult<Application> {
    if let Some(app) = state.apps.get(env, key).await? {
        return Ok(app);
    }
    let Some(app_in) = input.application.take() else {
        return Err(OpsError::NotFound("application"));
    };
    match app_in.uid.as_deref() {
        None => Err(OpsError::Invalid(vec![FieldError::new(
            &["application", "uid"],
            "application.uid is required to create the application with the message",
        )])),
        Some(uid) if uid != key => Err(OpsError::Invalid(vec![FieldError::new(
            &["application", "uid"],
            "application.uid must match the application in the path",
        )])),
        Some(_) => Ok(create_application(state, env, app_in, true).await?.0),
    }
}

/// Stores a message and its deliveries in one commit, then hands the deliveries to the
/// dispatcher. Returns only after the commit (the caller answers 202).
pub async fn create_message(
    state: &Services,
    env: Environment,
    app_key: &str,
    mut input: MessageIn,
) -> OpsResult<Arc<Message>> {
    check(&input)?;
    check_schema(state, env, &input).await?;
    let app = resolve_app(state, env, app_key, &mut input).await?;
    publish(state, &app, input, None).await
}

/// Validates the payload against its event type's schema, as `catalog.validation` says for
/// `env`: a 422 pointing into the payload, a logged warning, or nothing.
async fn check_schema(state: &Services, env: Environment, input: &MessageIn) -> OpsResult<()> {
    let mode = state.config.catalog.validation_for(env);
    if mode == Validation::Off {
        return Ok(());
    }
    let Some(validator) = state.schemas.get(env, &input.event_type).await? else {
        return Ok(());
    };
    let payload: serde_json::Value = serde_json::from_str(input.payload.get())
        .map_err(|e| OpsError::Invalid(vec![FieldError::new(&["payload"], e.to_string())]))?;
    // Most payloads are valid: the yes/no check stops at the first problem and builds no errors.
    if validator.is_valid(&payload) {
        return Ok(());
    }
    let problems = crate::catalog::violations(&validator, &payload);
    match mode {
        Validation::Reject => Err(OpsError::Invalid(problems)),
        _ => {
            tracing::warn!(
                env = env.as_str(),
                event_type = %input.event_type,
                problem = %problems[0].msg,
                at = %problems[0].loc[1..].join("/"),
                "payload does not match its event type's schema; accepted (catalog.validation = warn)"
            );
            Ok(())
        }
    }
}

/// Stores a message of `app` and its deliveries, to every endpoint whose filters accept it or,
/// with `only`, to that one endpoint (still subject to its filters), then hands them over. The
/// message returned is the one handed over, shared rather than copied.
pub async fn publish(
    state: &Services,
    app: &Application,
    input: MessageIn,
    only: Option<&str>,
) -> OpsResult<Arc<Message>> {
    let now = state.clock.now();
    let days = input.payload_retention_period.unwrap_or(DEFAULT_RETENTION_DAYS);
    let message = Message {
        id: IdKind::Message.generate(now, &mut rand::thread_rng()),
        app_id: app.id.clone(),
        event_id: input.event_id,
        event_type: input.event_type,
        channels: input.channels,
        payload: Some(input.payload.get().to_string()),
        created_at: now,
        expires_at: now + Duration::days(days),
    };
    let endpoints = state.endpoints.for_app(&app.id).await?;
    let targets: Vec<_> = endpoints
        .iter()
        .filter(|e| only.is_none_or(|id| e.id == id))
        // A polling endpoint's consumers read the stream themselves: nothing is pushed to it.
        .filter(|e| e.destination.as_ref().is_none_or(|d| d.kind.is_pushed()))
        .filter(|e| endpoint_accepts(e, &message.event_type, message.channels.as_deref()))
        .collect();
    // A destination's delivery joins the lane its ordering key picks; its lane sends it.
    let (fifo, targets): (Vec<_>, Vec<_>) = targets
        .into_iter()
        .partition(|e| e.destination.as_ref().is_some_and(|d| d.kind.in_lanes()));
    // Deliveries the local dispatcher has room for are created already leased to it and
    // handed over after the commit; the rest wait for the poller.
    let endpoint_ids: Vec<&str> = targets.iter().map(|e| e.id.as_str()).collect();
    let reserved = state.dispatcher.try_reserve(&app.id, &endpoint_ids);
    let lease = reserved.as_ref().map(|_| state.dispatcher.lease_until(now));
    let payload = message.payload.as_deref().unwrap_or_default();
    let delivery = |e: &Endpoint, leased_until: Option<chrono::DateTime<chrono::Utc>>, lane: Option<i32>| NewDelivery {
        id: IdKind::Delivery.generate(now, &mut rand::thread_rng()),
        msg_id: message.id.clone(),
        endpoint_id: e.id.clone(),
        app_id: app.id.clone(),
        due_at: now,
        leased_until,
        lease_token: match leased_until {
            Some(_) => hookd_store::new_lease_token(&mut rand::thread_rng()),
            None => 0,
        },
        lane,
    };
    let parsed = std::cell::OnceCell::new();
    let in_lanes: Vec<NewDelivery> = fifo
        .iter()
        .map(|e| {
            let key = super::destinations::ordering_key(e);
            delivery(e, None, Some(crate::dispatch::fifo::lane_for(key, &parsed, payload)))
        })
        .collect();
    let mut deliveries: Vec<NewDelivery> = targets.iter().map(|e| delivery(e, lease, None)).collect();
    let pushed = deliveries.len();
    deliveries.extend(in_lanes);
    match state.store.create_message(&message, &deliveries).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(OpsError::Conflict {
                code: ErrorCode::Conflict,
                detail: "A message with this eventId already exists".into(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    crate::metrics::message_ingested(app.env);
    state
        .dispatcher
        .traffic()
        .message(app.env, message.created_at, deliveries.len());
    let lanes_have_work = deliveries.len() > pushed;
    deliveries.truncate(pushed);
    let message = Arc::new(message);
    match reserved {
        Some(reserved) => reserved.send(deliveries, message.clone()),
        None if !deliveries.is_empty() => state.dispatcher.left_in_store(&app.id, &endpoint_ids),
        None => {}
    }
    if lanes_have_work {
        state.dispatcher.wake_fifo();
    }
    Ok(message)
}

/// Removes a message's payload at once (it then reads as expired).
pub async fn expunge_content(state: &Services, app: &Application, key: &str) -> OpsResult<()> {
    let message = get_message(state, app, key).await?;
    Ok(state.store.expunge_message_content(&app.id, &message.id).await?)
}

/// A message by id or event id.
pub async fn get_message(state: &Services, app: &Application, key: &str) -> OpsResult<Message> {
    state
        .store
        .get_message(&app.id, key)
        .await?
        .ok_or(OpsError::NotFound("message"))
}

/// Messages newest first.
pub async fn list_messages(
    state: &Services,
    app: &Application,
    filter: &MessageFilter,
    page: &PageRequest,
) -> OpsResult<Page<Message>> {
    Ok(state.store.list_messages(&app.id, filter, page).await?)
}

/// `msg/precheck/active` input (Svix `MessagePrecheckIn`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrecheckIn {
    /// The event type a message would have.
    pub event_type: String,
    /// Its channels.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
}

/// Whether a message of this event type and channels would reach any enabled endpoint of
/// `app`, so a publisher can skip building payloads nobody receives.
pub async fn precheck(state: &Services, app: &Application, input: &PrecheckIn) -> OpsResult<bool> {
    let mut p = Problems::default();
    p.check(validate::check_event_type_name("eventType", &input.event_type));
    if let Some(channels) = &input.channels {
        p.check(validate::check_channels(
            "channels",
            channels,
            validate::MAX_MESSAGE_CHANNELS,
        ));
    }
    p.finish()?;
    let endpoints = state.endpoints.for_app(&app.id).await?;
    Ok(endpoints
        .iter()
        .any(|e| !e.disabled && endpoint_accepts(e, &input.event_type, input.channels.as_deref())))
}

/// Most messages one `bulk-expunge` may name.
pub const MAX_BULK_EXPUNGE: usize = 250;

/// Removes the payloads of the named messages (ids, or event ids); answers per name whether it
/// was `expunged` or `not-found`.
pub async fn bulk_expunge(
    state: &Services,
    app: &Application,
    ids: &[String],
) -> OpsResult<std::collections::BTreeMap<String, &'static str>> {
    if ids.len() > MAX_BULK_EXPUNGE {
        return Err(OpsError::Invalid(vec![FieldError::new(
            &["ids"],
            format!("at most {MAX_BULK_EXPUNGE} messages at once"),
        )]));
    }
    let mut results = std::collections::BTreeMap::new();
    for key in ids {
        let outcome = match state.store.get_message(&app.id, key).await? {
            Some(m) => {
                state.store.expunge_message_content(&app.id, &m.id).await?;
                "expunged"
            }
            None => "not-found",
        };
        results.insert(key.clone(), outcome);
    }
    Ok(results)
}

/// Removes every payload of `app` and records it as a finished `application.purge_content`
/// background task.
pub async fn expunge_all_contents(state: &Services, app: &Application) -> OpsResult<hookd_store::TaskRecord> {
    let purged = state.store.expunge_app_contents(&app.id).await?;
    let now = state.clock.now();
    let task = hookd_store::TaskRecord {
        id: IdKind::Task.generate(now, &mut rand::thread_rng()),
        app_id: app.id.clone(),
        endpoint_id: None,
        kind: "application.purge_content".into(),
        status: hookd_store::TaskStatus::Finished,
        data: serde_json::json!({ "messagesPurged": purged }),
        created_at: now,
        updated_at: now,
    };
    state.store.create_task(&task).await?;
    Ok(task)
}

#[cfg(test)]
mod tests {
    use super::json_depth;

    #[test]
    fn nesting_is_counted_outside_strings() {
        assert_eq!(json_depth(r#"{}"#), 1);
        assert_eq!(json_depth(r#"{"a": [1, {"b": []}]}"#), 4);
        assert_eq!(json_depth(r#"{"a": "[[[{{{\"[["}"#), 1);
        assert_eq!(json_depth(&format!("{}{}", "[".repeat(500), "]".repeat(500))), 500);
    }
}
