//! Operational webhooks: hookd telling its operator about its own deliveries, with Svix's event
//! names and payloads (`{"type": …, "data": {…}}`).
//!
//! Events go through an outbox in the database, never an in-memory queue: the dispatcher stores
//! failing, exhausted and recovered events in the same transaction as the attempt that causes
//! them, and the API and the dispatcher store endpoint events right after the change commits.
//! [`run`] publishes the outbox as ordinary messages of an internal application (uid
//! [`OPERATIONAL_APP_UID`]) whose one endpoint is the configured URL, with the outbox row's id
//! as `eventId` (publishing twice stores one message), and removes each row once its message is
//! stored. So a crash, a restart or a failed publish loses no event. The messages are signed,
//! retried and logged like every other delivery, and visible through the same API. Events about
//! that application itself are not reported (no feedback loop).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hookd_core::id::IdKind;
use hookd_core::model::{Application, Attempt, Endpoint, Environment};
use hookd_store::{OutboxEvent, Store};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::ops::OpsError;

use crate::ops::applications::{create_application, ApplicationIn};
use crate::ops::endpoints::{create_endpoint, EndpointIn};
use crate::ops::messages::{publish, MessageIn};
use crate::state::AppState;

/// Uid of the internal application that carries operational webhooks.
pub const OPERATIONAL_APP_UID: &str = "hookd-operational";
/// Uid of its endpoint.
const OPERATOR_ENDPOINT_UID: &str = "operator";
/// Outbox rows published per pass.
const BATCH: usize = 100;
/// How often the outbox is looked at when nothing wakes the publisher (another node's events,
/// or a publish that failed).
const POLL: Duration = Duration::from_secs(1);

/// One operational event.
#[derive(Debug, Clone, PartialEq)]
pub struct OpEvent {
    /// Svix event name, e.g. `endpoint.disabled`.
    pub kind: &'static str,
    /// Application the event is about.
    pub app_id: String,
    /// Event data.
    pub data: Value,
}

impl OpEvent {
    /// `endpoint.created/updated/deleted/enabled/disabled`.
    pub fn endpoint(kind: &'static str, app: &Application, endpoint: &Endpoint) -> OpEvent {
        let mut data = json!({
            "appId": app.id,
            "appUid": app.uid,
            "endpointId": endpoint.id,
            "endpointUid": endpoint.uid,
        });
        if kind == "endpoint.disabled" {
            if let Some(since) = endpoint.failing_since {
                data["failSince"] = json!(crate::api::dto::ts(&since));
            }
        }
        OpEvent {
            kind,
            app_id: app.id.clone(),
            data,
        }
    }

    /// `message.attempt.failing/exhausted/recovered`; the application's uid is filled in when
    /// published.
    pub fn attempt(kind: &'static str, app_id: &str, msg_event_id: Option<&str>, attempt: &Attempt) -> OpEvent {
        OpEvent {
            kind,
            app_id: app_id.to_string(),
            data: json!({
                "appId": app_id,
                "msgId": attempt.msg_id,
                "msgEventId": msg_event_id,
                "endpointId": attempt.endpoint_id,
                "lastAttempt": {
                    "id": attempt.id,
                    "responseStatusCode": attempt.response_status_code,
                    "timestamp": crate::api::dto::ts(&attempt.created_at),
                },
            }),
        }
    }
}

/// Where events go: the outbox, or nowhere when operational webhooks are off.
#[derive(Clone, Default)]
pub struct Notifier {
    outbox: Option<Outbox>,
}

#[derive(Clone)]
struct Outbox {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("on", &self.outbox.is_some()).finish()
    }
}

