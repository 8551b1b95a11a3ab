//! Conformance tests for what [`QueueStore`] does with an attempt's outcome: recording batches,
//! resends during an attempt, endpoint health, auto-disable and the claimed message.

use super::*;

// ----- recording -----

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

/// A resend requested while a scheduled attempt is in flight is not swallowed by that attempt's
/// record: a delivery that attempt finishes stays due at the resend's time as a manual attempt;
/// one still on its schedule keeps its retries and has the next one brought forward.
pub async fn a_resend_during_an_attempt_in_flight_survives_its_record(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let claims = store.claim_due(at(1), at(30), 10).await.unwrap();
    assert_eq!(claimed(&claims, &d.id).trigger, TriggerType::Scheduled);
    store.schedule_manual(&d, at(5)).await.unwrap();
    let mut outcome = g.outcome(&d, at(6), 200, Success, None);
    outcome.lease_token = claimed(&claims, &d.id).lease_token;
    store.record_attempts(&[outcome]).await.unwrap();

    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!(
        (state.status, state.next_attempt_at),
        (Success, Some(at(5))),
        "still due"
    );
    let again = store.claim_due(at(7), at(40), 10).await.unwrap();
    assert_eq!(
        claimed(&again, &d.id).trigger,
        TriggerType::Manual,
        "the resend is sent"
    );

    // Still on its schedule: the failed attempt's retry (at 500) is brought forward to the
    // resend (at 52) and stays a scheduled attempt, so no retry is lost.
    let (msg2, d2) = send(store, &mut g, &ep, 50).await;
    let claims = store.claim_due(at(51), at(80), 10).await.unwrap();
    store.schedule_manual(&d2, at(52)).await.unwrap();
    let mut failed = g.outcome(&d2, at(53), 500, Sending, Some(at(500)));
    failed.lease_token = claimed(&claims, &d2.id).lease_token;
    store.record_attempts(&[failed]).await.unwrap();
    let state = store.get_delivery(&msg2.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Sending, Some(at(52))));
    let next = store.claim_due(at(54), at(90), 10).await.unwrap();
    assert_eq!(claimed(&next, &d2.id).trigger, TriggerType::Scheduled);
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

/// A message fanned out to two endpoints (at 1) and another to the first of them alone (at 2).
struct FanOutAndOne {
    app: Application,
    fanned: Message,
    to_first: NewDelivery,
    to_second: NewDelivery,
    alone: Message,
    to_alone: NewDelivery,
}

async fn fan_out_and_one(store: &dyn Store, g: &mut Gen) -> FanOutAndOne {
    let (app, first) = app_with_endpoint(store, g).await;
    let second = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&second).await.unwrap();
    let fanned = g.message(&app.id, "user.created", at(1));
    let to_first = g.delivery(&fanned, &first.id, at(1));
    let to_second = g.delivery(&fanned, &second.id, at(1));
    store
        .create_message(&fanned, &[to_first.clone(), to_second.clone()])
        .await
        .unwrap();
    let (alone, to_alone) = send(store, g, &first, 2).await;
    FanOutAndOne {
        app,
        fanned,
        to_first,
        to_second,
        alone,
        to_alone,
    }
}

/// A claimed batch's messages are read at once by the same rule, one entry per delivery in
/// claim order: a fan-out's deliveries share one copy of their message, and a delivery
/// attempted since its claim gets none.
pub async fn claimed_messages_are_read_at_once_and_shared_by_a_fan_out(store: &dyn Store) {
    let mut g = Gen::new();
    let FanOutAndOne {
        app,
        fanned,
        to_first,
        to_second,
        alone,
        to_alone,
    } = fan_out_and_one(store, &mut g).await;
    let claims = store.claim_due(at(3), at(100), 10).await.unwrap();
    assert_eq!(claims.len(), 3);
    assert!(store.claimed_messages(&[]).await.unwrap().is_empty());

    // The delivery to the second endpoint is attempted (and so claimed again) meanwhile.
    record(store, g.outcome(&to_second, at(4), 500, Sending, Some(at(5)))).await;
    let read = store.claimed_messages(&claims).await.unwrap();
    assert_eq!(read.len(), claims.len());
    let by_id = |id: &str| &read[claims.iter().position(|c| c.id == id).expect("claimed")];
    let shared = by_id(&to_first.id).as_ref().expect("current claim");
    assert_eq!(**shared, fanned);
    assert!(by_id(&to_second.id).is_none(), "attempted since its claim");
    assert_eq!(by_id(&to_alone.id).as_deref(), Some(&alone));

    let retry = store.claim_due(at(6), at(100), 10).await.unwrap();
    let both: Vec<ClaimedDelivery> = vec![
        claimed(&claims, &to_first.id).clone(),
        claimed(&retry, &to_second.id).clone(),
    ];
    let read = store.claimed_messages(&both).await.unwrap();
    match (&read[0], &read[1]) {
        (Some(a), Some(b)) => assert!(Arc::ptr_eq(a, b), "one copy for the fan-out"),
        other => panic!("both claims are current: {other:?}"),
    }

    store.delete_application(app.env, &app.id).await.unwrap();
    assert_eq!(store.claimed_messages(&both).await.unwrap(), vec![None, None]);
}

