//! Conformance tests for [`QueueStore`]'s claims and leases: what is claimed when, fairness
//! between tenants, fencing, renewal and release, parking and deferring.

use super::*;

// ----- health -----

/// A fresh store answers the health probe.
pub async fn ping_answers_on_a_fresh_store(store: &dyn Store) {
    store.ping().await.expect("ping");
}

// ----- claims -----

/// A claim leases exactly the deliveries that are due and hold no live lease, reporting what a
/// worker needs; claiming again while the lease holds returns nothing.
pub async fn claim_due_leases_only_deliveries_that_are_due_and_unleased(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let msg = g.message(&app.id, "user.created", at(0));
    let (ep_future, ep_leased) = (g.endpoint(&app.id, None, at(0)), g.endpoint(&app.id, None, at(0)));
    store.create_endpoint(&ep_future).await.unwrap();
    store.create_endpoint(&ep_leased).await.unwrap();
    let due = g.delivery(&msg, &ep.id, at(0));
    let future = g.delivery(&msg, &ep_future.id, at(100));
    let mut leased = g.delivery(&msg, &ep_leased.id, at(0));
    leased.leased_until = Some(at(60));
    store
        .create_message(&msg, &[due.clone(), future, leased])
        .await
        .unwrap();

    let claims = store.claim_due(at(10), at(40), 100).await.unwrap();
    let expected = ClaimedDelivery {
        id: due.id.clone(),
        msg_id: msg.id.clone(),
        endpoint_id: ep.id.clone(),
        app_id: app.id.clone(),
        scheduled_attempts: 0,
        total_attempts: 0,
        trigger: TriggerType::Scheduled,
        lease_token: claims.first().map_or(0, |c| c.lease_token),
        // Whether a backend can name the row is its own affair.
        row: claims.first().and_then(|c| c.row),
    };
    assert_ne!(expected.lease_token, 0, "a claim carries a fencing token");
    assert_eq!(claims, vec![expected]);
    assert_eq!(claim(store, 20, 50).await, Vec::<String>::new());
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!((state.id, state.status), (due.id, Pending));
}

/// With more due than the limit, a claim takes the longest overdue first, and the next claim
/// takes the rest without repeating any.
pub async fn claim_due_takes_the_longest_overdue_first_up_to_the_limit(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    // Sent newest first so that insertion order cannot pass for due order.
    let (_, late) = send(store, &mut g, &ep, 20).await;
    let (_, middle) = send(store, &mut g, &ep, 10).await;
    let (_, early) = send(store, &mut g, &ep, 0).await;
    let claim_two = || async move {
        let claims = store.claim_due(at(30), at(90), 2).await.unwrap();
        sorted(claims.into_iter().map(|c| c.id))
    };

    assert_eq!(claim_two().await, sorted([early.id, middle.id]));
    assert_eq!(claim_two().await, vec![late.id]);
    assert_eq!(claim_two().await, Vec::<String>::new());
}

/// A delivery handed straight to the local dispatcher (created leased) is left alone by pollers
/// until that lease ends.
pub async fn delivery_created_with_a_lease_is_not_claimed_before_the_lease_ends(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let msg = g.message(&app.id, "user.created", at(0));
    let mut d = g.delivery(&msg, &ep.id, at(0));
    d.leased_until = Some(at(60));
    store.create_message(&msg, slice::from_ref(&d)).await.unwrap();

    assert_eq!(claim(store, 0, 30).await, Vec::<String>::new());
    assert_eq!(claim(store, 59, 90).await, Vec::<String>::new());
    assert_eq!(claim(store, 61, 90).await, vec![d.id]);
}

/// After a failed attempt with a retry scheduled, the delivery waits for its retry time (not
/// just for the lease) and then comes back with its attempt counts.
pub async fn delivery_with_a_retry_scheduled_is_not_claimed_before_it_is_due(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, 0).await;
    assert_eq!(claim(store, 0, 30).await, vec![d.id.clone()]);
    let retry_at_60 = g.outcome(&d, at(1), 500, Sending, Some(at(60)));
    store.record_attempts(&[retry_at_60]).await.unwrap();

    assert_eq!(claim(store, 45, 100).await, Vec::<String>::new());
    let claims = store.claim_due(at(61), at(100), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    let counts = (c.scheduled_attempts, c.total_attempts, c.trigger);
    assert_eq!(counts, (1, 1, TriggerType::Scheduled));
}

