//! The delivery engine: claim → sign → send → record.
//!
//! Work arrives two ways. Fresh deliveries are handed over in memory by the API right after
//! their commit (created already leased to this process, so nothing else claims them). Everything
//! else (retries, manual resends, work left by a previous run or another node) is found by the
//! poller, which leases due deliveries from the store; it runs every `poll_interval_ms` and
//! whenever it is woken.
//!
//! Isolation: each delivery first takes a permit of its endpoint's semaphore (the per-endpoint
//! in-flight cap), then passes the endpoint's circuit breaker and rate pacing ([`guard`]), and
//! only then takes one of the global semaphore for the request itself, so deliveries queued
//! behind a slow, failing or throttled endpoint never occupy global slots. Results go to the
//! recorder, which writes attempts and next states in batches.
//!
//! Nothing acknowledged is lost: a delivery is only finished by a recorded attempt; if this
//! process dies first, the lease runs out (or is released at the next start) and it is sent again.

mod attempt;
mod fair;
pub mod fifo;
mod guard;
mod record;
pub mod runtime;
mod send;
pub mod sinks;

use hookd_store::ids::{HashMap, HashMapExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hookd_core::model::{Message, TriggerType};
use hookd_core::net::AddressPolicy;
use hookd_core::retry::RetryPolicy;
use hookd_store::{ClaimedDelivery, FifoStore, NewDelivery, QueueStore};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::{AppCache, EndpointCache};
use crate::clock::Clock;
use crate::config::{DeliveryConfig, SandboxConfig};
use crate::operational::Notifier;

pub use send::USER_AGENT;

/// Largest number of deliveries handed over but not yet taken by the send loop (which takes
/// them at once: it never waits while holding one).
const QUEUE_CAPACITY: usize = 10_000;
/// Most deliveries claimed by one poll.
const CLAIM_BATCH: usize = 500;

/// One delivery to attempt.
#[derive(Debug)]
pub struct Job {
    delivery: ClaimedDelivery,
    /// The message, when the caller already has it (fresh deliveries).
    message: Option<Arc<Message>>,
    /// Its place in memory, taken before it was queued (by the publish that created it or the
    /// claim that leased it) and kept until the record of its attempt is queued.
    hold: fair::Hold,
}

impl Job {
    /// A just-committed delivery with its message and its place in memory.
    fn fresh(d: NewDelivery, message: Arc<Message>, hold: fair::Hold) -> Job {
        Job {
            delivery: ClaimedDelivery {
                id: d.id,
                msg_id: d.msg_id,
                endpoint_id: d.endpoint_id,
                app_id: d.app_id,
                scheduled_attempts: 0,
                total_attempts: 0,
                trigger: TriggerType::Scheduled,
                lease_token: d.lease_token,
                row: None,
            },
            message: Some(message),
            hold,
        }
    }
}

/// Handle used by the API to hand over work; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    jobs: mpsc::Sender<Job>,
    wake: Arc<Notify>,
    fifo_wake: Arc<Notify>,
    lease: Duration,
    recorded: tokio::sync::watch::Receiver<u64>,
    global: Arc<Semaphore>,
    max_concurrency: usize,
    guards: Arc<guard::Guards>,
    recorder_health: Arc<record::RecorderHealth>,
    fair: Arc<fair::Fairness>,
    traffic: Arc<crate::traffic::Traffic>,
}

/// Room taken for a message's fresh deliveries: a place in the queue and in memory for each.
pub struct Reservation<'a> {
    permits: mpsc::PermitIterator<'a, Job>,
    holds: Vec<fair::Hold>,
}

impl Reservation<'_> {
    /// Hands the committed deliveries (in the order their endpoints were reserved) to the
    /// engine.
    pub fn send(self, deliveries: Vec<NewDelivery>, message: Arc<Message>) {
        crate::metrics::deliveries_dispatched(crate::metrics::Dispatched::HandedOver, deliveries.len());
        for ((permit, hold), d) in self.permits.zip(self.holds).zip(deliveries) {
            permit.send(Job::fresh(d, message.clone(), hold));
        }
    }
}

/// The engine's state at one instant, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests being sent now.
    pub in_flight: usize,
    /// Endpoints whose circuit is open.
    pub open_circuits: usize,
}

