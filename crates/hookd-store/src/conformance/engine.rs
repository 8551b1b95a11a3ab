//! Conformance tests for the delivery engine around the queue: parking and deferring deliveries,
//! the endpoint health that recorded attempts maintain, and what an attempt record keeps.

use super::*;

/// A delivery's next attempt time, read back through [`MessageStore::get_delivery`].
async fn next_attempt(store: &dyn Store, d: &NewDelivery) -> Option<DateTime<Utc>> {
    let state = store.get_delivery(&d.msg_id, &d.endpoint_id).await.unwrap();
    state
        .unwrap_or_else(|| panic!("delivery {} is gone", d.id))
        .next_attempt_at
}

/// An endpoint's `failing_since`, read back through [`CatalogStore::get_endpoint`].
async fn failing_since(store: &dyn Store, ep: &Endpoint) -> Option<DateTime<Utc>> {
    let found = store.get_endpoint(&ep.app_id, &ep.id).await.unwrap();
    found
        .unwrap_or_else(|| panic!("endpoint {} is gone", ep.id))
        .failing_since
}

/// Records `outcome` alone.
async fn record(store: &dyn Store, outcome: AttemptRecord) {
    store.record_attempts(&[outcome]).await.expect("record");
}

/// The attempt of a receiver answering `410 Gone`: the delivery fails and is parked.
fn gone(g: &mut Gen, d: &NewDelivery, when: i64) -> AttemptRecord {
    AttemptRecord {
        park: true,
        ..g.outcome(d, at(when), 410, Fail, None)
    }
}

/// A manual attempt (a resend) of `d` at `when` answered with `code`; the delivery finishes.
fn manual(g: &mut Gen, d: &NewDelivery, when: i64, code: i64) -> AttemptRecord {
    let status = if (200..300).contains(&code) { Success } else { Fail };
    let mut outcome = g.outcome(d, at(when), code, status, None);
    outcome.attempt.trigger_type = TriggerType::Manual;
    outcome
}

// ----- parking and deferring -----

/// A parked delivery keeps no due time: no claim takes it however late it is, not even after
/// a restart releases every lease; the other deliveries of its endpoint carry on.
pub async fn parked_delivery_is_never_claimed(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, parked) = send(store, &mut g, &ep, 0).await;
    let (_, other) = send(store, &mut g, &ep, 0).await;
    assert_eq!(
        claim(store, 0, 1000).await,
        sorted([parked.id.clone(), other.id.clone()])
    );

    store.park_delivery(&parked.id, 0).await.expect("park");
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!(
        (state.id, state.status, state.next_attempt_at),
        (parked.id, Pending, None)
    );
    assert_eq!(claim(store, 1001, 2000).await, vec![other.id.clone()]);
    assert_eq!(claim(store, 10_000_000, 10_000_030).await, vec![other.id.clone()]);
    store.release_stale_leases(at(0)).await.expect("release");
    assert_eq!(claim(store, 10_000_100, 10_000_130).await, vec![other.id]);
}

/// Unparking an endpoint makes each of its parked deliveries (parked directly or by a recorded
/// attempt) due at `now`, lease-free, and returns how many; deliveries on their schedule and
/// other endpoints' parked deliveries are left as they were.
pub async fn unpark_endpoint_makes_only_that_endpoints_parked_deliveries_due_now(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_ep = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&other_ep).await.unwrap();
    let (_, parked) = send(store, &mut g, &ep, 0).await;
    let (_, was_gone) = send(store, &mut g, &ep, 1).await;
    let (_, retrying) = send(store, &mut g, &ep, 2).await;
    let (_, elsewhere) = send(store, &mut g, &other_ep, 3).await;
    let later_msg = g.message(&app.id, "user.created", at(4));
    let later = g.delivery(&later_msg, &ep.id, at(500));
    store.create_message(&later_msg, slice::from_ref(&later)).await.unwrap();
    let leased = sorted([&parked, &was_gone, &retrying, &elsewhere].map(|d| d.id.clone()));
    assert_eq!(claim(store, 10, 1000).await, leased);
    store.park_delivery(&parked.id, 0).await.unwrap();
    store.park_delivery(&elsewhere.id, 0).await.unwrap();
    let retry_at_300 = g.outcome(&retrying, at(11), 500, Sending, Some(at(300)));
    let outcomes = [gone(&mut g, &was_gone, 11), retry_at_300];
    store.record_attempts(&outcomes).await.unwrap();

    assert_eq!(store.unpark_endpoint(&ep.id, at(100)).await.expect("unpark"), 2);
    assert_eq!(next_attempt(store, &parked).await, Some(at(100)));
    assert_eq!(next_attempt(store, &was_gone).await, Some(at(100)));
    assert_eq!(next_attempt(store, &retrying).await, Some(at(300)));
    assert_eq!(next_attempt(store, &later).await, Some(at(500)));
    assert_eq!(next_attempt(store, &elsewhere).await, None);

    assert_eq!(claim(store, 99, 200).await, Vec::<String>::new());
    // Due at 100 although the claim at 10 leased them until 1000: parking released the lease.
    assert_eq!(
        claim(store, 100, 200).await,
        sorted([parked.id.clone(), was_gone.id.clone()])
    );
    assert_eq!(store.unpark_endpoint(&ep.id, at(150)).await.unwrap(), 0);
    let everything_due = sorted([parked.id, was_gone.id, retrying.id, later.id]);
    assert_eq!(claim(store, 10_000, 10_100).await, everything_due);
    assert_eq!(next_attempt(store, &elsewhere).await, None);
}

