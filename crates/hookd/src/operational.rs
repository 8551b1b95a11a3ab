//! Operational webhooks: hookd telling its operator about its own deliveries, with Svix's event
//! names and payloads (`{"type": …, "data": {…}}`).
//!
//! Events go through an outbox in the database, never an in-memory queue: the dispatcher stores
//! failing, exhausted and recovered events in the same transaction as the attempt that causes
//! them, and the API and the dispatcher store endpoint events right after the change commits.
//! [`crate::ops::outbox::run`] publishes the outbox as ordinary messages of an internal application (uid
//! `hookd-operational`) whose one endpoint is the configured URL, with the outbox row's id
//! as `eventId` (publishing twice stores one message), and removes each row once its message is
//! stored. So a crash, a restart or a failed publish loses no event. The messages are signed,
//! retried and logged like every other delivery, and visible through the same API. Events about
//! that application itself are not reported (no feedback loop).

use std::sync::Arc;

use hookd_core::id::IdKind;
use hookd_core::model::{Application, Attempt, Endpoint};
use hookd_store::{OutboxEvent, OutboxStore};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::clock::Clock;

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
                data["failSince"] = json!(crate::clock::ts(&since));
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
                    "timestamp": crate::clock::ts(&attempt.created_at),
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
    store: Arc<dyn OutboxStore>,
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
    pub fn to_outbox(store: Arc<dyn OutboxStore>, clock: Arc<dyn Clock>) -> Notifier {
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

    /// Rung whenever events are stored; `None` when operational webhooks are off.
    pub fn stored(&self) -> Option<Arc<Notify>> {
        self.outbox.as_ref().map(|o| o.wake.clone())
    }

    /// Tells the publisher that events were stored.
    pub fn wake(&self) {
        if let Some(outbox) = &self.outbox {
            outbox.wake.notify_one();
        }
    }
}