impl Dispatcher {
    /// Builds the handle and the worker that serves it.
    pub fn new(
        (config, sandbox): (&DeliveryConfig, &SandboxConfig),
        (store, fifo): (Arc<dyn QueueStore>, Arc<dyn FifoStore>),
        clock: Arc<dyn Clock>,
        caches: (Arc<EndpointCache>, Arc<AppCache>),
        notifier: Notifier,
        relay: Arc<crate::relay::RelayHub>,
    ) -> anyhow::Result<(Dispatcher, Worker)> {
        let (endpoints, apps) = caches;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let wake = Arc::new(Notify::new());
        let lease = Duration::from_secs(config.lease_secs);
        let (recorded_tx, recorded) = tokio::sync::watch::channel(0);
        let global = Arc::new(Semaphore::new(config.max_concurrency));
        let recorder_health = Arc::new(record::RecorderHealth::default());
        let traffic = Arc::new(crate::traffic::Traffic::default());
        let guards = Arc::new(guard::Guards::new(
            config.circuit_breaker_threshold,
            Duration::from_secs(config.circuit_breaker_cooldown_secs),
        ));
        let fair = fair::Fairness::new(
            config.backlog,
            config.endpoint_backlog,
            config.app_backlog,
            wake.clone(),
        );
        let fifo_wake = Arc::new(Notify::new());
        let handle = Dispatcher {
            fair: fair.clone(),
            jobs: tx.clone(),
            wake: wake.clone(),
            fifo_wake: fifo_wake.clone(),
            lease,
            recorded,
            global: global.clone(),
            max_concurrency: config.max_concurrency,
            guards: guards.clone(),
            recorder_health: recorder_health.clone(),
            traffic: traffic.clone(),
        };
        let sender = send::Sender::new(
            config.timeout(),
            AddressPolicy::parse(&config.allowed_subnets).map_err(anyhow::Error::msg)?,
            sandbox.allow_private_networks,
            &send::Egress {
                proxy: Some(config.proxy.clone()).filter(|p| !p.is_empty()),
                source_address: config.source_address.parse().ok(),
            },
            relay,
            config.max_concurrency,
        )?;
        let policy = RetryPolicy::with_schedule_secs(&config.retry_schedule);
        let fifo = fifo::FifoRunner {
            fifo,
            queue: store.clone(),
            clock: clock.clone(),
            endpoints: endpoints.clone(),
            apps: apps.clone(),
            sender: sender.clone(),
            policy: policy.clone(),
            interval: Duration::from_millis(config.poll_interval_ms),
            lease,
            wake: fifo_wake,
            notifier: notifier.clone(),
            disable_after: chrono::Duration::seconds(config.disable_after_secs.min(i64::MAX as u64) as i64),
            traffic: traffic.clone(),
        };
        let worker = Worker {
            fifo: Some(fifo),
            rx,
            jobs: tx,
            wake: wake.clone(),
            store,
            clock,
            endpoints,
            sender,
            policy,
            global,
            fair,
            endpoint_cap: config.endpoint_concurrency,
            app_cap: config.app_concurrency,
            per_app: Arc::new(Mutex::new(HashMap::new())),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
            per_endpoint: Arc::new(Mutex::new(HashMap::new())),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            lease,
            recorded: recorded_tx,
            apps,
            guards,
            notifier,
            disable_after: chrono::Duration::seconds(config.disable_after_secs.min(i64::MAX as u64) as i64),
            recorder_health,
            traffic,
        };
        Ok((handle, worker))
    }

    /// Reserves room for one fresh delivery of `app_id` to each of `endpoints`: places in the
    /// in-memory queue and in the application's and endpoints' shares of memory. `None` when
    /// any of them is full; the deliveries are then left to the poller, which is woken once
    /// there is room.
    pub fn try_reserve(&self, app_id: &str, endpoints: &[&str]) -> Option<Reservation<'_>> {
        if endpoints.is_empty() {
            return None;
        }
        let holds = self.fair.try_hold_all(app_id, endpoints)?;
        let permits = self.jobs.try_reserve_many(endpoints.len()).ok()?;
        Some(Reservation { permits, holds })
    }

    /// Reports that a message's deliveries to `endpoints` (all of `app_id`), for which
    /// [`Dispatcher::try_reserve`] found no room, are committed and wait in the database. The
    /// poller is woken now only when no release of a held delivery will wake it once there is
    /// room: with a share full, waking it for every refused message would make it walk the
    /// due work again and again for nothing it can take.
    pub fn left_in_store(&self, app_id: &str, endpoints: &[&str]) {
        if self.fair.note_left_in_store(app_id, endpoints) {
            self.wake.notify_one();
        }
    }

    /// When a lease taken at `now` runs out.
    pub fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.lease
    }

    /// Count of attempts recorded since start; changes after every committed batch. Lets
    /// callers (tests, the benchmark) wait for delivery work instead of sleeping.
    pub fn recorded(&self) -> tokio::sync::watch::Receiver<u64> {
        self.recorded.clone()
    }

    /// In-flight requests and open circuits, now.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            in_flight: self.max_concurrency.saturating_sub(self.global.available_permits()),
            open_circuits: self.guards.open_circuits(),
        }
    }

    /// Traffic counted on this node for the dashboard's charts.
    pub fn traffic(&self) -> &Arc<crate::traffic::Traffic> {
        &self.traffic
    }

    /// `Err(reason)` when the attempt recorder has stopped or cannot write.
    pub fn recorder_health(&self) -> Result<(), &'static str> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.recorder_health.check(now_ms)
    }

    /// Asks the poller to look for due work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks the FIFO runner to look for lanes with work now.
    pub fn wake_fifo(&self) {
        self.fifo_wake.notify_one();
    }
}

/// The engine; [`Worker::run`] drives it until shutdown.
pub struct Worker {
    /// Sends the FIFO destinations' lanes (taken by `run`).
    fifo: Option<fifo::FifoRunner>,
    /// How long requests in flight at shutdown may take before they are abandoned.
    shutdown_grace: Duration,
    rx: mpsc::Receiver<Job>,
    jobs: mpsc::Sender<Job>,
    wake: Arc<Notify>,
    store: Arc<dyn QueueStore>,
    clock: Arc<dyn Clock>,
    endpoints: Arc<EndpointCache>,
    sender: send::Sender,
    policy: RetryPolicy,
    global: Arc<Semaphore>,
    /// What one endpoint and one application may hold in memory.
    fair: Arc<fair::Fairness>,
    endpoint_cap: usize,
    per_endpoint: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    app_cap: usize,
    per_app: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    /// Deliveries taken and not yet recorded, with their lease tokens (renewed while held).
    in_flight: Arc<Mutex<HashMap<String, i64>>>,
    poll_interval: Duration,
    lease: Duration,
    recorded: tokio::sync::watch::Sender<u64>,
    apps: Arc<AppCache>,
    guards: Arc<guard::Guards>,
    notifier: Notifier,
    disable_after: chrono::Duration,
    recorder_health: Arc<record::RecorderHealth>,
    traffic: Arc<crate::traffic::Traffic>,
}