/// A claim made with its messages leases what a plain claim would and gives each delivery its
/// message, in order, a fan-out's deliveries sharing one copy: the same as reading them
/// straight after the claim.
pub async fn a_claim_reads_its_messages_with_it(store: &dyn Store) {
    let mut g = Gen::new();
    let FanOutAndOne {
        fanned,
        alone,
        to_alone,
        ..
    } = fan_out_and_one(store, &mut g).await;
    let bounds = ClaimBounds {
        per_endpoint: 10,
        ..ClaimBounds::default()
    };

    let batch = store
        .claim_due_with_messages(at(3), at(100), 10, &bounds)
        .await
        .unwrap();
    assert_eq!(batch.deliveries.len(), 3);
    let messages = batch.messages.expect("read with the claim");
    assert_eq!(messages.len(), 3, "one entry per delivery");
    for (d, m) in batch.deliveries.iter().zip(&messages) {
        let m = m.as_ref().expect("every claim is current");
        assert_eq!(m.id, d.msg_id, "in claim order");
        assert_eq!(
            **m,
            if d.msg_id == fanned.id {
                fanned.clone()
            } else {
                alone.clone()
            }
        );
    }
    let fan_out: Vec<&Arc<Message>> = batch
        .deliveries
        .iter()
        .zip(&messages)
        .filter(|(d, _)| d.msg_id == fanned.id)
        .filter_map(|(_, m)| m.as_ref())
        .collect();
    assert!(Arc::ptr_eq(fan_out[0], fan_out[1]), "one copy for the fan-out");
    assert_eq!(
        store.claimed_messages(&batch.deliveries).await.unwrap(),
        messages,
        "the same as read after the claim"
    );
    assert!(batch.deliveries.iter().any(|d| d.id == to_alone.id));
    assert!(
        store
            .claim_due_within(at(4), at(100), 10, &bounds)
            .await
            .unwrap()
            .is_empty(),
        "leased as a plain claim leases"
    );

    let empty = store
        .claim_due_with_messages(at(5), at(100), 10, &bounds)
        .await
        .unwrap();
    assert!(empty.deliveries.is_empty());
    assert!(empty.messages.unwrap().is_empty());
}

