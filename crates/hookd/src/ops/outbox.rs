//! Publishes the operational-webhook outbox (filled through [`crate::operational::Notifier`])
//! as messages of hookd's internal application, whose one endpoint is the operator's URL.

use std::collections::BTreeMap;
use std::time::Duration;

use hookd_core::model::{Application, Environment};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::applications::{create_application, ApplicationIn};
use super::endpoints::{create_endpoint, EndpointIn};
use super::messages::{publish, MessageIn};
use super::OpsError;
use super::Services;

/// Uid of the internal application that carries operational webhooks.
pub const OPERATIONAL_APP_UID: &str = "hookd-operational";
/// Uid of its endpoint.
const OPERATOR_ENDPOINT_UID: &str = "operator";
/// Outbox rows published per pass.
const BATCH: usize = 100;
/// How often the outbox is looked at when nothing wakes the publisher (another node's events,
/// or a publish that failed).
const POLL: Duration = Duration::from_secs(1);

/// Publishes the outbox until `shutdown`; a no-op when operational webhooks are off.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let Some(stored) = state.notifier.stored() else {
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
            _ = stored.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Publishes up to [`BATCH`] outbox events and removes them; returns how many were taken.
pub async fn publish_batch(state: &Services, app: &Application) -> anyhow::Result<usize> {
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

async fn app_uid(state: &Services, app_id: &str) -> Option<String> {
    state.apps.by_id(app_id).await.ok().flatten().and_then(|app| app.uid)
}

/// Creates (or brings up to date) the internal application and its endpoint from the config.
async fn ensure_operator_endpoint(state: &Services) -> anyhow::Result<Application> {
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