impl Worker {
    /// Runs the poller, the recorder and the send loop until `shutdown`; then waits for
    /// requests in flight and flushes their records.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        // Fires `shutdown_grace` after the shutdown: requests still in flight then are abandoned
        // and their deliveries given back, and the recorder stops waiting for the database.
        let abandon = CancellationToken::new();
        let (recorder, record_task) = record::Recorder::start(
            self.store.clone(),
            self.recorded.clone(),
            abandon.clone(),
            self.recorder_health.clone(),
        );
        if let Some(fifo) = self.fifo.take() {
            tracker.spawn(fifo.run(shutdown.clone()));
        }
        let poller = tracker.spawn(poll_loop(
            PollContext {
                store: self.store.clone(),
                clock: self.clock.clone(),
                jobs: self.jobs.clone(),
                wake: self.wake.clone(),
                fair: self.fair.clone(),
                guards: self.guards.clone(),
                interval: self.poll_interval,
                lease: self.lease,
            },
            shutdown.clone(),
        ));
        // Leases are short and renewed while their deliveries are held, so a dead node's work is
        // taken over within one lease.
        // Renewal goes on through the shutdown grace period, while requests still in flight
        // finish and are recorded; it stops only once they are all done.
        let renew_stop = CancellationToken::new();
        let renewer = tokio::spawn(renew_loop(
            self.store.clone(),
            self.clock.clone(),
            self.in_flight.clone(),
            self.lease,
            renew_stop.clone(),
        ));
        // Other nodes announce due work (PostgreSQL LISTEN/NOTIFY); polling is the fallback.
        tracker.spawn(listen_loop(self.store.clone(), self.wake.clone(), shutdown.clone()));
        let ctx = Arc::new(attempt::SendContext {
            store: self.store.clone(),
            clock: self.clock.clone(),
            endpoints: self.endpoints.clone(),
            apps: self.apps.clone(),
            sender: self.sender.clone(),
            policy: self.policy.clone(),
            recorder,
            guards: self.guards.clone(),
            notifier: self.notifier.clone(),
            disable_after: self.disable_after,
            unsent: Mutex::new(Vec::new()),
            traffic: self.traffic.clone(),
        });
        loop {
            let mut job = tokio::select! {
                _ = shutdown.cancelled() => break,
                job = self.rx.recv() => match job { Some(j) => j, None => break },
            };
            let taken = {
                let mut in_flight = self.in_flight.lock().expect("in-flight set poisoned");
                match in_flight.entry(job.delivery.id.clone()) {
                    std::collections::hash_map::Entry::Occupied(mut held) => {
                        // Claimed again by this node while its attempt is still out (the lease
                        // ran out meanwhile): that attempt's record must apply under the new
                        // lease, or fencing would drop it and the delivery be sent twice.
                        held.insert(job.delivery.lease_token);
                        false
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(job.delivery.lease_token);
                        true
                    }
                }
            };
            if !taken {
                // Claimed again while its previous attempt is still being recorded (its lease ran
                // out meanwhile): the new claim holds a lease, so dropping the job would leave the
                // delivery waiting for that lease to expire. Hand it back once the attempt before
                // it is recorded; the stale-claim check then sends it or lets it go (so the
                // message read with the claim, before that record, is dropped: the check reads it
                // again).
                job.message = None;
                let (in_flight, jobs) = (self.in_flight.clone(), self.jobs.clone());
                tokio::spawn(async move {
                    while in_flight
                        .lock()
                        .expect("in-flight set poisoned")
                        .contains_key(&job.delivery.id)
                    {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    let _ = jobs.send(job).await;
                });
                continue;
            }
            // Its place in memory was taken before it was queued, by the publish or the claim
            // that brought it (beyond its share a delivery waits in the database), and is given
            // back once its record is queued.
            let Job {
                delivery,
                message,
                hold,
            } = job;
            let endpoint_slot = Self::semaphore(&self.per_endpoint, &delivery.endpoint_id, self.endpoint_cap);
            let app_slot = Self::semaphore(&self.per_app, &delivery.app_id, self.app_cap);
            let global = self.global.clone();
            let ctx = ctx.clone();
            // Leaves the in-flight set when the task ends, however it ends (a panic included),
            // so the delivery can never be stuck as "in flight" in this process.
            let entry = InFlightEntry {
                set: self.in_flight.clone(),
                id: delivery.id.clone(),
            };
            let stop = shutdown.clone();
            let abandon = abandon.clone();
            tracker.spawn(async move {
                let delivery_id = delivery.id.clone();
                let lease_token = delivery.lease_token;
                // The endpoint's slot first: deliveries queued behind a slow endpoint wait here
                // without holding an application or global slot (the attempt takes those only
                // to send). A shutdown while waiting gives the delivery back instead of sending it.
                let record = match endpoint_turn(&endpoint_slot, &stop).await {
                    Err(Refused::Stopped) => {
                        ctx.unsent(delivery_id.clone(), lease_token);
                        None
                    }
                    Err(Refused::Closed) => None,
                    // Boxed: a task's future is copied whole when it is spawned and when it
                    // finishes, and the attempt's need not be. (The attempt keeps its request's
                    // state, several KiB, in a box of its own taken only once its slots are.)
                    Ok(_ep) => tokio::select! {
                        record = Box::pin(ctx.attempt(delivery, message, attempt::Slots { app: &app_slot, global: &global }, &stop)) => record,
                        _ = abandon.cancelled() => {
                            // Dropping the attempt cancels its request; the delivery goes
                            // back to the queue and is sent again (it was in flight).
                            ctx.unsent(delivery_id.clone(), lease_token);
                            None
                        }
                    },
                };
                // Slots are released before the record is queued: a slow database must not
                // hold up sending. The delivery's place in its shares is given back once the
                // record is in the recorder's bounded queue, which keeps it from then on: a
                // commit that stalls for a moment does not fill the shares with deliveries
                // already sent, and new messages keep going straight out. The delivery stays
                // marked in flight until its record is committed, so a poll in between cannot
                // send it again.
                let Some(mut record) = record else {
                    drop(entry);
                    drop(hold);
                    return;
                };
                // The lease this process holds now (a re-claim may have replaced it).
                record.lease_token = entry.token();
                let events = !record.events.is_empty();
                let committed = ctx.recorder.queue(record).await;
                drop(hold);
                committed.committed().await;
                if events {
                    ctx.notifier.wake();
                }
                drop(entry);
            });
        }
        // Shutting down: stop taking work, let requests already sent finish within the grace
        // period and be recorded, and give back every delivery not sent (or abandoned).
        let grace = self.shutdown_grace;
        let timer = abandon.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            timer.cancel();
        });
        self.rx.close();
        while let Ok(job) = self.rx.try_recv() {
            ctx.unsent(job.delivery.id, job.delivery.lease_token);
        }
        let _ = poller.await;
        tracker.close();
        tracker.wait().await;
        renew_stop.cancel();
        let _ = renewer.await;
        let unsent = ctx.take_unsent();
        if !unsent.is_empty() {
            match self.store.release_leases(&unsent, self.clock.now()).await {
                Ok(()) => tracing::info!(released = unsent.len(), "gave back deliveries not sent before shutdown"),
                Err(e) => tracing::warn!(error = %e, "cannot release leases at shutdown; they expire on their own"),
            }
        }
        drop(ctx);
        let _ = record_task.await;
    }

    /// The semaphore of `key` (an endpoint or application) in `map`, made with `cap` permits.
    /// Found without copying the key; a new entry copies it once.
    fn semaphore(map: &Mutex<HashMap<String, Arc<Semaphore>>>, key: &str, cap: usize) -> Arc<Semaphore> {
        let mut map = map.lock().expect("semaphore map poisoned");
        if let Some(found) = map.get(key) {
            return found.clone();
        }
        if map.len() > 10_000 {
            // Forget idle entries so the map does not grow without bound.
            map.retain(|_, s| s.available_permits() < cap);
        }
        map.entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(cap)))
            .clone()
    }
}