/// A claim's row (where the backend names one) is a shortcut to its delivery, checked against
/// the delivery's id: a message read or a record naming another delivery's row, or a row that
/// holds none, reaches its own delivery and leaves the other alone; fencing still applies.
pub async fn a_claims_row_is_checked_against_its_delivery(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (first_msg, first) = send(store, &mut g, &ep, 0).await;
    let (second_msg, second) = send(store, &mut g, &ep, 1).await;
    let claims = store.claim_due(at(2), at(100), 10).await.unwrap();
    let (one, two) = (
        claimed(&claims, &first.id).clone(),
        claimed(&claims, &second.id).clone(),
    );
    let state_of = |msg: &Message| {
        let (msg_id, ep_id) = (msg.id.clone(), ep.id.clone());
        async move { store.get_delivery(&msg_id, &ep_id).await.unwrap().expect("delivery") }
    };
    let messages =
        |read: Vec<Option<Arc<Message>>>| read.into_iter().map(|m| m.as_deref().cloned()).collect::<Vec<_>>();
    let both = vec![Some(first_msg.clone()), Some(second_msg.clone())];
    let read = store.claimed_messages(&[one.clone(), two.clone()]).await.unwrap();
    assert_eq!(messages(read), both);

    // Each claim names the other's row, or a row no delivery holds.
    let crossed = ClaimedDelivery {
        row: two.row.or(Some(1)),
        ..one.clone()
    };
    let nowhere = ClaimedDelivery {
        row: Some(i64::MAX),
        ..two.clone()
    };
    let read = store
        .claimed_messages(&[crossed.clone(), nowhere.clone()])
        .await
        .unwrap();
    assert_eq!(messages(read), both, "each read its own message");

    let mut done = g.outcome(&first, at(3), 200, Success, None);
    (done.lease_token, done.row) = (crossed.lease_token, crossed.row);
    store.record_attempts(&[done.clone()]).await.unwrap();
    let state = state_of(&first_msg).await;
    assert_eq!((state.status, state.total_attempts), (Success, 1));
    let untouched = state_of(&second_msg).await;
    assert_eq!(
        (untouched.status, untouched.total_attempts, untouched.next_attempt_at),
        (Pending, 0, Some(at(100))),
        "the delivery whose row was named is left as its own claim left it"
    );

    let mut retry = g.outcome(&second, at(4), 500, Sending, Some(at(50)));
    (retry.lease_token, retry.row) = (nowhere.lease_token, nowhere.row);
    store.record_attempts(&[retry]).await.unwrap();
    let state = state_of(&second_msg).await;
    assert_eq!(
        (state.status, state.total_attempts, state.next_attempt_at),
        (Sending, 1, Some(at(50)))
    );

    // At its own row, a record under a lease that was taken over is still dropped.
    let again = store.claim_due(at(51), at(100), 10).await.unwrap();
    let current = claimed(&again, &second.id).clone();
    let mut late = g.outcome(&second, at(52), 200, Success, None);
    (late.lease_token, late.row) = (two.lease_token, current.row);
    store.record_attempts(&[late.clone()]).await.unwrap();
    assert_eq!(store.get_attempt(&second_msg.id, &late.attempt.id).await.unwrap(), None);
    let mut last = g.outcome(&second, at(53), 200, Success, None);
    (last.lease_token, last.row) = (current.lease_token, current.row);
    store.record_attempts(&[last]).await.unwrap();
    let state = state_of(&second_msg).await;
    assert_eq!((state.status, state.total_attempts), (Success, 2));
}

/// An attempt that finishes after its delivery is gone (its application deleted while the
/// request was in flight) is dropped without failing its batch: the other records in the batch
/// are stored, and nothing is stored for the gone one.
pub async fn an_attempt_of_a_deleted_delivery_is_dropped_and_its_batch_kept(store: &dyn Store) {
    let mut g = Gen::new();
    let (doomed_app, doomed_ep) = app_with_endpoint(store, &mut g).await;
    let (kept_app, kept_ep) = app_with_endpoint(store, &mut g).await;
    let (doomed_msg, doomed) = send(store, &mut g, &doomed_ep, 0).await;
    let (kept_msg, kept) = send(store, &mut g, &kept_ep, 0).await;
    store.claim_due(at(1), at(100), 10).await.unwrap();
    store.delete_application(doomed_app.env, &doomed_app.id).await.unwrap();

    let late = g.outcome(&doomed, at(2), 200, Success, None);
    let fine = g.outcome(&kept, at(2), 200, Success, None);
    store
        .record_attempts(&[late.clone(), fine.clone()])
        .await
        .expect("record");

    assert_eq!(store.get_attempt(&doomed_msg.id, &late.attempt.id).await.unwrap(), None);
    let stored = store
        .get_attempt(&kept_msg.id, &fine.attempt.id)
        .await
        .unwrap()
        .expect("attempt");
    assert_eq!(
        (stored.status, stored.endpoint_id.as_str()),
        (Success, kept_ep.id.as_str())
    );
    let of_kept_app = AttemptFilter {
        app_id: kept_app.id.clone(),
        ..Default::default()
    };
    let listed = store.list_attempts(&of_kept_app, &everything()).await.unwrap();
    assert_eq!(
        listed.items.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        [fine.attempt.id.as_str()]
    );
    let state = store
        .get_delivery(&kept_msg.id, &kept_ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!(state.status, Success);
}

// ----- endpoint health and auto-disable -----

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