/// A delivery whose outcome left no next attempt is finished and never claimed again.
pub async fn finished_delivery_is_never_claimed_again(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let (failed_msg, failed) = send(store, &mut g, &ep, 0).await;
    assert_eq!(claim(store, 0, 30).await, sorted([d.id.clone(), failed.id.clone()]));
    let outcomes = [
        g.outcome(&d, at(1), 204, Success, None),
        g.outcome(&failed, at(1), 410, Fail, None),
    ];
    store.record_attempts(&outcomes).await.unwrap();

    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Success, None));
    let state = store
        .get_delivery(&failed_msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Fail, None));
    assert_eq!(claim(store, 10_000_000, 10_000_030).await, Vec::<String>::new());
}

/// Claims racing each other split the due deliveries between them: none is handed out twice,
/// and together with a final claim they hand out all of them.
pub async fn concurrent_claims_never_hand_out_the_same_delivery(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let mut expected = Vec::new();
    for i in 0..12 {
        expected.push(send(store, &mut g, &ep, i).await.1.id);
    }

    let race = || store.claim_due(at(100), at(200), 4);
    let (a, b, c, d) = tokio::join!(race(), race(), race(), race());
    let claims = [a, b, c, d].into_iter().flat_map(|claims| claims.unwrap());
    let mut seen: Vec<String> = claims.map(|c| c.id).collect();
    let handed_out = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), handed_out, "a delivery was claimed twice");
    seen.extend(claim(store, 100, 200).await);
    assert_eq!(sorted(seen), sorted(expected));
}

/// A fair claim takes at most `per_endpoint` of any endpoint (the longest overdue of each),
/// only the named room of endpoints listed in `endpoint_room`, none of an endpoint whose room is
/// 0 and none of a skipped application, so one endpoint's backlog never fills a claim while
/// another endpoint's work waits behind it.
pub async fn fair_claim_takes_each_endpoints_room_and_skips_full_endpoints_and_applications(store: &dyn Store) {
    let mut g = Gen::new();
    let (app_a, busy) = app_with_endpoint(store, &mut g).await;
    let quiet = g.endpoint(&app_a.id, None, at(0));
    store.create_endpoint(&quiet).await.unwrap();
    let (app_b, other) = app_with_endpoint(store, &mut g).await;
    // The busy endpoint's backlog is older than everything else.
    let mut busy_ids = Vec::new();
    for t in 0..20 {
        busy_ids.push(send(store, &mut g, &busy, t).await.1.id);
    }
    let quiet_ids: Vec<String> = [
        send(store, &mut g, &quiet, 30).await.1.id,
        send(store, &mut g, &quiet, 31).await.1.id,
        send(store, &mut g, &quiet, 32).await.1.id,
    ]
    .into();
    let other_id = send(store, &mut g, &other, 40).await.1.id;
    let claim = |bounds: ClaimBounds, limit: usize| async move {
        let claims = store.claim_due_within(at(100), at(200), limit, &bounds).await.unwrap();
        sorted(claims.into_iter().map(|c| c.id))
    };

    let first = claim(
        ClaimBounds {
            per_endpoint: 2,
            ..ClaimBounds::default()
        },
        10,
    )
    .await;
    assert_eq!(
        first,
        sorted([
            busy_ids[0].clone(),
            busy_ids[1].clone(),
            quiet_ids[0].clone(),
            quiet_ids[1].clone(),
            other_id.clone()
        ]),
        "two of each endpoint, the oldest first, although the busy one alone could fill it"
    );

    let second = claim(
        ClaimBounds {
            per_endpoint: 2,
            endpoint_room: [(busy.id.clone(), 0), (quiet.id.clone(), 1)].into_iter().collect(),
            skip_apps: vec![app_b.id.clone()],
            ..ClaimBounds::default()
        },
        10,
    )
    .await;
    assert_eq!(second, vec![quiet_ids[2].clone()], "busy skipped, quiet's room of one");

    let third = claim(
        ClaimBounds {
            per_endpoint: 2,
            endpoint_room: [(busy.id.clone(), 5)].into_iter().collect(),
            ..ClaimBounds::default()
        },
        10,
    )
    .await;
    assert_eq!(
        third,
        sorted(busy_ids[2..7].to_vec()),
        "a listed room above the default is honoured"
    );
}