/// Hastening makes an endpoint's waiting retries due now; parked, finished, already due and
/// other endpoints' deliveries keep their times.
pub async fn hasten_endpoint_makes_only_that_endpoints_waiting_retries_due_now(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_ep = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&other_ep).await.unwrap();
    let (_, retrying) = send(store, &mut g, &ep, 0).await;
    let (_, parked) = send(store, &mut g, &ep, 1).await;
    let (_, done) = send(store, &mut g, &ep, 2).await;
    let (_, elsewhere) = send(store, &mut g, &other_ep, 3).await;
    claim(store, 10, 1000).await;
    store.park_delivery(&parked.id, 0).await.unwrap();
    let outcomes = [
        g.outcome(&retrying, at(11), 500, Sending, Some(at(300))),
        g.outcome(&done, at(11), 200, Success, None),
        g.outcome(&elsewhere, at(11), 500, Sending, Some(at(300))),
    ];
    store.record_attempts(&outcomes).await.unwrap();

    assert_eq!(store.hasten_endpoint(&ep.id, at(100)).await.expect("hasten"), 1);
    assert_eq!(next_attempt(store, &retrying).await, Some(at(100)));
    assert_eq!(next_attempt(store, &parked).await, None);
    assert_eq!(next_attempt(store, &done).await, None);
    assert_eq!(next_attempt(store, &elsewhere).await, Some(at(300)));
    assert_eq!(claim(store, 100, 200).await, vec![retrying.id.clone()]);
    assert_eq!(
        store.hasten_endpoint(&ep.id, at(150)).await.unwrap(),
        0,
        "nothing waits any more"
    );
}

/// Pruning deletes old messages whose deliveries are all finished, with their deliveries and
/// attempts, a batch at a time; messages still waiting for an attempt or parked stay.
pub async fn pruning_deletes_old_finished_messages_in_batches_and_keeps_unfinished_ones(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let mut finished = Vec::new();
    for t in 0..3 {
        let (m, d) = send(store, &mut g, &ep, t).await;
        finished.push((m, d));
    }
    let (waiting, waiting_d) = send(store, &mut g, &ep, 5).await;
    let (parked, parked_d) = send(store, &mut g, &ep, 6).await;
    let (recent, _) = send(store, &mut g, &ep, 500).await;
    claim(store, 10, 20).await;
    let mut outcomes: Vec<AttemptRecord> = finished
        .iter()
        .map(|(_, d)| g.outcome(d, at(11), 200, Success, None))
        .collect();
    outcomes.push(g.outcome(&waiting_d, at(11), 500, Sending, Some(at(900))));
    store.record_attempts(&outcomes).await.unwrap();
    store.park_delivery(&parked_d.id, 0).await.unwrap();

    let below = IdKind::Message.lower_bound(at(100));
    assert_eq!(store.prune_messages(&below, 2).await.unwrap(), 2, "a batch of two");
    assert_eq!(
        store.prune_messages(&below, 2).await.unwrap(),
        1,
        "the last finished one"
    );
    assert_eq!(store.prune_messages(&below, 2).await.unwrap(), 0);
    for (m, d) in &finished {
        assert_eq!(store.get_message(&m.app_id, &m.id).await.unwrap(), None);
        assert_eq!(store.get_delivery(&m.id, &d.endpoint_id).await.unwrap(), None);
        let filter = AttemptFilter {
            app_id: m.app_id.clone(),
            msg_id: Some(m.id.clone()),
            ..AttemptFilter::default()
        };
        assert!(store
            .list_attempts(&filter, &PageRequest::first(10, false))
            .await
            .unwrap()
            .items
            .is_empty());
    }
    for m in [&waiting, &parked, &recent] {
        assert!(
            store.get_message(&m.app_id, &m.id).await.unwrap().is_some(),
            "{} kept",
            m.id
        );
    }
    let kept = AttemptFilter {
        app_id: waiting.app_id.clone(),
        msg_id: Some(waiting.id.clone()),
        ..AttemptFilter::default()
    };
    assert_eq!(
        store
            .list_attempts(&kept, &PageRequest::first(10, false))
            .await
            .unwrap()
            .items
            .len(),
        1,
        "a kept message keeps its attempts"
    );
}

