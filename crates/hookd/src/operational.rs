//! Operational webhooks: hookd telling its operator about its own deliveries, with Svix's event
//! names and payloads (`{"type": …, "data": {…}}`).
//!
//! Events are queued by the API (endpoint changes) and the dispatcher (failing, exhausted and
//! recovered deliveries; disabled endpoints) and published by [`run`] as ordinary messages of an
//! internal application (uid [`OPERATIONAL_APP_UID`]) whose one endpoint is the configured URL.
//! They are therefore signed, retried and logged like every other delivery, and visible through
//! the same API. Events about that application itself are not reported (no feedback loop).

use std::collections::BTreeMap;

use hookd_core::model::{Application, Attempt, Endpoint, Environment};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::ops::applications::{create_application, ApplicationIn};
use crate::ops::endpoints::{create_endpoint, EndpointIn};
use crate::ops::messages::{publish, MessageIn};
use crate::state::AppState;

/// Uid of the internal application that carries operational webhooks.
pub const OPERATIONAL_APP_UID: &str = "hookd-operational";
/// Uid of its endpoint.
const OPERATOR_ENDPOINT_UID: &str = "operator";
/// Events queued before publishing falls behind and drops (and logs) the rest.
const QUEUE: usize = 10_000;

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

/// Where events are queued; a no-op when operational webhooks are off.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    tx: Option<mpsc::Sender<OpEvent>>,
}

impl Notifier {
    /// A notifier and the receiver [`run`] consumes.
    pub fn channel() -> (Notifier, mpsc::Receiver<OpEvent>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Notifier { tx: Some(tx) }, rx)
    }

    /// Queues an event (never blocks the caller).
    pub fn notify(&self, event: OpEvent) {
        if let Some(tx) = &self.tx {
            if let Err(e) = tx.try_send(event) {
                tracing::error!(error = %e, "operational webhook queue full; event dropped");
            }
        }
    }
}

/// Publishes queued events until every [`Notifier`] is gone.
pub async fn run(state: AppState, mut rx: mpsc::Receiver<OpEvent>) {
    let app = match ensure_operator_endpoint(&state).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up operational webhooks; they are off");
            return;
        }
    };
    while let Some(event) = rx.recv().await {
        if event.app_id == app.id {
            continue;
        }
        let mut data = event.data;
        if data.get("appUid").is_none() {
            data["appUid"] = json!(app_uid(&state, &event.app_id).await);
        }
        let payload = json!({"type": event.kind, "data": data});
        let input = MessageIn {
            event_type: event.kind.to_string(),
            payload: serde_json::value::to_raw_value(&payload).expect("JSON value serializes"),
            event_id: None,
            channels: None,
            payload_retention_period: None,
            application: None,
        };
        if let Err(e) = publish(&state, &app, input, None).await {
            tracing::error!(error = %e, kind = event.kind, "cannot publish operational webhook");
        }
    }
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