/// A fair claim also bounds each application: at most `per_app` of one application's due
/// deliveries (the longest overdue across its endpoints), or its listed room, so one tenant's
/// many endpoints cannot fill a claim either.
pub async fn fair_claim_bounds_each_application_across_its_endpoints(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, first) = app_with_endpoint(store, &mut g).await;
    let second = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&second).await.unwrap();
    let (_, other) = app_with_endpoint(store, &mut g).await;
    let mut tenant = Vec::new();
    for t in 0..4 {
        tenant.push(send(store, &mut g, &first, 2 * t).await.1.id);
        tenant.push(send(store, &mut g, &second, 2 * t + 1).await.1.id);
    }
    let neighbour = send(store, &mut g, &other, 20).await.1.id;
    let claim = |bounds: ClaimBounds| async move {
        let claims = store.claim_due_within(at(100), at(200), 50, &bounds).await.unwrap();
        sorted(claims.into_iter().map(|c| c.id))
    };
    let got = claim(ClaimBounds {
        per_endpoint: 10,
        per_app: 3,
        ..ClaimBounds::default()
    })
    .await;
    assert_eq!(
        got,
        sorted([tenant[0].clone(), tenant[1].clone(), tenant[2].clone(), neighbour]),
        "three of the tenant's, oldest first across its endpoints; the neighbour's too"
    );
    let got = claim(ClaimBounds {
        per_endpoint: 10,
        per_app: 3,
        app_room: [(app.id.clone(), 1)].into_iter().collect(),
        ..ClaimBounds::default()
    })
    .await;
    assert_eq!(got, vec![tenant[3].clone()], "its listed room of one");
}

// ----- leases -----

/// A worker that never reports back only delays its delivery until the lease runs out.
pub async fn claimed_delivery_is_claimed_again_once_its_lease_expires(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, 0).await;

    assert_eq!(claim(store, 0, 30).await, vec![d.id.clone()]);
    assert_eq!(claim(store, 29, 60).await, Vec::<String>::new());
    assert_eq!(claim(store, 31, 60).await, vec![d.id.clone()]);
    assert_eq!(claim(store, 59, 90).await, Vec::<String>::new());
}

/// Released leases (a node shutting down) make those deliveries claimable at once, and only
/// those.
pub async fn released_leases_make_deliveries_claimable_at_once(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, given_back) = send(store, &mut g, &ep, 0).await;
    let (_, kept) = send(store, &mut g, &ep, 0).await;
    let mut claimed = claim(store, 1, 300).await;
    claimed.sort();
    let mut both = vec![given_back.id.clone(), kept.id.clone()];
    both.sort();
    assert_eq!(claimed, both);
    store
        .release_leases(&[(given_back.id.clone(), 0)], at(2))
        .await
        .expect("release");
    store
        .release_leases(&[], at(2))
        .await
        .expect("releasing nothing is fine");
    assert_eq!(
        claim(store, 2, 300).await,
        vec![given_back.id.clone()],
        "only the released one"
    );
}

/// Recording an attempt clears the lease at once, so an immediate retry is claimable before the
/// old lease would have run out.
pub async fn recording_an_attempt_releases_the_lease(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, d) = send(store, &mut g, &ep, 0).await;
    assert_eq!(claim(store, 0, 300).await, vec![d.id.clone()]);
    let retry_at_2 = g.outcome(&d, at(1), 0, Sending, Some(at(2)));
    store.record_attempts(&[retry_at_2]).await.unwrap();

    assert_eq!(claim(store, 3, 300).await, vec![d.id]);
}