/// Expunging an application's contents empties its payloads and no other application's.
pub async fn expunging_an_application_removes_only_its_payloads(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, other_ep) = app_with_endpoint(store, &mut g).await;
    let (a1, _) = send(store, &mut g, &ep, 1).await;
    let (a2, _) = send(store, &mut g, &ep, 2).await;
    let (b1, _) = send(store, &mut g, &other_ep, 3).await;
    assert_eq!(store.expunge_app_contents(&ep.app_id).await.unwrap(), 2);
    assert_eq!(
        store.expunge_app_contents(&ep.app_id).await.unwrap(),
        0,
        "already empty"
    );
    for m in [&a1, &a2] {
        assert_eq!(
            store.get_message(&m.app_id, &m.id).await.unwrap().unwrap().payload,
            None
        );
    }
    assert!(store
        .get_message(&b1.app_id, &b1.id)
        .await
        .unwrap()
        .unwrap()
        .payload
        .is_some());
}

/// Queue statistics split deliveries by state and date the oldest due, unclaimed one.
pub async fn queue_stats_count_due_claimed_scheduled_and_parked_deliveries(store: &dyn Store) {
    let mut g = Gen::new();
    assert_eq!(store.queue_stats(at(0), 1000).await.unwrap(), QueueStats::default());
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (_, claimed) = send(store, &mut g, &ep, 0).await;
    let (_, parked) = send(store, &mut g, &ep, 1).await;
    let (_, retrying) = send(store, &mut g, &ep, 2).await;
    let (_, done) = send(store, &mut g, &ep, 3).await;
    claim(store, 10, 1000).await;
    store.park_delivery(&parked.id, 0).await.unwrap();
    store
        .record_attempts(&[
            g.outcome(&retrying, at(11), 500, Sending, Some(at(300))),
            g.outcome(&done, at(11), 200, Success, None),
        ])
        .await
        .unwrap();
    let (_, due_early) = send(store, &mut g, &ep, 20).await;
    let (_, due_late) = send(store, &mut g, &ep, 40).await;
    let mut off = g.endpoint(&app.id, None, at(0));
    off.disabled = true;
    store.create_endpoint(&off).await.unwrap();

    let stats = store.queue_stats(at(50), 1000).await.unwrap();
    assert_eq!(
        stats,
        QueueStats {
            due: 2,
            claimed: 1,
            scheduled: 1,
            parked: 1,
            oldest_due_at: Some(at(20)),
            disabled_endpoints: 1,
            capped: false,
        }
    );
    let _ = (claimed, due_early, due_late);
    // Before the later one is due, only one is; at 400 the retry is due too.
    assert_eq!(store.queue_stats(at(30), 1000).await.unwrap().due, 1);
    let later = store.queue_stats(at(400), 1000).await.unwrap();
    assert_eq!((later.scheduled, later.oldest_due_at), (0, Some(at(20))));
}

