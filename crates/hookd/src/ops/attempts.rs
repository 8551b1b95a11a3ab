//! Attempts and deliveries: reading the delivery log, and manual resends.

use hookd_core::id::IdKind;
use hookd_core::model::{Application, Attempt, Endpoint, Message};
use hookd_store::{AttemptFilter, DeliveryState, MessageFilter, NewDelivery, Page, PageRequest};

use super::Services;
use super::{OpsError, OpsResult};

/// Attempts of an application, filtered.
pub async fn list_attempts(state: &Services, filter: &AttemptFilter, page: &PageRequest) -> OpsResult<Page<Attempt>> {
    Ok(state.store.list_attempts(filter, page).await?)
}

/// One attempt of a message.
pub async fn get_attempt(state: &Services, message: &Message, attempt_id: &str) -> OpsResult<Attempt> {
    state
        .store
        .get_attempt(&message.id, attempt_id)
        .await?
        .ok_or(OpsError::NotFound("attempt"))
}

/// The endpoints a message was sent to, with each delivery's state. Endpoints deleted since
/// are left out.
pub async fn attempted_destinations(
    state: &Services,
    app: &Application,
    message: &Message,
    page: &PageRequest,
) -> OpsResult<Page<(DeliveryState, Endpoint)>> {
    let deliveries = state.store.list_message_deliveries(&message.id, page).await?;
    let endpoints = state.endpoints.for_app(&app.id).await?;
    let has_more = deliveries.has_more;
    let items = deliveries
        .items
        .into_iter()
        .filter_map(|d| endpoints.by_id(&d.endpoint_id).cloned().map(|e| (d, e)))
        .collect();
    Ok(Page { items, has_more })
}

/// The messages sent to an endpoint, with each delivery's state.
pub async fn attempted_messages(
    state: &Services,
    endpoint: &Endpoint,
    filter: &MessageFilter,
    page: &PageRequest,
) -> OpsResult<Page<(DeliveryState, Message)>> {
    Ok(state.store.list_endpoint_deliveries(&endpoint.id, filter, page).await?)
}

/// Sends a message to an endpoint once more, now, as a manual attempt (no retries follow).
/// Works whatever the endpoint's filters say and whether or not it was sent before.
pub async fn resend(state: &Services, app: &Application, message: &Message, endpoint: &Endpoint) -> OpsResult<()> {
    if message.payload.is_none() {
        return Err(OpsError::BadRequest {
            code: "missing_payload",
            detail: "The message's payload has expired or was deleted, so it cannot be sent again".into(),
        });
    }
    let now = state.clock.now();
    let delivery = NewDelivery {
        id: IdKind::Delivery.generate(now, &mut rand::thread_rng()),
        msg_id: message.id.clone(),
        endpoint_id: endpoint.id.clone(),
        app_id: app.id.clone(),
        due_at: now,
        leased_until: None,
        lease_token: 0,
    };
    state.store.schedule_manual(&delivery, now).await?;
    state.dispatcher.wake();
    Ok(())
}