/// A renewal extends only the leases still held under the given token, and only while leased:
/// a renewed delivery is not claimed until the new end, a taken-over one is not extended.
pub async fn renewing_extends_only_leases_still_held(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (_, kept) = send(store, &mut g, &ep, 0).await;
    let (_, lost) = send(store, &mut g, &ep, 0).await;
    let claims = store.claim_due(at(1), at(30), 10).await.unwrap();
    let kept_token = claimed(&claims, &kept.id).lease_token;
    let lost_token = claimed(&claims, &lost.id).lease_token;
    assert_eq!(
        store
            .renew_leases(
                &[(kept.id.clone(), kept_token), (lost.id.clone(), lost_token + 1)],
                at(90)
            )
            .await
            .unwrap(),
        1,
        "a token that is not the delivery's renews nothing"
    );
    assert_eq!(
        claim(store, 40, 70).await,
        vec![lost.id.clone()],
        "only the unrenewed lease ran out"
    );
    assert_eq!(
        store
            .renew_leases(&[(lost.id.clone(), lost_token)], at(200))
            .await
            .unwrap(),
        0,
        "taken over by the claim at 40: the old token renews nothing"
    );
    assert_eq!(
        claim(store, 80, 200).await,
        vec![lost.id],
        "the renewed lease still holds"
    );
    assert_eq!(claim(store, 91, 120).await, vec![kept.id]);
}

/// After a restart, deliveries leased by the dead process (claimed, or created leased) are
/// claimable at once; finished ones stay finished. Embedded stores only: a shared one must leave
/// other nodes' leases alone (see `store_conformance_tests!(…, embedded)`).
pub async fn release_stale_leases_makes_leased_deliveries_claimable_again(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (_, claimed_before) = send(store, &mut g, &ep, 0).await;
    assert_eq!(claim(store, 0, 1000).await, vec![claimed_before.id.clone()]);
    let msg = g.message(&app.id, "user.created", at(1));
    let mut handed_over = g.delivery(&msg, &ep.id, at(1));
    handed_over.leased_until = Some(at(1000));
    store.create_message(&msg, slice::from_ref(&handed_over)).await.unwrap();
    let (_, finished) = send(store, &mut g, &ep, 2).await;
    assert_eq!(claim(store, 2, 1000).await, vec![finished.id.clone()]);
    let success = g.outcome(&finished, at(3), 200, Success, None);
    store.record_attempts(&[success]).await.unwrap();
    assert_eq!(claim(store, 10, 1000).await, Vec::<String>::new());

    assert_eq!(store.release_stale_leases(at(0)).await.expect("release"), 2);
    let expected = sorted([claimed_before.id, handed_over.id]);
    assert_eq!(claim(store, 10, 1000).await, expected);
}

/// Fencing: after a lease ran out and another claim took the delivery, a late record (or
/// release, deferral or parking) made under the old lease changes nothing (no attempt, no state, the new lease
/// kept); the current owner's record applies.
/// Unfenced records (token 0) still apply.
pub async fn a_late_record_under_a_lease_taken_over_changes_nothing(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let first = store.claim_due(at(1), at(30), 10).await.unwrap();
    let second = store.claim_due(at(31), at(60), 10).await.unwrap();
    let (old, new) = (claimed(&first, &d.id).lease_token, claimed(&second, &d.id).lease_token);
    assert!(old != 0 && new != 0 && old != new, "each claim has its own token");

    let mut late = g.outcome(&d, at(40), 200, Success, None);
    late.lease_token = old;
    store.record_attempts(&[late.clone()]).await.unwrap();
    assert_eq!(store.get_attempt(&msg.id, &late.attempt.id).await.unwrap(), None);
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!(
        (state.status, state.next_attempt_at),
        (Pending, Some(at(60))),
        "untouched: due again when the current owner's lease ends"
    );

    // A late release, deferral or parking under the old lease leaves the new owner's lease in
    // place.
    store.release_leases(&[(d.id.clone(), old)], at(42)).await.unwrap();
    store.defer_delivery(&d.id, old, at(42)).await.unwrap();
    store.park_delivery(&d.id, old).await.unwrap();
    assert_eq!(
        claim(store, 43, 70).await,
        Vec::<String>::new(),
        "still leased by the new owner"
    );
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!(
        state.next_attempt_at,
        Some(at(60)),
        "neither deferred nor parked by the old owner"
    );

    let mut current = g.outcome(&d, at(41), 500, Sending, Some(at(100)));
    current.lease_token = new;
    store.record_attempts(&[current.clone()]).await.unwrap();
    assert!(store.get_attempt(&msg.id, &current.attempt.id).await.unwrap().is_some());
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Sending, Some(at(100))));

    let unfenced = g.outcome(&d, at(42), 200, Success, None);
    store.record_attempts(&[unfenced]).await.unwrap();
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!(state.status, Success, "token 0 applies whatever the lease");
}