/// A queue count looks at no more than its cap of pending deliveries, the longest overdue
/// first, and says when it stopped there; below the cap the due count and the oldest due time
/// are exact even when other pending deliveries are left out.
pub async fn queue_counts_stop_at_their_cap_and_say_so(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    for t in 0..5 {
        send(store, &mut g, &ep, 10 + t).await;
    }
    let (_, waiting) = send(store, &mut g, &ep, 20).await;
    let retry = g.outcome(&waiting, at(21), 500, Sending, Some(at(900)));
    store.record_attempts(slice::from_ref(&retry)).await.unwrap();

    let all = store.queue_stats(at(100), 1000).await.unwrap();
    assert_eq!((all.due, all.scheduled, all.capped), (5, 1, false));
    let capped = store.queue_stats(at(100), 5).await.unwrap();
    assert_eq!(
        (capped.due, capped.scheduled, capped.oldest_due_at, capped.capped),
        (5, 0, Some(at(10)), true),
        "the five due come first; the retry beyond the cap is not counted"
    );
    let tight = store.queue_stats(at(100), 2).await.unwrap();
    assert_eq!((tight.due, tight.oldest_due_at, tight.capped), (2, Some(at(10)), true));
}

/// Deferring releases the lease and makes the delivery due at the new time, without counting an
/// attempt or turning a manual resend into a scheduled one.
pub async fn deferred_delivery_is_released_and_due_only_at_the_new_time(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    assert_eq!(claim(store, 0, 1000).await, vec![d.id.clone()]);

    store.defer_delivery(&d.id, 0, at(50)).await.expect("defer");
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Pending, Some(at(50))));
    assert_eq!(claim(store, 49, 1000).await, Vec::<String>::new());
    let claims = store.claim_due(at(51), at(1000), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    let counts = (c.trigger, c.scheduled_attempts, c.total_attempts);
    assert_eq!(counts, (TriggerType::Scheduled, 0, 0));

    let (_, resent) = send(store, &mut g, &ep, 1).await;
    record(store, g.outcome(&resent, at(2), 500, Fail, None)).await;
    store.schedule_manual(&resent, at(60)).await.unwrap();
    assert_eq!(claim(store, 60, 1000).await, vec![resent.id.clone()]);
    store.defer_delivery(&resent.id, 0, at(90)).await.expect("defer");
    assert_eq!(next_attempt(store, &resent).await, Some(at(90)));
    assert_eq!(claim(store, 89, 1000).await, Vec::<String>::new());
    let claims = store.claim_due(at(91), at(1000), 10).await.unwrap();
    let c = claimed(&claims, &resent.id);
    let counts = (c.trigger, c.scheduled_attempts, c.total_attempts);
    assert_eq!(counts, (TriggerType::Manual, 1, 1));
}

/// An attempt recorded with `park` (the receiver answered `410 Gone`) is stored, and its delivery
/// is claimed by no one until its endpoint is unparked; it then resumes with the attempt counted.
pub async fn delivery_parked_by_a_recorded_attempt_waits_for_its_endpoint_to_be_unparked(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    assert_eq!(claim(store, 0, 30).await, vec![d.id.clone()]);

    let outcome = gone(&mut g, &d, 1);
    record(store, outcome.clone()).await;
    let found = store.get_attempt(&msg.id, &outcome.attempt.id).await.unwrap();
    assert_eq!(found, Some(outcome.attempt));
    assert_eq!(next_attempt(store, &d).await, None);
    assert_eq!(claim(store, 31, 60).await, Vec::<String>::new());
    assert_eq!(claim(store, 10_000_000, 10_000_030).await, Vec::<String>::new());

    assert_eq!(store.unpark_endpoint(&ep.id, at(100)).await.expect("unpark"), 1);
    assert_eq!(claim(store, 99, 130).await, Vec::<String>::new());
    let claims = store.claim_due(at(100), at(130), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    let counts = (c.trigger, c.scheduled_attempts, c.total_attempts);
    assert_eq!(counts, (TriggerType::Scheduled, 1, 1));
}

// ----- endpoint health -----

/// A scheduled attempt that exhausts its delivery starts the endpoint's failing run at the
/// attempt's time; failures with a retry still scheduled do not, and later exhaustions leave the
/// start where it was. Other endpoints are untouched.
pub async fn exhausted_delivery_marks_its_endpoint_failing_from_the_first_exhaustion(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let healthy = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&healthy).await.unwrap();
    let (_, first) = send(store, &mut g, &ep, 0).await;
    let (_, second) = send(store, &mut g, &ep, 1).await;
    let (_, fine) = send(store, &mut g, &healthy, 2).await;

    record(store, g.outcome(&first, at(5), 500, Sending, Some(at(9)))).await;
    assert_eq!(failing_since(store, &ep).await, None);
    record(store, g.outcome(&first, at(10), 500, Fail, None)).await;
    assert_eq!(failing_since(store, &ep).await, Some(at(10)));
    record(store, g.outcome(&second, at(20), 0, Fail, None)).await;
    assert_eq!(failing_since(store, &ep).await, Some(at(10)));

    record(store, g.outcome(&fine, at(21), 204, Success, None)).await;
    assert_eq!(failing_since(store, &ep).await, Some(at(10)));
    assert_eq!(failing_since(store, &healthy).await, None);
}