impl Notifier {
    /// A notifier writing to `store`'s outbox.
    pub fn to_outbox(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Notifier {
        Notifier {
            outbox: Some(Outbox {
                store,
                clock,
                wake: Arc::new(Notify::new()),
            }),
        }
    }

    /// The outbox row for `event`, for the caller to store with its cause (an attempt record);
    /// `None` when operational webhooks are off. Call [`Notifier::wake`] once it is stored.
    pub fn event(&self, event: OpEvent) -> Option<OutboxEvent> {
        let outbox = self.outbox.as_ref()?;
        let now = outbox.clock.now();
        let id = IdKind::Message.generate(now, &mut rand::thread_rng());
        Some(OutboxEvent {
            id: format!("opevt_{}", id.trim_start_matches("msg_")),
            kind: event.kind.to_string(),
            app_id: event.app_id,
            data: event.data,
            created_at: now,
        })
    }

    /// Stores an event whose cause is already committed and wakes the publisher. A failure is
    /// logged: the change it reports has happened, and refusing it now would not undo it.
    pub async fn notify(&self, event: OpEvent) {
        let Some(outbox) = &self.outbox else { return };
        let kind = event.kind;
        let Some(row) = self.event(event) else { return };
        match outbox.store.add_outbox(std::slice::from_ref(&row)).await {
            Ok(()) => outbox.wake.notify_one(),
            Err(e) => tracing::error!(error = %e, kind, "cannot store an operational webhook event"),
        }
    }

    /// Tells the publisher that events were stored.
    pub fn wake(&self) {
        if let Some(outbox) = &self.outbox {
            outbox.wake.notify_one();
        }
    }
}

/// Publishes the outbox until `shutdown`; a no-op when operational webhooks are off.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let Some(outbox) = state.notifier.outbox.clone() else {
        return;
    };
    let app = loop {
        match ensure_operator_endpoint(&state).await {
            Ok(app) => break app,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up operational webhooks; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    };
    loop {
        match publish_batch(&state, &app).await {
            // A full batch: more may be waiting.
            Ok(n) if n == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "publishing operational webhooks failed; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = outbox.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Publishes up to [`BATCH`] outbox events and removes them; returns how many were taken.
pub async fn publish_batch(state: &AppState, app: &Application) -> anyhow::Result<usize> {
    let events = state.store.outbox_events(BATCH).await?;
    let mut done = Vec::with_capacity(events.len());
    for event in &events {
        if event.app_id != app.id {
            let mut data = event.data.clone();
            if data.get("appUid").is_none() {
                data["appUid"] = json!(app_uid(state, &event.app_id).await);
            }
            let payload = json!({"type": event.kind, "data": data});
            let input = MessageIn {
                event_type: event.kind.clone(),
                payload: serde_json::value::to_raw_value(&payload).expect("JSON value serializes"),
                event_id: Some(event.id.clone()),
                channels: None,
                payload_retention_period: None,
                application: None,
            };
            match publish(state, app, input, None).await {
                // Published before (by another node, or before a crash): stored once.
                Ok(_) | Err(OpsError::Conflict { .. }) => {}
                // The database is away: keep this and the rest for the next pass.
                Err(OpsError::Store(e)) => {
                    state.store.remove_outbox(&done).await?;
                    return Err(anyhow::Error::new(e).context(format!("publishing {}", event.kind)));
                }
                // Refused for good (it can never be published): log it and go on, so one bad
                // event cannot hold up every later one.
                Err(e) => tracing::error!(error = %e, kind = %event.kind, id = %event.id,
                    "an operational webhook event cannot be published; dropped"),
            }
        }
        done.push(event.id.clone());
    }
    state.store.remove_outbox(&done).await?;
    Ok(events.len())
}

async fn app_uid(state: &AppState, app_id: &str) -> Option<String> {
    state.apps.by_id(app_id).await.ok().flatten().and_then(|app| app.uid)
}

/// Creates (or brings up to date) the internal application and its endpoint from the config.
async fn ensure_operator_endpoint(state: &AppState) -> anyhow::Result<Application> {
    let cfg = &state.config.operational_webhook;
    let app_in = ApplicationIn {
        name: "hookd operational webhooks".into(),
        uid: Some(OPERATIONAL_APP_UID.into()),
        metadata: Some(BTreeMap::from([("managedBy".to_string(), "hookd".to_string())])),
        throttle_rate: None,
    };
    let (app, _) = create_application(state, Environment::Live, app_in, true).await?;
    let secret = hookd_signing::SigningKey::parse_endpoint_key(&cfg.secret)?.to_string();
    match state.store.get_endpoint(&app.id, OPERATOR_ENDPOINT_UID).await? {
        Some(mut ep) if ep.url != cfg.url || ep.secret != secret || ep.disabled => {
            ep.url = cfg.url.clone();
            ep.secret = secret;
            ep.disabled = false;
            ep.updated_at = state.clock.now();
            state.store.update_endpoint(&ep).await?;
            state.endpoints.invalidate(&app.id);
        }
        Some(_) => {}
        None => {
            let ep_in = EndpointIn {
                url: cfg.url.clone(),
                uid: Some(OPERATOR_ENDPOINT_UID.into()),
                description: Some("The operator's endpoint for hookd's operational webhooks".into()),
                secret: Some(cfg.secret.clone()),
                ..EndpointIn::default()
            };
            create_endpoint(state, &app, ep_in).await?;
        }
    }
    Ok(app)
}
