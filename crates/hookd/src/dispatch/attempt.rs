//! One delivery attempt from claim to record, with everything that decides around it: parking
//! for disabled endpoints, the circuit breaker and pacing, 410 Gone, auto-disable, and the
//! operational webhooks an attempt can trigger.

use std::sync::Arc;
use std::time::Duration;

use hookd_core::model::{Application, Endpoint, Message, MessageStatus, TriggerType};
use hookd_core::retry::RetryPolicy;
use hookd_store::{AttemptRecord, ClaimedDelivery, QueueStore};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::guard::{Gate, Guards};
use super::{record, send};
use crate::cache::{AppCache, EndpointCache, OpenedEndpoint};
use crate::clock::Clock;
use crate::operational::{Notifier, OpEvent};

/// The scheduled attempt whose failure makes a delivery "failing" (Svix: the 4th).
const FAILING_AT: i64 = 4;

/// What a send task needs.
pub(super) struct SendContext {
    pub store: Arc<dyn QueueStore>,
    pub clock: Arc<dyn Clock>,
    pub endpoints: Arc<EndpointCache>,
    pub apps: Arc<AppCache>,
    pub sender: send::Sender,
    pub policy: RetryPolicy,
    pub recorder: record::Recorder,
    pub guards: Arc<Guards>,
    pub notifier: Notifier,
    pub disable_after: chrono::Duration,
    /// Deliveries claimed but given up because of a shutdown, with their lease tokens; their
    /// leases are released.
    pub unsent: std::sync::Mutex<Vec<(String, i64)>>,
    /// Traffic counts for the dashboard's charts.
    pub traffic: Arc<crate::traffic::Traffic>,
}

/// The shared slots an attempt takes only for its request, after pacing: its application's
/// and the global one.
pub(super) struct Slots<'a> {
    pub app: &'a Semaphore,
    pub global: &'a Semaphore,
}

impl<'a> Slots<'a> {
    /// Both slots at once, when pacing asks for no `wait` and both are free now; `None` when
    /// the attempt has to wait for either (a slot taken here is given back then).
    fn ready(&self, wait: Duration) -> Option<(SemaphorePermit<'a>, SemaphorePermit<'a>)> {
        if !wait.is_zero() {
            return None;
        }
        let app = self.app.try_acquire().ok()?;
        let global = self.global.try_acquire().ok()?;
        Some((app, global))
    }
}

/// The operational webhook a scheduled attempt's record causes, if any: `failing` at the
/// delivery's 4th failed attempt, `exhausted` when it fails for good, `recovered` when it
/// succeeds after failing.
pub(super) fn attempt_event(
    notifier: &Notifier,
    endpoint: &Endpoint,
    event_id: Option<&str>,
    record: &AttemptRecord,
) -> Option<hookd_store::OutboxEvent> {
    let a = &record.attempt;
    let kind = match (a.status, record.delivery_status) {
        (MessageStatus::Success, _) if record.scheduled_attempts > FAILING_AT => "message.attempt.recovered",
        (MessageStatus::Fail, MessageStatus::Fail) => "message.attempt.exhausted",
        (MessageStatus::Fail, _) if record.scheduled_attempts == FAILING_AT => "message.attempt.failing",
        _ => return None,
    };
    notifier.event(OpEvent::attempt(kind, &endpoint.app_id, event_id, a))
}