/// Any successful attempt ends the endpoint's failing run; the next exhaustion starts a new one.
pub async fn successful_attempt_clears_its_endpoints_failing_since(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, exhausted) = send(store, &mut g, &ep, 0).await;
    let (_, retried) = send(store, &mut g, &ep, 1).await;
    let (_, later) = send(store, &mut g, &ep, 2).await;
    record(store, g.outcome(&exhausted, at(10), 503, Fail, None)).await;
    record(store, g.outcome(&retried, at(11), 503, Sending, Some(at(30)))).await;
    assert_eq!(failing_since(store, &ep).await, Some(at(10)));

    record(store, g.outcome(&retried, at(30), 200, Success, None)).await;
    assert_eq!(failing_since(store, &ep).await, None);
    record(store, g.outcome(&later, at(40), 500, Fail, None)).await;
    assert_eq!(failing_since(store, &ep).await, Some(at(40)));
}

/// One batch applies as its records would one by one, in order: a delivery recorded twice
/// counts both attempts and ends in its last state, and an endpoint's failing run follows the
/// order of its attempts (an exhaustion after a success starts a new run).
pub async fn a_batch_applies_as_its_records_would_one_by_one(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, twice) = send(store, &mut g, &ep, 0).await;
    let (_, early) = send(store, &mut g, &ep, 1).await;
    let (_, late) = send(store, &mut g, &ep, 2).await;
    record(store, g.outcome(&early, at(5), 500, Fail, None)).await;
    assert_eq!(failing_since(store, &ep).await, Some(at(5)));

    let batch = [
        g.outcome(&twice, at(10), 500, Sending, Some(at(20))),
        g.outcome(&twice, at(11), 204, Success, None),
        g.outcome(&late, at(12), 503, Fail, None),
    ];
    store.record_attempts(&batch).await.unwrap();
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!(
        (state.status, state.total_attempts, state.next_attempt_at),
        (Success, 2, None)
    );
    assert_eq!(
        failing_since(store, &ep).await,
        Some(at(12)),
        "the success ended the run begun at 5; the exhaustion after it began a new one"
    );
    let attempts = store
        .list_attempts(
            &AttemptFilter {
                app_id: ep.app_id.clone(),
                endpoint_id: Some(ep.id.clone()),
                ..AttemptFilter::default()
            },
            &everything(),
        )
        .await
        .unwrap();
    assert_eq!(attempts.items.len(), 4, "every attempt of the batch is kept");
}

/// A failed manual attempt (a resend) finishes its delivery `Fail` but says nothing about the
/// endpoint's health: it neither starts a failing run nor moves one.
pub async fn manual_failures_do_not_mark_an_endpoint_failing(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let (_, other) = send(store, &mut g, &ep, 1).await;

    record(store, manual(&mut g, &d, 10, 500)).await;
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!(state.status, Fail);
    assert_eq!(failing_since(store, &ep).await, None);

    record(store, g.outcome(&other, at(20), 500, Fail, None)).await;
    assert_eq!(failing_since(store, &ep).await, Some(at(20)));
    record(store, manual(&mut g, &d, 30, 0)).await;
    assert_eq!(failing_since(store, &ep).await, Some(at(20)));
}