/// A batch mixing a late record (its lease taken over) with current ones: the late one
/// changes nothing and the others are applied, each once, with their events; and a batch
/// whose delivery has two records under different leases keeps only the current lease's.
pub async fn a_batch_with_a_late_record_applies_the_others_once(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (late_msg, late_d) = send(store, &mut g, &ep, 0).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let first = store.claim_due(at(1), at(30), 10).await.unwrap();
    let second = store.claim_due(at(31), at(60), 10).await.unwrap();
    let old = claimed(&first, &late_d.id).lease_token;
    let current = claimed(&second, &d.id).lease_token;

    let mut late = g.outcome(&late_d, at(40), 200, Success, None);
    late.lease_token = old;
    late.events = vec![outbox_event("opevt_late", &app.id, 40)];
    let mut kept = g.outcome(&d, at(41), 500, Fail, None);
    kept.lease_token = current;
    kept.events = vec![outbox_event("opevt_kept", &app.id, 41)];
    let unfenced = g.outcome(&d, at(42), 500, Fail, None);
    store
        .record_attempts(&[late.clone(), kept.clone(), unfenced.clone()])
        .await
        .unwrap();

    assert_eq!(store.get_attempt(&late_msg.id, &late.attempt.id).await.unwrap(), None);
    let state = store
        .get_delivery(&late_msg.id, &ep.id)
        .await
        .unwrap()
        .expect("delivery");
    assert_eq!(
        (state.status, state.next_attempt_at),
        (Pending, Some(at(60))),
        "untouched"
    );
    let of_message = AttemptFilter {
        app_id: app.id.clone(),
        msg_id: Some(msg.id.clone()),
        ..Default::default()
    };
    let attempts = store.list_attempts(&of_message, &everything()).await.unwrap();
    let mut ids: Vec<String> = attempts.items.into_iter().map(|a| a.id).collect();
    ids.sort();
    assert_eq!(
        ids,
        sorted([kept.attempt.id.clone(), unfenced.attempt.id.clone()]),
        "each once"
    );
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!(state.status, Fail);
    let events: Vec<String> = store
        .outbox_events(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(events, ["opevt_kept"]);

    // Two leases for one delivery in one batch: the one it no longer holds is dropped.
    let (msg, d) = send(store, &mut g, &ep, 100).await;
    let first = store.claim_due(at(101), at(130), 10).await.unwrap();
    let second = store.claim_due(at(131), at(160), 10).await.unwrap();
    let mut stale = g.outcome(&d, at(140), 200, Success, None);
    stale.lease_token = claimed(&first, &d.id).lease_token;
    let mut fresh = g.outcome(&d, at(141), 500, Sending, Some(at(200)));
    fresh.lease_token = claimed(&second, &d.id).lease_token;
    store.record_attempts(&[stale.clone(), fresh.clone()]).await.unwrap();
    assert_eq!(store.get_attempt(&msg.id, &stale.attempt.id).await.unwrap(), None);
    assert!(store.get_attempt(&msg.id, &fresh.attempt.id).await.unwrap().is_some());
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Sending, Some(at(200))));
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
