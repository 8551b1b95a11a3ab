//! Attempts and deliveries: reading the delivery log, and manual resends.

use hookd_core::id::IdKind;
use hookd_core::model::{Application, Attempt, Endpoint, Message};
use hookd_store::{AttemptFilter, DeliveryState, MessageFilter, NewDelivery, Page, PageRequest};

use super::Services;
use super::{ErrorCode, OpsError, OpsResult};

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
            code: ErrorCode::MissingPayload,
            detail: "The message's payload has expired or was deleted, so it cannot be sent again".into(),
        });
    }
    if endpoint.destination.as_ref().is_some_and(|d| !d.kind.is_pushed()) {
        return Err(OpsError::BadRequest {
            code: ErrorCode::NotSupported,
            detail: "Nothing is sent to a polling endpoint: its consumers read a message again by seeking back to it"
                .into(),
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
        lane: None,
    };
    state.store.schedule_manual(&delivery, now).await?;
    state.dispatcher.wake();
    Ok(())
}

/// Who made a failed attempt fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// The customer's endpoint: it answered with an error, timed out, refused or reset the
    /// connection, or its TLS failed.
    Endpoint,
    /// hookd's side: the address policy refused the target, its name did not resolve, the
    /// egress proxy failed, or hookd could not sign or no longer had the payload. Fixing these
    /// is the operator's job, not the customer's.
    Hookd,
}

impl FailureCause {
    /// A failed attempt's cause, from its status code (0: no response) and its recorded text.
    pub fn of(status_code: i64, response: &str) -> FailureCause {
        if status_code != 0 {
            return FailureCause::Endpoint;
        }
        let lower = response.to_ascii_lowercase();
        let ours = [
            hookd_core::net::ALLOW_KEY,
            "did not resolve",
            "dns error",
            "failed to lookup address",
            "proxy",
            "endpoint secret unusable",
            "payload has expired",
        ];
        if ours.iter().any(|marker| lower.contains(marker)) {
            FailureCause::Hookd
        } else {
            FailureCause::Endpoint
        }
    }

    /// A short label for people.
    pub fn label(self) -> &'static str {
        match self {
            FailureCause::Endpoint => "endpoint",
            FailureCause::Hookd => "hookd",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FailureCause::{self, Endpoint, Hookd};

    #[test]
    fn failures_are_told_apart_by_who_caused_them() {
        let refused = "refused: 10.0.0.8 is a private-network address; add it to delivery.allowed_subnets to allow it";
        let cases = [
            (500, "Internal Server Error", Endpoint),
            (410, "", Endpoint),
            (
                0,
                "error sending request: tcp connect error: Connection refused (os error 111)",
                Endpoint,
            ),
            (0, "operation timed out", Endpoint),
            (0, refused, Hookd),
            (
                0,
                "error sending request: client error (Connect): hooks.example did not resolve: failed",
                Hookd,
            ),
            (
                0,
                "error sending request: dns error: failed to lookup address information",
                Hookd,
            ),
            (0, "error sending request: unsuccessful tunnel (Proxy)", Hookd),
            (0, "the message payload has expired; nothing was sent", Hookd),
        ];
        for (code, text, cause) in cases {
            assert_eq!(FailureCause::of(code, text), cause, "{code} {text}");
        }
    }
}