/// Why a delivery got no turn at its endpoint's send slots.
enum Refused {
    /// The engine is stopping: the delivery is given back.
    Stopped,
    /// The slots are closed (never, while the engine runs).
    Closed,
}

/// A turn at one of `slots` (an endpoint's), waited for until `stop` fires. A free slot is
/// taken at once, without registering on the shutdown token that every send shares: its
/// waiters are a list behind one lock, which the engine's threads would otherwise take twice
/// for every delivery. Waiting deliveries queue in order, and a free slot is never free while
/// any wait (the semaphore hands released slots to its waiters first).
async fn endpoint_turn(slots: &Arc<Semaphore>, stop: &CancellationToken) -> Result<OwnedSemaphorePermit, Refused> {
    let permit = match slots.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(TryAcquireError::Closed) => return Err(Refused::Closed),
        Err(TryAcquireError::NoPermits) => tokio::select! {
            biased;
            _ = stop.cancelled() => return Err(Refused::Stopped),
            slot = slots.clone().acquire_owned() => slot.map_err(|_| Refused::Closed)?,
        },
    };
    match stop.is_cancelled() {
        true => Err(Refused::Stopped),
        false => Ok(permit),
    }
}

/// A delivery's place in the in-flight set, removed when dropped.
struct InFlightEntry {
    set: Arc<Mutex<HashMap<String, i64>>>,
    id: String,
}

impl InFlightEntry {
    /// The lease token the delivery is held under now.
    fn token(&self) -> i64 {
        let set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        set.get(&self.id).copied().unwrap_or(0)
    }
}

impl Drop for InFlightEntry {
    fn drop(&mut self) {
        // A poisoned lock (a panic while it was held) must not stop the removal either.
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.id);
    }
}

/// Extends the leases of every delivery this process holds, every quarter lease, until shutdown.
/// A renewal that fails (the database is away) is tried again at the next tick; if the lease
/// runs out meanwhile another node may send the delivery too, and fencing keeps the newer
/// outcome.
async fn renew_loop(
    store: Arc<dyn QueueStore>,
    clock: Arc<dyn Clock>,
    in_flight: Arc<Mutex<HashMap<String, i64>>>,
    lease: Duration,
    shutdown: CancellationToken,
) {
    let every = (lease / 4).max(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let held: Vec<(String, i64)> = in_flight
            .lock()
            .expect("in-flight set poisoned")
            .iter()
            .filter(|(_, token)| **token != 0)
            .map(|(id, token)| (id.clone(), *token))
            .collect();
        if held.is_empty() {
            continue;
        }
        let until = clock.now() + lease;
        if let Err(e) = store.renew_leases(&held, until).await {
            tracing::warn!(error = %e, leases = held.len(), "renewing leases failed; retrying at the next tick");
        }
    }
}

/// Wakes the poller whenever the store reports work made due by another process.
async fn listen_loop(store: Arc<dyn QueueStore>, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            signal = store.wait_for_work() => match signal {
                Ok(()) => wake.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other nodes' work failed; polling until it reconnects");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            },
        }
    }
}