/// The engine disables an endpoint in one conditional update: with a failing-run bound only
/// while the run began by then, never twice, and never one that recovered or is gone. The
/// endpoint comes back disabled with its update time moved and its other fields untouched.
pub async fn disabling_an_endpoint_is_conditional_and_happens_once(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, 0).await;

    // Healthy: a bound on the failing run leaves it alone.
    let left = store
        .disable_endpoint(&app.id, &ep.id, at(50), Some(at(40)))
        .await
        .unwrap();
    assert_eq!(left, None, "an endpoint with no failing run is not disabled by a bound");

    record(store, g.outcome(&d, at(10), 500, Fail, None)).await;
    let early = store
        .disable_endpoint(&app.id, &ep.id, at(50), Some(at(9)))
        .await
        .unwrap();
    assert_eq!(early, None, "a run begun after the bound is too young");

    let disabled = store
        .disable_endpoint(&app.id, &ep.id, at(50), Some(at(10)))
        .await
        .unwrap()
        .expect("a run begun at the bound disables");
    assert!(disabled.disabled);
    assert_eq!(disabled.updated_at, at(50));
    assert_eq!(
        Endpoint {
            disabled: false,
            updated_at: ep.updated_at,
            failing_since: None,
            ..disabled.clone()
        },
        ep,
        "nothing else changes"
    );
    assert_eq!(disabled.failing_since, Some(at(10)));
    let stored = store.get_endpoint(&app.id, &ep.id).await.unwrap().expect("endpoint");
    assert_eq!(stored, disabled);

    let again = store.disable_endpoint(&app.id, &ep.id, at(60), None).await.unwrap();
    assert_eq!(again, None, "an endpoint is disabled once");

    // Without a bound (a receiver answering 410 Gone) an enabled endpoint is disabled at once.
    let other = g.endpoint(&app.id, None, at(1));
    store.create_endpoint(&other).await.unwrap();
    let gone = store.disable_endpoint(&app.id, &other.id, at(70), None).await.unwrap();
    assert!(gone.expect("disabled").disabled);
    let missing = store
        .disable_endpoint(&app.id, "ep_missing", at(70), None)
        .await
        .unwrap();
    assert_eq!(missing, None);
}

/// A claimed delivery's message is read once its attempt is about to be made, unless the
/// delivery was attempted since the claim read it, or is gone with its application.
pub async fn claimed_message_is_read_only_while_the_claim_is_current(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let claims = store.claim_due(at(1), at(100), 10).await.unwrap();
    let claim = claimed(&claims, &d.id).clone();
    let read = store.claimed_message(&claim).await.unwrap().expect("message");
    assert_eq!(read, msg);

    // Attempted meanwhile: the count moved, so this claim's read is stale.
    record(store, g.outcome(&d, at(2), 500, Sending, Some(at(3)))).await;
    assert_eq!(store.claimed_message(&claim).await.unwrap(), None);
    let retry = store.claim_due(at(4), at(100), 10).await.unwrap();
    let current = claimed(&retry, &d.id);
    assert_eq!(current.total_attempts, claim.total_attempts + 1);
    assert_eq!(store.claimed_message(current).await.unwrap(), Some(msg));

    store.delete_application(app.env, &app.id).await.unwrap();
    assert_eq!(store.claimed_message(current).await.unwrap(), None);
}

// ----- what an attempt keeps -----

/// Request headers (a map) and response headers (in order received, repeats and casing kept)
/// read back exactly through `get_attempt` and `list_attempts`, empty ones included.
pub async fn attempt_headers_round_trip_in_order(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let (bare_msg, bare_d) = send(store, &mut g, &ep, 1).await;
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };

    let mut full = g.outcome(&d, at(10), 200, Success, None);
    full.attempt.request_headers = pairs(&[
        ("content-type", "application/json"),
        ("webhook-id", &msg.id),
        ("webhook-signature", "[redacted]"),
        ("X-Tenant", "Zürich ✓"),
    ])
    .into_iter()
    .collect();
    full.attempt.response_headers = pairs(&[
        ("x-zulu", "first though last by name"),
        ("Set-Cookie", "a=1; Path=/"),
        ("content-type", "text/plain; charset=utf-8"),
        ("Set-Cookie", "b=2"),
        ("x-empty", ""),
    ]);
    let mut bare = g.outcome(&bare_d, at(11), 0, Sending, Some(at(60)));
    bare.attempt.request_headers = BTreeMap::new();
    bare.attempt.response_headers = Vec::new();
    store.record_attempts(&[full.clone(), bare.clone()]).await.unwrap();

    let found = store.get_attempt(&msg.id, &full.attempt.id).await.unwrap();
    assert_eq!(found, Some(full.attempt.clone()));
    let found = store.get_attempt(&bare_msg.id, &bare.attempt.id).await.unwrap();
    assert_eq!(found, Some(bare.attempt.clone()));
    let of_app = AttemptFilter {
        app_id: app.id.clone(),
        ..Default::default()
    };
    let listed = store.list_attempts(&of_app, &everything()).await.unwrap();
    assert_eq!(listed.items, vec![bare.attempt, full.attempt]);
}