impl SendContext {
    /// Attempts one delivery; `None` when there is nothing to record (the endpoint or
    /// application is gone, the delivery was parked or deferred, or a read failed and the lease
    /// will bring it back).
    pub async fn attempt(
        &self,
        d: ClaimedDelivery,
        message: Option<Arc<Message>>,
        slots: Slots<'_>,
        stop: &CancellationToken,
    ) -> Option<AttemptRecord> {
        let endpoint = match self.endpoints.get(&d.app_id, &d.endpoint_id).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                Box::pin(self.endpoint_not_cached(&d)).await;
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, delivery = %d.id, "cannot load endpoint; will retry after the lease");
                return None;
            }
        };
        if endpoint.disabled {
            Box::pin(self.park(&d)).await;
            return None;
        }
        let message = match message {
            Some(m) => m,
            // Claimed: read the message, unless the delivery was attempted since the claim read
            // it (a duplicate with a stale count) or is gone with its endpoint or application.
            None => match self.store.claimed_message(&d).await {
                Ok(Some(m)) => Arc::new(m),
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, delivery = %d.id, "cannot load message; will retry after the lease");
                    return None;
                }
            },
        };
        if d.trigger == TriggerType::Scheduled {
            if let Gate::Defer(until) = self.guards.admit(&endpoint.id, self.clock.now()) {
                Box::pin(self.defer(&d, until)).await;
                return None;
            }
        }
        let app = match self.apps.by_id(&endpoint.app_id).await {
            Ok(Some(app)) => app,
            Ok(None) => return None, // application deleted
            Err(e) => {
                tracing::warn!(error = %e, delivery = %d.id, "cannot load application; will retry after the lease");
                return None;
            }
        };
        let wait = match self
            .guards
            .pace(&endpoint.id, endpoint.throttle_rate.or(app.throttle_rate))
        {
            Ok(wait) => wait,
            Err(later) => {
                // Its send slot is beyond the pacing horizon: wait in the database, holding no
                // memory or slot meanwhile; no attempt is spent.
                let until = self.clock.now() + chrono::Duration::from_std(later).unwrap_or(chrono::Duration::MAX);
                Box::pin(self.defer(&d, until)).await;
                return None;
            }
        };
        // Waiting for pacing or a shared slot ends with a shutdown: the delivery is given back.
        // The application's slot, then the global one, are taken only once pacing allows the
        // request, so a paced endpoint never sits on a shared slot.
        let slot = match slots.ready(wait) {
            // Nothing to wait for, the common case: no timer, and no waiter registered on the
            // shutdown token that every send shares.
            Some(slot) if !stop.is_cancelled() => Some(slot),
            // Stopping: the slots just taken go back with the delivery.
            Some(_) => None,
            None => tokio::select! {
                biased;
                _ = stop.cancelled() => None,
                slot = async {
                    tokio::time::sleep(wait).await;
                    let app = slots.app.acquire().await.ok()?;
                    let global = slots.global.acquire().await.ok()?;
                    Some((app, global))
                } => slot,
            },
        };
        let Some(slot) = slot else {
            self.unsent(d.id.clone(), d.lease_token);
            return None;
        };
        // Boxed: the request's state (the HTTP exchange, the record, an operational webhook)
        // is several KiB, and a delivery waiting for its slots above holds all of its attempt's
        // future. Inline, every delivery waiting in memory held 5,880 bytes; boxed here, only
        // the sends in flight, at most `delivery.max_concurrency`, hold the large part.
        Box::pin(self.send_and_record(d, endpoint, app, message, slot)).await
    }

    /// The request, with both shared slots held for it alone, and its record.
    async fn send_and_record(
        &self,
        d: ClaimedDelivery,
        endpoint: Arc<OpenedEndpoint>,
        app: Application,
        message: Arc<Message>,
        slot: (SemaphorePermit<'_>, SemaphorePermit<'_>),
    ) -> Option<AttemptRecord> {
        let started = self.clock.now();
        let result = match send::shared_payload(&message) {
            // A resend to a destination: a batch of one message, sent as its lanes send batches.
            Some(_) if endpoint.destination.is_some() => {
                let item = hookd_store::FifoItem {
                    delivery_id: d.id.clone(),
                    scheduled_attempts: d.scheduled_attempts,
                    total_attempts: d.total_attempts,
                    message: (*message).clone(),
                };
                // Boxed: a destination's send (a broker's or a database's client) holds a large
                // future; inline, it made every attempt's future 5,944 bytes instead of 4,200,
                // and that future is copied and allocated whole for each delivery.
                Box::pin(
                    self.sender
                        .send_batch(app.env, &endpoint, std::slice::from_ref(&item), started),
                )
                .await
            }
            Some(payload) => {
                let out = send::Outgoing {
                    env: app.env,
                    endpoint: &endpoint,
                    msg_id: &message.id,
                    event_type: &message.event_type,
                    payload: &payload,
                    attempt: d.total_attempts + 1,
                };
                self.sender.send(out, started).await
            }
            None => send::SendResult::not_sent("the message payload has expired; nothing was sent"),
        };
        drop(slot); // the shared slots cover the request only
        crate::metrics::attempt(&result.outcome, result.status_code, result.duration.as_secs_f64());
        self.guards.record(&endpoint.id, result.outcome.is_success(), started);
        let record = record::build(
            &d,
            &endpoint,
            &message,
            result,
            started,
            &self.policy,
            &mut rand::thread_rng(),
        );
        match (record.park, record.delivery_status) {
            (false, MessageStatus::Success) => crate::metrics::delivery_finished(crate::metrics::Finished::Success),
            (false, MessageStatus::Fail) => crate::metrics::delivery_finished(crate::metrics::Finished::Fail),
            _ => {}
        }
        let delivered = record.attempt.status == MessageStatus::Success;
        // Publish to delivered, for deliveries the schedule completed (a manual resend of an
        // old message says nothing about how fast delivery is).
        let latency = (delivered && d.trigger == TriggerType::Scheduled)
            .then(|| (started - message.created_at).num_milliseconds().max(0) + record.attempt.response_duration_ms);
        self.traffic.attempt(
            app.env,
            started,
            delivered,
            !record.park && record.delivery_status == MessageStatus::Fail,
            latency,
        );
        tracing::debug!(
            app = %endpoint.app_id,
            endpoint = %endpoint.id,
            msg = %message.id,
            attempt = %record.attempt.id,
            status_code = record.attempt.response_status_code,
            delivery_status = record.delivery_status.text(),
            "attempt made"
        );
        let mut record = record;
        if record.park {
            self.disable(&endpoint, None, "answered 410 Gone").await;
        }
        if d.trigger == TriggerType::Scheduled && !record.park {
            self.after_scheduled_attempt(&endpoint, message.event_id.as_deref(), &mut record)
                .await;
        }
        Some(record)
    }

    // The ways an attempt ends before its request, each boxed where `attempt` awaits it: they
    // are rare, and inline their state would be part of every waiting delivery's future.

    /// A delivery whose endpoint is not in this node's cached list: deleted (its deliveries
    /// went with it), or created moments ago on another node. Then the list is refreshed and
    /// the lease given back, so the delivery is sent at once, not after the lease.
    async fn endpoint_not_cached(&self, d: &ClaimedDelivery) {
        if let Ok(Some(_)) = self.endpoints.fresh(&d.app_id, &d.endpoint_id).await {
            self.endpoints.invalidate(&d.app_id);
            if let Err(e) = self
                .store
                .release_leases(&[(d.id.clone(), d.lease_token)], self.clock.now())
                .await
            {
                tracing::warn!(error = %e, delivery = %d.id, "cannot give back a lease; it runs out on its own");
            }
        }
    }

    /// A delivery to a disabled endpoint is kept, not sent: enabling the endpoint makes it due
    /// again.
    async fn park(&self, d: &ClaimedDelivery) {
        if let Err(e) = self.store.park_delivery(&d.id, d.lease_token).await {
            tracing::warn!(error = %e, delivery = %d.id, "cannot park delivery; will retry after the lease");
            return;
        }
        // The cached copy may be stale: if the endpoint was enabled before this park
        // committed, its own unparking may have run first and missed this delivery. Read
        // it as stored now; enabled means unpark again (an enable committing later unparks
        // by itself).
        if let Ok(Some(now)) = self.endpoints.fresh(&d.app_id, &d.endpoint_id).await {
            if !now.disabled {
                self.endpoints.invalidate(&d.app_id);
                if let Err(e) = self.store.unpark_endpoint(&now.id, self.clock.now()).await {
                    tracing::warn!(error = %e, endpoint = %now.id, "cannot resume parked deliveries");
                }
            }
        }
    }

    /// A delivery put off until `until` (an open circuit, or pacing beyond its horizon), with
    /// no attempt spent.
    async fn defer(&self, d: &ClaimedDelivery, until: chrono::DateTime<chrono::Utc>) {
        if let Err(e) = self.store.defer_delivery(&d.id, d.lease_token, until).await {
            tracing::warn!(error = %e, delivery = %d.id, "cannot defer delivery; will retry after the lease");
        }
    }

    /// Notes a delivery (and the lease it is held under) that will not be attempted by this
    /// process.
    pub fn unsent(&self, delivery_id: String, lease_token: i64) {
        self.unsent
            .lock()
            .expect("unsent list poisoned")
            .push((delivery_id, lease_token));
    }

    /// The deliveries noted by [`SendContext::unsent`].
    pub fn take_unsent(&self) -> Vec<(String, i64)> {
        std::mem::take(&mut *self.unsent.lock().expect("unsent list poisoned"))
    }

    /// Operational webhooks and auto-disable after a scheduled attempt. The attempt's events
    /// travel with its record, into the outbox in the same transaction.
    async fn after_scheduled_attempt(&self, endpoint: &Endpoint, event_id: Option<&str>, record: &mut AttemptRecord) {
        if let Some(event) = attempt_event(&self.notifier, endpoint, event_id, record) {
            record.events.push(event);
        }
        let a = &record.attempt;
        if record.delivery_status != MessageStatus::Fail {
            return;
        }
        // Exhausted. If the endpoint's failing run (started by an earlier exhaustion, ended by
        // any success) began at least the threshold ago, disable it. The store checks the run
        // as it is now: the cached copy may lag.
        let failing_by = a.created_at - self.disable_after;
        self.disable(
            endpoint,
            Some(failing_by),
            "has had no successful delivery while its messages exhausted their retries",
        )
        .await;
    }

    /// Disables an endpoint (with `failing_by`, only if its failing run began by then) and
    /// reports it; its due deliveries are parked until it is enabled.
    async fn disable(&self, endpoint: &Endpoint, failing_by: Option<chrono::DateTime<chrono::Utc>>, why: &str) {
        let services = Disabling {
            store: self.store.as_ref(),
            apps: &self.apps,
            endpoints: &self.endpoints,
            notifier: &self.notifier,
        };
        services.disable(endpoint, self.clock.now(), failing_by, why).await;
    }
}