/// What the poller needs.
struct PollContext {
    store: Arc<dyn QueueStore>,
    clock: Arc<dyn Clock>,
    jobs: mpsc::Sender<Job>,
    wake: Arc<Notify>,
    fair: Arc<fair::Fairness>,
    guards: Arc<guard::Guards>,
    interval: Duration,
    lease: Duration,
}

async fn poll_loop(p: PollContext, shutdown: CancellationToken) {
    let mut backoff = Duration::ZERO;
    // The first claim is made at once: after a restart, what was due (a crashed process's
    // released leases included) resumes without waiting a poll interval.
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = p.wake.notified() => {}
                _ = tokio::time::sleep(p.interval + backoff) => {}
            }
        }
        let room = p.jobs.capacity().min(CLAIM_BATCH).min(p.fair.room());
        if room == 0 {
            // Whatever is due waits until half the node's share is free again.
            p.fair.note_total_waiting();
            continue;
        }
        let now = p.clock.now();
        // Only what each endpoint and application can take now: the rest stays in the database.
        let limits = p.guards.hold_limits(now);
        let bounds = p.fair.claim_bounds(&limits);
        match p.store.claim_due_with_messages(now, now + p.lease, room, &bounds).await {
            Ok(hookd_store::ClaimedBatch {
                deliveries: claimed,
                messages,
            }) => {
                backoff = Duration::ZERO;
                crate::metrics::deliveries_dispatched(crate::metrics::Dispatched::Claimed, claimed.len());
                let full_batch = claimed.len() == room;
                // An endpoint that filled its room may have more waiting: claim again as soon
                // as one of its deliveries finishes.
                let mut per_endpoint: HashMap<&str, usize> = HashMap::new();
                let mut per_app: HashMap<&str, usize> = HashMap::new();
                for d in &claimed {
                    *per_endpoint.entry(d.endpoint_id.as_str()).or_default() += 1;
                    *per_app.entry(d.app_id.as_str()).or_default() += 1;
                }
                p.fair.note_claimed(&bounds, &per_app, full_batch);
                for (app, n) in per_app {
                    if n >= bounds.app_room.get(app).copied().unwrap_or(bounds.per_app) {
                        p.fair.note_app_waiting(app);
                    }
                }
                for (endpoint, n) in per_endpoint {
                    if n >= bounds
                        .endpoint_room
                        .get(endpoint)
                        .copied()
                        .unwrap_or(bounds.per_endpoint)
                    {
                        p.fair.note_waiting(endpoint);
                    }
                }
                // Their messages, read with the claim (a fan-out's payload once), not one per
                // attempt. Read under the leases just taken, they are as current as a fresh
                // delivery's; any left out (or all, if the read failed) are read by their
                // attempts.
                let messages = match messages {
                    Ok(messages) => messages,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read claimed messages at once; each attempt reads its own");
                        Vec::new()
                    }
                };
                // Each takes its place in memory here, before the next claim's bounds are
                // made: a claimed delivery still on its way to the send loop counts as held.
                // Within the paced and open-circuit limits the claim was bounded by.
                let now = p.clock.now();
                let hold = |d: &ClaimedDelivery| {
                    p.fair
                        .try_hold(&d.endpoint_id, &d.app_id, limits.get(&d.endpoint_id).copied())
                };
                let all_queued = hand_over(&p.jobs, claimed, messages, p.store.as_ref(), now, hold).await;
                if all_queued && full_batch {
                    p.wake.notify_one(); // more may be due right now
                }
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                tracing::warn!(error = %e, "claiming due deliveries failed; retrying");
            }
        }
    }
}