/// Whatever a receiver sent cannot make a batch unstorable: NUL characters in the response body
/// and in header names and values are stored as `\x00` (the rule of [`hookd_core::text`]), text
/// escaped from invalid UTF-8 and very long header values round-trip exactly, and the clean
/// attempts of the same batch are stored beside them unchanged.
pub async fn receiver_text_with_nul_invalid_utf8_and_long_headers_is_stored_safely(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let (clean_msg, clean_d) = send(store, &mut g, &ep, 1).await;

    let mut hostile = g.outcome(&d, at(10), 200, Success, None);
    hostile.attempt.response = "ok\0bad".to_string();
    // What the dispatcher makes of a body with a lone surrogate and invalid bytes.
    let escaped = hookd_core::text::escape_bytes(b"\xed\xa0\x80 \xff\xfe end");
    let long = "v".repeat(64 * 1024);
    hostile.attempt.response_headers = vec![
        ("x-nul\0name".to_string(), "a\0b".to_string()),
        ("x-escaped".to_string(), escaped.clone()),
        ("x-long".to_string(), long.clone()),
    ];
    hostile
        .attempt
        .request_headers
        .insert("x-custom".to_string(), "c\0d".to_string());
    let clean = g.outcome(&clean_d, at(11), 200, Success, None);
    store
        .record_attempts(&[hostile.clone(), clean.clone()])
        .await
        .expect("a batch with receiver NULs is stored");

    let found = store
        .get_attempt(&msg.id, &hostile.attempt.id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(found.response, "ok\\x00bad");
    assert_eq!(
        found.response_headers,
        vec![
            ("x-nul\\x00name".to_string(), "a\\x00b".to_string()),
            ("x-escaped".to_string(), escaped),
            ("x-long".to_string(), long),
        ]
    );
    assert_eq!(found.request_headers["x-custom"], "c\\x00d");
    assert_eq!(
        store
            .get_delivery(&msg.id, &ep.id)
            .await
            .unwrap()
            .expect("delivery")
            .status,
        Success,
        "the delivery's outcome was recorded with it"
    );
    let found = store.get_attempt(&clean_msg.id, &clean.attempt.id).await.unwrap();
    assert_eq!(found, Some(clean.attempt));
}

/// An outbox event built for the suite.
fn outbox_event(id: &str, app_id: &str, when: i64) -> OutboxEvent {
    OutboxEvent {
        id: id.to_string(),
        kind: "message.attempt.exhausted".to_string(),
        app_id: app_id.to_string(),
        data: serde_json::json!({"appId": app_id, "n": when}),
        created_at: at(when),
    }
}

/// Operational events ride with their attempt record into the outbox, in its transaction, and
/// only when the record is applied (a fenced-out record stores none); the outbox lists events
/// oldest first and forgets those removed once published.
pub async fn outbox_events_are_stored_with_their_record_and_removed_once_published(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, 0).await;
    let claims = store.claim_due(at(1), at(30), 10).await.unwrap();
    let token = claims.iter().find(|c| c.id == d.id).expect("claimed").lease_token;

    let mut stale = g.outcome(&d, at(5), 500, Fail, None);
    stale.lease_token = token.wrapping_add(1).max(1);
    stale.events = vec![outbox_event("opevt_stale", &app.id, 5)];
    store.record_attempts(&[stale]).await.unwrap();
    assert_eq!(
        store.outbox_events(10).await.unwrap(),
        vec![],
        "a fenced-out record stores no event"
    );

    let mut exhausted = g.outcome(&d, at(6), 500, Fail, None);
    exhausted.lease_token = token;
    exhausted.events = vec![outbox_event("opevt_1", &app.id, 6)];
    store.record_attempts(&[exhausted]).await.unwrap();
    let later = outbox_event("opevt_2", &app.id, 7);
    store.add_outbox(std::slice::from_ref(&later)).await.unwrap();

    let all = store.outbox_events(10).await.unwrap();
    assert_eq!(all, vec![outbox_event("opevt_1", &app.id, 6), later.clone()]);
    assert_eq!(store.outbox_events(1).await.unwrap().len(), 1, "at most the limit");
    store.remove_outbox(&["opevt_1".to_string()]).await.unwrap();
    assert_eq!(store.outbox_events(10).await.unwrap(), vec![later]);
}