/// What disabling an endpoint the engine gave up on needs.
pub(super) struct Disabling<'a> {
    pub store: &'a dyn QueueStore,
    pub apps: &'a AppCache,
    pub endpoints: &'a EndpointCache,
    pub notifier: &'a Notifier,
}

impl Disabling<'_> {
    /// Disables `endpoint` at `now` (with `failing_by`, only if its failing run began by then)
    /// and reports it with `endpoint.disabled`.
    pub async fn disable(
        &self,
        endpoint: &Endpoint,
        now: chrono::DateTime<chrono::Utc>,
        failing_by: Option<chrono::DateTime<chrono::Utc>>,
        why: &str,
    ) {
        match self
            .store
            .disable_endpoint(&endpoint.app_id, &endpoint.id, now, failing_by)
            .await
        {
            Ok(Some(disabled)) => {
                tracing::warn!(endpoint = %disabled.id, "endpoint {why}; disabled");
                if let Ok(Some(app)) = self.apps.by_id(&disabled.app_id).await {
                    self.notifier
                        .notify(OpEvent::endpoint("endpoint.disabled", &app, &disabled))
                        .await;
                }
            }
            Ok(None) => {} // already disabled, recovered meanwhile, or deleted
            Err(e) => tracing::error!(error = %e, endpoint = %endpoint.id, "cannot disable endpoint"),
        }
        self.endpoints.invalidate(&endpoint.app_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every delivery waiting in memory for its shared slots holds its attempt's future, and
    /// up to `delivery.backlog` of them wait at once (10,000 by default; in the benchmark with
    /// a thousand applications nearly all of them). The request's state, several KiB, is boxed
    /// once the slots are taken, and the rare ways an attempt ends early are boxed too, so a
    /// waiting delivery holds only a small part (5,880 bytes when all of it was inline).
    #[test]
    fn a_delivery_waiting_for_its_slots_holds_a_small_future() {
        use crate::testing::future_size;
        type Waiting = (
            &'static SendContext,
            ClaimedDelivery,
            Option<Arc<Message>>,
            Slots<'static>,
            &'static CancellationToken,
        );
        type Sending = (
            &'static SendContext,
            ClaimedDelivery,
            Arc<OpenedEndpoint>,
            Application,
            Arc<Message>,
            (SemaphorePermit<'static>, SemaphorePermit<'static>),
        );
        let waiting = future_size(|(ctx, d, message, slots, stop): Waiting| ctx.attempt(d, message, slots, stop));
        let sending = future_size(|(ctx, d, endpoint, app, message, slot): Sending| {
            ctx.send_and_record(d, endpoint, app, message, slot)
        });
        assert!(
            waiting <= 1024 && waiting * 3 < sending,
            "a waiting attempt holds {waiting} bytes, where the request's own state is {sending}"
        );
    }

    /// Both shared slots are taken together without waiting, or neither is: a pacing wait or
    /// a full application or global bound sends the attempt the waiting way, holding nothing.
    #[test]
    fn both_shared_slots_are_taken_at_once_or_neither_is() {
        let (app, global) = (Semaphore::new(1), Semaphore::new(1));
        let slots = Slots {
            app: &app,
            global: &global,
        };

        let taken = slots.ready(Duration::ZERO).expect("both free");
        assert_eq!((app.available_permits(), global.available_permits()), (0, 0));
        drop(taken);

        assert!(
            slots.ready(Duration::from_millis(1)).is_none(),
            "pacing asks for a wait"
        );
        assert_eq!((app.available_permits(), global.available_permits()), (1, 1));

        let busy = global.try_acquire().unwrap();
        assert!(slots.ready(Duration::ZERO).is_none(), "the global bound is full");
        assert_eq!(app.available_permits(), 1, "the application's slot is given back");
        drop(busy);

        let busy = app.try_acquire().unwrap();
        assert!(slots.ready(Duration::ZERO).is_none(), "the application's bound is full");
        assert_eq!(global.available_permits(), 1);
        drop(busy);
    }
}