/// Queues claimed deliveries for the send loop, each with its message when `messages` (in the
/// same order, possibly shorter) has it and with its place in memory from `hold`. Those with
/// no place (their share filled between the claim and now) and those the queue has no room
/// for are given back at once rather than left to wait for their leases. True when all were
/// queued.
async fn hand_over(
    jobs: &mpsc::Sender<Job>,
    claimed: Vec<ClaimedDelivery>,
    messages: Vec<Option<Arc<Message>>>,
    store: &dyn QueueStore,
    now: DateTime<Utc>,
    mut hold: impl FnMut(&ClaimedDelivery) -> Option<fair::Hold>,
) -> bool {
    let mut unsent = Vec::new();
    let mut queue_full = false;
    let mut messages = messages.into_iter();
    for delivery in claimed {
        let message = messages.next().flatten();
        let place = if queue_full { None } else { hold(&delivery) };
        let Some(place) = place else {
            unsent.push((delivery.id, delivery.lease_token));
            continue;
        };
        if let Err(e) = jobs.try_send(Job {
            delivery,
            message,
            hold: place,
        }) {
            queue_full = true;
            let d = e.into_inner().delivery;
            unsent.push((d.id, d.lease_token));
        }
    }
    if unsent.is_empty() {
        return true;
    }
    if let Err(e) = store.release_leases(&unsent, now).await {
        tracing::warn!(error = %e, "cannot give back claimed deliveries; they wait for their leases");
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::testing::{application, at, endpoint, message, sqlite_store};

    /// An endpoint's turn: a free slot at once, unless the engine is stopping; otherwise in
    /// line behind the deliveries already waiting (a slot given back goes to the first of
    /// them, never to a newcomer), until a stop gives the delivery back.
    #[tokio::test]
    async fn a_turn_at_an_endpoint_is_taken_at_once_when_free_and_in_line_otherwise() {
        let slots = Arc::new(Semaphore::new(1));
        let stop = CancellationToken::new();

        let first = endpoint_turn(&slots, &stop).await.ok().expect("a free slot is taken");
        assert_eq!(slots.available_permits(), 0);

        // Full: the next delivery waits, and is first in line when the slot comes back.
        let waiting = tokio::spawn({
            let (slots, stop) = (slots.clone(), stop.clone());
            async move { endpoint_turn(&slots, &stop).await.is_ok() }
        });
        settle().await;
        assert!(!waiting.is_finished(), "no slot is free yet");
        drop(first);
        // The slot went to the waiting delivery: a newcomer finds none free.
        assert!(matches!(
            slots.clone().try_acquire_owned(),
            Err(TryAcquireError::NoPermits)
        ));
        assert!(waiting.await.unwrap());

        // A stop ends a wait, and refuses even a free slot.
        let held = slots.clone().try_acquire_owned().unwrap();
        let waiting = tokio::spawn({
            let (slots, stop) = (slots.clone(), stop.clone());
            async move { endpoint_turn(&slots, &stop).await.err() }
        });
        settle().await;
        stop.cancel();
        assert!(matches!(waiting.await.unwrap(), Some(Refused::Stopped)));
        drop(held);
        assert!(matches!(endpoint_turn(&slots, &stop).await, Err(Refused::Stopped)));
        assert_eq!(slots.available_permits(), 1, "a refused turn holds no slot");

        slots.close();
        assert!(matches!(
            endpoint_turn(&slots, &CancellationToken::new()).await,
            Err(Refused::Closed)
        ));
    }

    /// Lets the test's spawned tasks run until they wait (the test runtime has one thread).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// The send loop's slot maps: one semaphore per key, found again without a copy; past
    /// their bound, a new key makes the map forget every idle entry and keep the busy ones.
    #[test]
    fn slot_maps_share_one_semaphore_per_key_and_forget_idle_ones_past_their_bound() {
        let map = Mutex::new(HashMap::new());
        let busy = Worker::semaphore(&map, "ep_busy", 4);
        assert!(Arc::ptr_eq(&busy, &Worker::semaphore(&map, "ep_busy", 4)));
        let _sending = busy.clone().try_acquire_owned().unwrap();
        for i in 0..10_000 {
            Worker::semaphore(&map, &format!("ep_{i}"), 4);
        }
        assert_eq!(
            map.lock().unwrap().len(),
            10_001,
            "up to the bound, nothing is forgotten"
        );
        Worker::semaphore(&map, "ep_new", 4);
        assert_eq!(map.lock().unwrap().len(), 2, "the idle ones are forgotten");
        assert!(
            Arc::ptr_eq(&busy, &Worker::semaphore(&map, "ep_busy", 4)),
            "the busy one is kept"
        );
    }

    #[tokio::test]
    async fn claimed_deliveries_without_a_place_or_room_in_the_queue_are_given_back_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir, None);
        let app = application("app_a", "ws_a", "A");
        store.create_application(&app).await.unwrap();
        store.create_endpoint(&endpoint("ep_a", &app.id)).await.unwrap();
        for i in 0..3 {
            let msg = message(&format!("msg_{i}"), &app.id);
            let delivery = NewDelivery {
                id: format!("msgep_{i}"),
                msg_id: msg.id.clone(),
                endpoint_id: "ep_a".into(),
                app_id: app.id.clone(),
                due_at: at(),
                leased_until: None,
                lease_token: 0,
                lane: None,
            };
            store.create_message(&msg, &[delivery]).await.unwrap();
        }
        let now = at() + chrono::Duration::seconds(1);
        let hour = chrono::Duration::hours(1);
        let claimed = store.claim_due(now, now + hour, 10).await.unwrap();
        assert_eq!(claimed.len(), 3);

        // Room for one job: the other two go back to the database.
        let fair = fair::Fairness::new(100, 100, 100, Arc::default());
        let hold = |d: &ClaimedDelivery| fair.try_hold(&d.endpoint_id, &d.app_id, None);
        let (jobs, mut queue) = mpsc::channel(1);
        assert!(!hand_over(&jobs, claimed, Vec::new(), store.as_ref(), now, hold).await);
        let queued = queue.try_recv().expect("one job queued");
        assert_eq!(queued.delivery.id, "msgep_0", "the longest overdue is queued first");
        assert_eq!(fair.room(), 99, "the given-back ones hold no place");
        drop(queued);
        assert_eq!(fair.room(), 100, "queued with its place in memory, freed with the job");
        let again = store.claim_due(now, now + hour, 10).await.unwrap();
        let ids: Vec<&str> = again.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            ["msgep_1", "msgep_2"],
            "given back and due now, not after their hour-long leases; the queued one stays held"
        );
        // A share with room for one: the other is given back, not queued without a place.
        let narrow = fair::Fairness::new(100, 1, 100, Arc::default());
        let hold = |d: &ClaimedDelivery| narrow.try_hold(&d.endpoint_id, &d.app_id, None);
        let (jobs, mut queue) = mpsc::channel(8);
        assert!(
            !hand_over(&jobs, again, Vec::new(), store.as_ref(), now, hold).await,
            "one share full"
        );
        assert_eq!(queue.try_recv().unwrap().delivery.id, "msgep_1");
        assert!(queue.try_recv().is_err());
        let last = store.claim_due(now, now + hour, 10).await.unwrap();
        assert_eq!(last.len(), 1, "given back at once");
        let hold = |d: &ClaimedDelivery| fair.try_hold(&d.endpoint_id, &d.app_id, None);
        assert!(
            hand_over(&jobs, last, Vec::new(), store.as_ref(), now, hold).await,
            "room for it now"
        );
        assert_eq!(queue.try_recv().unwrap().delivery.id, "msgep_2");
        assert!(store.claim_due(now, now + hour, 10).await.unwrap().is_empty());
    }

    /// A queue store whose attempt records wait until `open` is set (a database whose commits
    /// of records stall while everything else works), and which counts how claimed messages
    /// are read: one by one, or a batch at once.
    struct Probe {
        inner: Arc<dyn hookd_store::Store>,
        open: tokio::sync::watch::Receiver<bool>,
        single_reads: AtomicUsize,
        batch_reads: AtomicUsize,
    }

    impl Probe {
        fn new(inner: Arc<dyn hookd_store::Store>, open: tokio::sync::watch::Receiver<bool>) -> Probe {
            Probe {
                inner,
                open,
                single_reads: AtomicUsize::new(0),
                batch_reads: AtomicUsize::new(0),
            }
        }
    }

    #[async_trait::async_trait]
    impl QueueStore for Probe {
        async fn release_stale_leases(&self, now: DateTime<Utc>) -> hookd_store::StoreResult<u64> {
            self.inner.release_stale_leases(now).await
        }
        async fn ping(&self) -> hookd_store::StoreResult<()> {
            self.inner.ping().await
        }
        async fn claim_due_within(
            &self,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>,
            limit: usize,
            bounds: &hookd_store::ClaimBounds,
        ) -> hookd_store::StoreResult<Vec<ClaimedDelivery>> {
            self.inner.claim_due_within(now, lease_until, limit, bounds).await
        }
        async fn claim_due_with_messages(
            &self,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>,
            limit: usize,
            bounds: &hookd_store::ClaimBounds,
        ) -> hookd_store::StoreResult<hookd_store::ClaimedBatch> {
            self.batch_reads.fetch_add(1, Ordering::SeqCst);
            self.inner
                .claim_due_with_messages(now, lease_until, limit, bounds)
                .await
        }
        async fn record_attempts(&self, outcomes: &[hookd_store::AttemptRecord]) -> hookd_store::StoreResult<()> {
            let mut open = self.open.clone();
            let _ = open.wait_for(|open| *open).await;
            self.inner.record_attempts(outcomes).await
        }
        async fn renew_leases(&self, leases: &[(String, i64)], until: DateTime<Utc>) -> hookd_store::StoreResult<u64> {
            self.inner.renew_leases(leases, until).await
        }
        async fn release_leases(&self, leases: &[(String, i64)], now: DateTime<Utc>) -> hookd_store::StoreResult<()> {
            self.inner.release_leases(leases, now).await
        }
        async fn park_delivery(&self, delivery_id: &str, lease_token: i64) -> hookd_store::StoreResult<()> {
            self.inner.park_delivery(delivery_id, lease_token).await
        }
        async fn unpark_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> hookd_store::StoreResult<u64> {
            self.inner.unpark_endpoint(endpoint_id, now).await
        }
        async fn hasten_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> hookd_store::StoreResult<u64> {
            self.inner.hasten_endpoint(endpoint_id, now).await
        }
        async fn defer_delivery(
            &self,
            delivery_id: &str,
            lease_token: i64,
            until: DateTime<Utc>,
        ) -> hookd_store::StoreResult<()> {
            self.inner.defer_delivery(delivery_id, lease_token, until).await
        }
        async fn claimed_message(&self, d: &ClaimedDelivery) -> hookd_store::StoreResult<Option<Message>> {
            self.single_reads.fetch_add(1, Ordering::SeqCst);
            self.inner.claimed_message(d).await
        }
        async fn claimed_messages(
            &self,
            claimed: &[ClaimedDelivery],
        ) -> hookd_store::StoreResult<Vec<Option<Arc<Message>>>> {
            self.batch_reads.fetch_add(1, Ordering::SeqCst);
            self.inner.claimed_messages(claimed).await
        }
        async fn disable_endpoint(
            &self,
            app_id: &str,
            endpoint_id: &str,
            now: DateTime<Utc>,
            failing_by: Option<DateTime<Utc>>,
        ) -> hookd_store::StoreResult<Option<hookd_core::model::Endpoint>> {
            self.inner.disable_endpoint(app_id, endpoint_id, now, failing_by).await
        }
    }

    /// A receiver on loopback answering 204 to every `POST /hook`, and how many it has had.
    async fn counting_receiver() -> (String, Arc<AtomicUsize>) {
        let received = Arc::new(AtomicUsize::new(0));
        let counter = received.clone();
        let receiver = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, receiver).await });
        (format!("http://{addr}/hook"), received)
    }

    /// An application with `endpoints` endpoints (`ep_0`, `ep_1`, …) at `url`, stored.
    async fn app_with_endpoints(store: &Arc<dyn hookd_store::Store>, url: &str, endpoints: usize) -> String {
        let app = application("app_a", "ws_a", "A");
        store.create_application(&app).await.unwrap();
        for i in 0..endpoints {
            let mut ep = endpoint(&format!("ep_{i}"), &app.id);
            ep.url = url.to_string();
            ep.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into();
            store.create_endpoint(&ep).await.unwrap();
        }
        app.id
    }

    /// The engine on `queue` (over `store`), running until the returned token is cancelled.
    fn start_engine(
        config: &DeliveryConfig,
        queue: Arc<dyn QueueStore>,
        store: &Arc<dyn hookd_store::Store>,
    ) -> (Dispatcher, tokio::task::JoinHandle<()>, CancellationToken) {
        let ttl = Duration::from_secs(10);
        let (dispatcher, worker) = Dispatcher::new(
            (config, &SandboxConfig::default()),
            (queue, store.clone()),
            Arc::new(crate::clock::SystemClock),
            (
                Arc::new(EndpointCache::new(store.clone(), ttl)),
                Arc::new(AppCache::new(store.clone(), ttl)),
            ),
            Notifier::default(),
            Arc::new(crate::relay::RelayHub::default()),
        )
        .unwrap();
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(worker.run(shutdown.clone()));
        (dispatcher, running, shutdown)
    }

    /// Deliveries the poller claims together get their messages from one batch read, with no
    /// read per attempt: a fan-out of one message to six endpoints, stored due (not handed
    /// over), is sent to all six and reads its message once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claimed_fan_out_reads_its_message_once() {
        let (url, received) = counting_receiver().await;
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir, None);
        let app_id = app_with_endpoints(&store, &url, 6).await;
        let msg = message("msg_0", &app_id);
        let deliveries: Vec<NewDelivery> = (0..6)
            .map(|i| NewDelivery {
                id: format!("msgep_{i}"),
                msg_id: msg.id.clone(),
                endpoint_id: format!("ep_{i}"),
                app_id: app_id.clone(),
                due_at: Utc::now(),
                leased_until: None,
                lease_token: 0,
                lane: None,
            })
            .collect();
        store.create_message(&msg, &deliveries).await.unwrap();

        let (_, gate) = tokio::sync::watch::channel(true);
        let probe = Arc::new(Probe::new(store.clone(), gate));
        let config = DeliveryConfig {
            allowed_subnets: vec!["127.0.0.0/8".into()],
            ..DeliveryConfig::default()
        };
        let (dispatcher, running, shutdown) = start_engine(&config, probe.clone(), &store);
        let mut recorded = dispatcher.recorded();
        tokio::time::timeout(Duration::from_secs(10), recorded.wait_for(|n| *n == 6))
            .await
            .expect("all six attempts recorded")
            .unwrap();
        assert_eq!(received.load(Ordering::SeqCst), 6);
        for i in 0..6 {
            let state = store.get_delivery("msg_0", &format!("ep_{i}")).await.unwrap().unwrap();
            assert_eq!(state.status, hookd_core::model::MessageStatus::Success, "ep_{i}");
        }
        assert_eq!(probe.single_reads.load(Ordering::SeqCst), 0, "no attempt read its own");
        assert!(probe.batch_reads.load(Ordering::SeqCst) >= 1);
        shutdown.cancel();
        running.await.unwrap();
    }

    /// An endpoint's share counts deliveries until their records are queued for the database,
    /// not until they are committed: while commits of records stall, an endpoint whose share
    /// is 4 still gets every new message at once (before, the fifth waited in the database for
    /// the stall to end), and every record is committed once the database moves again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_record_commit_does_not_hold_up_new_deliveries() {
        let (url, received) = counting_receiver().await;
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir, None);
        let app_id = app_with_endpoints(&store, &url, 1).await;

        let (open, gate) = tokio::sync::watch::channel(false);
        let queue: Arc<dyn QueueStore> = Arc::new(Probe::new(store.clone(), gate));
        let config = DeliveryConfig {
            endpoint_backlog: 4,
            allowed_subnets: vec!["127.0.0.0/8".into()],
            // Only a hand-over can deliver in time: the poller would come too late.
            poll_interval_ms: 60_000,
            ..DeliveryConfig::default()
        };
        let (dispatcher, running, shutdown) = start_engine(&config, queue, &store);

        // Published one by one, as the API does: reserve, commit, hand over.
        for i in 0..12 {
            let msg = message(&format!("msg_{i}"), &app_id);
            let now = Utc::now();
            let reserved = dispatcher.try_reserve(&app_id, &["ep_0"]);
            assert!(
                reserved.is_some(),
                "message {i} found its share full while records stalled"
            );
            let delivery = NewDelivery {
                id: format!("msgep_{i}"),
                msg_id: msg.id.clone(),
                endpoint_id: "ep_0".into(),
                app_id: app_id.clone(),
                due_at: now,
                leased_until: Some(dispatcher.lease_until(now)),
                lease_token: 1 + i,
                lane: None,
            };
            store
                .create_message(&msg, std::slice::from_ref(&delivery))
                .await
                .unwrap();
            reserved.unwrap().send(vec![delivery], Arc::new(msg));
            let arrived = tokio::time::timeout(Duration::from_secs(5), async {
                while received.load(Ordering::SeqCst) <= i as usize {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
            assert!(arrived.is_ok(), "message {i} was not delivered while records stalled");
        }
        assert_eq!(*dispatcher.recorded().borrow(), 0, "nothing committed during the stall");

        open.send(true).unwrap();
        let mut recorded = dispatcher.recorded();
        tokio::time::timeout(Duration::from_secs(10), recorded.wait_for(|n| *n == 12))
            .await
            .expect("every record committed once the database moves")
            .unwrap();
        for i in 0..12 {
            let finished = store.get_delivery(&format!("msg_{i}"), "ep_0").await.unwrap().unwrap();
            assert_eq!(finished.status, hookd_core::model::MessageStatus::Success, "msg_{i}");
        }
        assert_eq!(received.load(Ordering::SeqCst), 12, "each sent once");
        shutdown.cancel();
        running.await.unwrap();
    }

    #[tokio::test]
    async fn a_panicking_attempt_task_leaves_the_in_flight_set() {
        let set = Arc::new(Mutex::new(HashMap::from_iter([("msgep_1".to_string(), 7)])));
        let entry = InFlightEntry {
            set: set.clone(),
            id: "msgep_1".to_string(),
        };
        let task = tokio::spawn(async move {
            let _entry = entry;
            panic!("a bug in an attempt");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert!(
            set.lock().unwrap().is_empty(),
            "the delivery is no longer marked in flight"
        );
    }
}
