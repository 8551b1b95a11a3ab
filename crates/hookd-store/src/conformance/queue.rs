//! Conformance tests for messages, the delivery queue, the delivery listings and cascades.

use super::*;

// ----- messages -----

/// A message reads back equal by id and by event id, only through its application.
pub async fn message_is_found_by_id_and_by_event_id(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();
    let mut msg = g.message(&app.id, "user.created", at(5));
    msg.event_id = Some("evt-1".to_string());
    msg.channels = Some(strings(&["eu", "vip"]));
    msg.payload = Some(r#"{"id": 1,  "name":"Ada"}"#.to_string());
    let d = g.delivery(&msg, &ep.id, at(5));
    store.create_message(&msg, &[d]).await.expect("create message");

    let get = |app_id: &str, key: &str| {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        async move { store.get_message(&app_id, &key).await.unwrap() }
    };
    assert_eq!(get(&app.id, &msg.id).await, Some(msg.clone()));
    assert_eq!(get(&app.id, "evt-1").await, Some(msg.clone()));
    assert_eq!(get(&other_app.id, &msg.id).await, None);
    assert_eq!(get(&other_app.id, "evt-1").await, None);
    assert_eq!(get(&app.id, "evt-2").await, None);
}

/// A second message with a taken event id is `Conflict`, and none of its deliveries are stored;
/// another application may use the same event id.
pub async fn duplicate_event_id_is_a_conflict_and_inserts_none_of_its_deliveries(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let ep2 = g.endpoint(&app.id, None, at(1));
    store.create_endpoint(&ep2).await.unwrap();
    let mut original = g.message(&app.id, "user.created", at(2));
    original.event_id = Some("evt-1".to_string());
    let delivered = g.delivery(&original, &ep.id, at(2));
    store
        .create_message(&original, slice::from_ref(&delivered))
        .await
        .unwrap();

    let mut retry = g.message(&app.id, "user.created", at(3));
    retry.event_id = Some("evt-1".to_string());
    let rejected = [g.delivery(&retry, &ep.id, at(3)), g.delivery(&retry, &ep2.id, at(3))];
    let result = store.create_message(&retry, &rejected).await;
    assert_conflict(result, "same event id, same application");

    assert_eq!(store.get_message(&app.id, &retry.id).await.unwrap(), None);
    assert_eq!(store.get_message(&app.id, "evt-1").await.unwrap(), Some(original));
    assert_eq!(store.get_delivery(&retry.id, &ep.id).await.unwrap(), None);
    assert_eq!(store.get_delivery(&retry.id, &ep2.id).await.unwrap(), None);
    let listed = store.list_message_deliveries(&retry.id, &first(50, ASC)).await.unwrap();
    assert_eq!(shape(&listed), (vec![], false));
    assert_eq!(claim(store, 10, 40).await, vec![delivered.id]);

    let other_app = g.app(Live, None, at(4));
    store.create_application(&other_app).await.unwrap();
    let mut elsewhere = g.message(&other_app.id, "user.created", at(5));
    elsewhere.event_id = Some("evt-1".to_string());
    store
        .create_message(&elsewhere, &[])
        .await
        .expect("same event id in another app");
    let found = store.get_message(&other_app.id, "evt-1").await.unwrap();
    assert_eq!(found, Some(elsewhere));
}

/// Messages list newest first by default, in pages, filtered by event type, channel and a
/// strict creation-time window, and never include another application's messages.
pub async fn messages_list_newest_first_and_filter_by_type_channel_and_time(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(0));
    store.create_application(&other_app).await.unwrap();
    let specs: [(&str, Option<&[&str]>); 4] = [
        ("user.created", Some(&["eu"])),
        ("user.deleted", Some(&["us"])),
        ("user.created", Some(&["us", "eu"])),
        ("invoice.paid", None),
    ];
    let mut m = Vec::new();
    for (i, (event_type, channels)) in (0..).zip(specs) {
        let mut msg = g.message(&app.id, event_type, at(10 * i));
        msg.channels = channels.map(strings);
        store.create_message(&msg, &[]).await.unwrap();
        m.push(msg);
    }
    let foreign = g.message(&other_app.id, "user.created", at(15));
    store.create_message(&foreign, &[]).await.unwrap();
    let list = |filter: MessageFilter, page: PageRequest| {
        let app_id = app.id.clone();
        async move { store.list_messages(&app_id, &filter, &page).await.unwrap() }
    };
    let find = |filter: MessageFilter| async move { keys(&list(filter, everything()).await) };

    let all = list(MessageFilter::default(), everything()).await;
    assert_eq!((all.items, all.has_more), (m.iter().rev().cloned().collect(), false));
    let page = list(MessageFilter::default(), first(50, ASC)).await;
    assert_eq!(shape(&page), (pick(&m, &[0, 1, 2, 3]), false));
    let page = list(MessageFilter::default(), first(3, DESC)).await;
    assert_eq!(shape(&page), (pick(&m, &[3, 2, 1]), true));
    let page = list(MessageFilter::default(), after(&m[1].id, 3, DESC)).await;
    assert_eq!(shape(&page), (pick(&m, &[0]), false));

    assert_eq!(find(types(&["user.created"])).await, pick(&m, &[2, 0]));
    let two_types = types(&["user.created", "invoice.paid"]);
    assert_eq!(find(two_types).await, pick(&m, &[3, 2, 0]));
    assert_eq!(find(on_channel("eu")).await, pick(&m, &[2, 0]));
    assert_eq!(find(on_channel("us")).await, pick(&m, &[2, 1]));
    assert_eq!(find(on_channel("apac")).await, pick(&m, &[]));
    assert_eq!(find(created(None, Some(20))).await, pick(&m, &[1, 0]));
    assert_eq!(find(created(Some(10), None)).await, pick(&m, &[3, 2]));
    assert_eq!(find(created(Some(0), Some(30))).await, pick(&m, &[2, 1]));
    let both = MessageFilter {
        channel: Some("us".to_string()),
        ..types(&["user.created"])
    };
    assert_eq!(find(both).await, pick(&m, &[2]));
}

// ----- the queue -----

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
    };
    assert_ne!(expected.lease_token, 0, "a claim carries a fencing token");
    assert_eq!(claims, vec![expected]);
    assert_eq!(claim(store, 20, 50).await, Vec::<String>::new());
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!((state.id, state.status), (due.id, Pending));
}

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

/// Payloads whose retention ended are removed in batches; messages stay; expunges remove one
/// payload or one attempt response on demand.
pub async fn payloads_expire_in_batches_and_expunges_remove_content(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let mut ids = Vec::new();
    for t in 0..3 {
        let mut msg = g.message(&ep.app_id, "user.created", at(t));
        msg.expires_at = at(100 + t);
        store.create_message(&msg, &[]).await.unwrap();
        ids.push(msg.id);
    }
    assert_eq!(
        store.expire_payloads(at(99), 10).await.unwrap(),
        0,
        "nothing has expired yet"
    );
    assert_eq!(
        store.expire_payloads(at(101), 1).await.unwrap(),
        1,
        "at most the batch size"
    );
    assert_eq!(store.expire_payloads(at(101), 10).await.unwrap(), 1);
    assert_eq!(
        store.expire_payloads(at(101), 10).await.unwrap(),
        0,
        "expired payloads are not counted twice"
    );
    let app_id = ep.app_id.clone();
    let payload = |id: String| {
        let app_id = app_id.clone();
        async move {
            store
                .get_message(&app_id, &id)
                .await
                .unwrap()
                .expect("message kept")
                .payload
        }
    };
    assert_eq!(payload(ids[0].clone()).await, None);
    assert_eq!(payload(ids[1].clone()).await, None);
    assert!(payload(ids[2].clone()).await.is_some());

    store
        .expunge_message_content(&ep.app_id, &ids[2])
        .await
        .expect("expunge");
    assert_eq!(payload(ids[2].clone()).await, None);
    assert!(matches!(
        store.expunge_message_content(&ep.app_id, "msg_unknown").await,
        Err(StoreError::NotFound)
    ));

    let (_, d) = send(store, &mut g, &ep, 10).await;
    let outcome = g.outcome(&d, at(11), 500, Fail, None);
    store.record_attempts(slice::from_ref(&outcome)).await.unwrap();
    store
        .expunge_attempt_content(&d.msg_id, &outcome.attempt.id)
        .await
        .expect("expunge attempt");
    let attempt = store
        .get_attempt(&d.msg_id, &outcome.attempt.id)
        .await
        .unwrap()
        .expect("attempt kept");
    assert_eq!(attempt.response, "EXPUNGED");
    assert!(matches!(
        store.expunge_attempt_content(&d.msg_id, "atmpt_unknown").await,
        Err(StoreError::NotFound)
    ));
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

/// A recorded attempt reads back by id under its message and lists by message and by endpoint;
/// the delivery takes the state the outcome names.
pub async fn recorded_attempt_is_readable_and_listed_by_message_and_endpoint(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let (other_msg, _) = send(store, &mut g, &ep, 1).await;
    let other_ep = g.endpoint(&app.id, None, at(1));
    store.create_endpoint(&other_ep).await.unwrap();

    assert_eq!(claim(store, 0, 30).await, vec![d.id.clone()]);
    let outcome = g.outcome(&d, at(1), 503, Sending, Some(at(60)));
    store.record_attempts(slice::from_ref(&outcome)).await.expect("record");
    let attempt = outcome.attempt;

    let found = store.get_attempt(&msg.id, &attempt.id).await.unwrap();
    assert_eq!(found, Some(attempt.clone()));
    assert_eq!(store.get_attempt(&other_msg.id, &attempt.id).await.unwrap(), None);
    let list = |msg_id: Option<&str>, endpoint_id: Option<&str>| {
        let filter = AttemptFilter {
            app_id: app.id.clone(),
            msg_id: msg_id.map(str::to_string),
            endpoint_id: endpoint_id.map(str::to_string),
            ..Default::default()
        };
        async move { store.list_attempts(&filter, &everything()).await.unwrap() }
    };
    let by_msg = list(Some(&msg.id), None).await;
    assert_eq!((by_msg.items, by_msg.has_more), (vec![attempt.clone()], false));
    assert_eq!(list(None, Some(&ep.id)).await.items, vec![attempt.clone()]);
    assert_eq!(list(Some(&msg.id), Some(&ep.id)).await.items, vec![attempt]);
    assert_eq!(list(Some(&other_msg.id), None).await.items, Vec::<Attempt>::new());
    assert_eq!(list(None, Some(&other_ep.id)).await.items, Vec::<Attempt>::new());

    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    let expected = (d.id, Sending, Some(at(60)));
    assert_eq!((state.id, state.status, state.next_attempt_at), expected);
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

/// Resending a finished delivery makes it due now as one manual attempt, after which it stays
/// finished. The existing delivery's id is returned, not the one proposed.
pub async fn manual_schedule_makes_a_finished_delivery_due_as_a_manual_attempt(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 0).await;
    let gave_up = g.outcome(&d, at(1), 500, Fail, None);
    store.record_attempts(&[gave_up]).await.unwrap();
    assert_eq!(claim(store, 50, 80).await, Vec::<String>::new());

    let mut proposal = d.clone();
    (proposal.id, proposal.due_at) = (g.id(IdKind::Delivery, at(50)), at(50));
    let id = store.schedule_manual(&proposal, at(50)).await.expect("schedule");
    assert_eq!(id, d.id);
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!((&state.id, state.next_attempt_at), (&d.id, Some(at(50))));

    let claims = store.claim_due(at(50), at(80), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    assert_eq!(
        (c.trigger, c.scheduled_attempts, c.total_attempts),
        (TriggerType::Manual, 1, 1)
    );

    let mut manual = g.outcome(&d, at(51), 500, Fail, None);
    (manual.attempt.trigger_type, manual.attempt.attempt_number) = (TriggerType::Manual, 2);
    store.record_attempts(slice::from_ref(&manual)).await.unwrap();
    let found = store.get_attempt(&msg.id, &manual.attempt.id).await.unwrap();
    assert_eq!(found, Some(manual.attempt));
    let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!((state.status, state.next_attempt_at), (Fail, None));
    assert_eq!(claim(store, 10_000, 10_030).await, Vec::<String>::new());
}

/// Sending a message to an endpoint it never went to creates the delivery, pending and due now
/// as a manual attempt.
pub async fn manual_schedule_creates_the_delivery_when_the_endpoint_never_had_one(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, _) = send(store, &mut g, &ep, 0).await;
    let newcomer = g.endpoint(&app.id, None, at(5));
    store.create_endpoint(&newcomer).await.unwrap();
    assert_eq!(store.get_delivery(&msg.id, &newcomer.id).await.unwrap(), None);

    let d = g.delivery(&msg, &newcomer.id, at(50));
    assert_eq!(store.schedule_manual(&d, at(50)).await.expect("schedule"), d.id);
    let state = store
        .get_delivery(&msg.id, &newcomer.id)
        .await
        .unwrap()
        .expect("created");
    let expected = (&d.id, &msg.id, Pending, Some(at(50)));
    assert_eq!(
        (&state.id, &state.msg_id, state.status, state.next_attempt_at),
        expected
    );
    assert!(!claim(store, 49, 80).await.contains(&d.id), "claimed before it was due");

    let claims = store.claim_due(at(50), at(80), 10).await.unwrap();
    let c = claimed(&claims, &d.id);
    let expected = (&msg.id, &newcomer.id, &app.id, TriggerType::Manual, 0, 0);
    let got = (
        &c.msg_id,
        &c.endpoint_id,
        &c.app_id,
        c.trigger,
        c.scheduled_attempts,
        c.total_attempts,
    );
    assert_eq!(got, expected);
}

/// Resending a delivery still waiting on its schedule makes it due now.
pub async fn manual_schedule_makes_a_delivery_on_its_schedule_due_now(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let msg = g.message(&app.id, "user.created", at(0));
    let d = g.delivery(&msg, &ep.id, at(1000));
    store.create_message(&msg, slice::from_ref(&d)).await.unwrap();
    assert_eq!(claim(store, 10, 40).await, Vec::<String>::new());

    assert_eq!(store.schedule_manual(&d, at(10)).await.unwrap(), d.id);
    assert_eq!(claim(store, 10, 40).await, vec![d.id]);
}

/// A message's deliveries list as keyset pages by endpoint id, with their state.
pub async fn message_deliveries_page_by_endpoint_id(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, e0) = app_with_endpoint(store, &mut g).await;
    let (e1, e2) = (g.endpoint(&app.id, None, at(1)), g.endpoint(&app.id, None, at(2)));
    store.create_endpoint(&e1).await.unwrap();
    store.create_endpoint(&e2).await.unwrap();
    let eps = [e0, e1, e2];
    let msg = g.message(&app.id, "user.created", at(10));
    let ds: Vec<NewDelivery> = [2, 0, 1].map(|i| g.delivery(&msg, &eps[i].id, at(10))).into();
    store.create_message(&msg, &ds).await.unwrap();
    send(store, &mut g, &eps[0], 11).await;
    let list = |page| {
        let msg_id = msg.id.clone();
        async move { store.list_message_deliveries(&msg_id, &page).await.unwrap() }
    };

    assert_eq!(shape(&list(first(2, ASC)).await), (pick(&eps, &[0, 1]), true));
    assert_eq!(shape(&list(after(&eps[1].id, 2, ASC)).await), (pick(&eps, &[2]), false));
    let newest = list(first(50, DESC)).await;
    assert_eq!(shape(&newest), (pick(&eps, &[2, 1, 0]), false));

    let expected: Vec<_> = [0, 2, 1].map(|i| (ds[i].id.clone(), Pending, Some(at(10)))).into();
    let states = newest.items.into_iter().map(|s| (s.id, s.status, s.next_attempt_at));
    assert_eq!(states.collect::<Vec<_>>(), expected);
}

/// An endpoint's deliveries list with their messages, newest message first, in pages, filtered
/// by delivery status and by message filters.
pub async fn endpoint_deliveries_list_newest_message_first_and_filter_by_status(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_ep = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&other_ep).await.unwrap();
    let (m0, d0) = send(store, &mut g, &ep, 0).await;
    let m1 = g.message(&app.id, "invoice.paid", at(10));
    let d1 = g.delivery(&m1, &ep.id, at(10));
    let to_other = g.delivery(&m1, &other_ep.id, at(10));
    store.create_message(&m1, &[d1.clone(), to_other]).await.unwrap();
    let (m2, d2) = send(store, &mut g, &ep, 20).await;
    send(store, &mut g, &other_ep, 30).await;
    let outcomes = [
        g.outcome(&d0, at(1), 200, Success, None),
        g.outcome(&d1, at(11), 400, Fail, None),
    ];
    store.record_attempts(&outcomes).await.unwrap();
    let m = [m0, m1, m2];
    let list = |filter: MessageFilter, page: PageRequest| {
        let ep_id = ep.id.clone();
        async move { store.list_endpoint_deliveries(&ep_id, &filter, &page).await.unwrap() }
    };
    let find = |filter: MessageFilter| async move { keys(&list(filter, everything()).await) };

    let all = list(MessageFilter::default(), everything()).await;
    let messages: Vec<Message> = all.items.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(messages, vec![m[2].clone(), m[1].clone(), m[0].clone()]);
    let states = all.items.into_iter();
    let states: Vec<_> = states.map(|(d, _)| (d.id, d.endpoint_id, d.status)).collect();
    let expected = [(d2, Pending), (d1, Fail), (d0, Success)].map(|(d, s)| (d.id, ep.id.clone(), s));
    assert_eq!(states, expected);

    let page = list(MessageFilter::default(), first(2, DESC)).await;
    assert_eq!(shape(&page), (pick(&m, &[2, 1]), true));
    let page = list(MessageFilter::default(), after(&m[1].id, 2, DESC)).await;
    assert_eq!(shape(&page), (pick(&m, &[0]), false));
    let page = list(MessageFilter::default(), first(50, ASC)).await;
    assert_eq!(shape(&page), (pick(&m, &[0, 1, 2]), false));

    assert_eq!(find(in_status(Success)).await, pick(&m, &[0]));
    assert_eq!(find(in_status(Fail)).await, pick(&m, &[1]));
    assert_eq!(find(in_status(Pending)).await, pick(&m, &[2]));
    assert_eq!(find(in_status(Sending)).await, pick(&m, &[]));
    assert_eq!(find(types(&["user.created"])).await, pick(&m, &[2, 0]));
    assert_eq!(find(created(Some(0), None)).await, pick(&m, &[2, 1]));
}

/// Attempts list newest first per application and filter by attempt status and by status code
/// class (0 meaning no response); several outcomes record in one call.
pub async fn attempts_filter_by_status_and_status_code_class(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(0));
    store.create_application(&other_app).await.unwrap();
    let other_ep = g.endpoint(&other_app.id, None, at(0));
    store.create_endpoint(&other_ep).await.unwrap();
    let (_, foreign) = send(store, &mut g, &other_ep, 0).await;
    let mut sent = Vec::new();
    for i in 0..4 {
        sent.push(send(store, &mut g, &ep, i).await);
    }
    let d = |i: usize| &sent[i].1;
    let outcomes = [
        g.outcome(d(0), at(100), 200, Success, None),
        g.outcome(d(1), at(101), 500, Sending, Some(at(1000))),
        g.outcome(d(2), at(102), 0, Sending, Some(at(1000))),
        g.outcome(d(3), at(103), 404, Fail, None),
    ];
    store
        .record_attempts(&outcomes)
        .await
        .expect("record four outcomes at once");
    let elsewhere = g.outcome(&foreign, at(104), 200, Success, None);
    store.record_attempts(&[elsewhere]).await.unwrap();
    let a: Vec<Attempt> = outcomes.iter().map(|o| o.attempt.clone()).collect();
    let of_app = AttemptFilter {
        app_id: app.id.clone(),
        ..Default::default()
    };
    let list =
        |filter: AttemptFilter, page: PageRequest| async move { store.list_attempts(&filter, &page).await.unwrap() };
    let find = |filter: AttemptFilter| async move { keys(&list(filter, everything()).await) };

    let all = list(of_app.clone(), everything()).await;
    assert_eq!(all.items, a.iter().rev().cloned().collect::<Vec<_>>());
    let page = list(of_app.clone(), first(3, DESC)).await;
    assert_eq!(shape(&page), (pick(&a, &[3, 2, 1]), true));
    let page = list(of_app.clone(), after(&a[1].id, 3, DESC)).await;
    assert_eq!(shape(&page), (pick(&a, &[0]), false));

    let status = |s| AttemptFilter {
        status: Some(s),
        ..of_app.clone()
    };
    assert_eq!(find(status(Success)).await, pick(&a, &[0]));
    assert_eq!(find(status(Fail)).await, pick(&a, &[3, 2, 1]));
    let class = |c| AttemptFilter {
        status_code_class: Some(c),
        ..of_app.clone()
    };
    assert_eq!(find(class(200)).await, pick(&a, &[0]));
    assert_eq!(find(class(300)).await, pick(&a, &[]));
    assert_eq!(find(class(400)).await, pick(&a, &[3]));
    assert_eq!(find(class(500)).await, pick(&a, &[1]));
    assert_eq!(find(class(0)).await, pick(&a, &[2]));
    let failed_5xx = AttemptFilter {
        status: Some(Fail),
        ..class(500)
    };
    assert_eq!(find(failed_5xx).await, pick(&a, &[1]));
    let foreign_ep = AttemptFilter {
        endpoint_id: Some(other_ep.id.clone()),
        ..of_app
    };
    assert_eq!(find(foreign_ep).await, pick(&a, &[]));

    let mut states = Vec::new();
    for (msg, _) in &sent {
        let state = store.get_delivery(&msg.id, &ep.id).await.unwrap().expect("delivery");
        states.push((state.status, state.next_attempt_at));
    }
    let retry = Some(at(1000));
    assert_eq!(
        states,
        [(Success, None), (Sending, retry), (Sending, retry), (Fail, None)]
    );
}

/// Deleting an application takes its endpoints, messages, deliveries and attempts with it and
/// leaves other applications untouched.
pub async fn deleting_an_application_removes_its_endpoints_messages_deliveries_and_attempts(store: &dyn Store) {
    let mut g = Gen::new();
    let (doomed, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 1).await;
    let (_, pending) = send(store, &mut g, &ep, 2).await;
    let outcome = g.outcome(&d, at(3), 200, Success, None);
    store.record_attempts(slice::from_ref(&outcome)).await.unwrap();
    let kept = g.app(Live, None, at(4));
    store.create_application(&kept).await.unwrap();
    let kept_ep = g.endpoint(&kept.id, None, at(4));
    store.create_endpoint(&kept_ep).await.unwrap();
    let (kept_msg, kept_d) = send(store, &mut g, &kept_ep, 5).await;

    store.delete_application(Live, &doomed.id).await.expect("delete");

    assert_eq!(store.get_application(Live, &doomed.id).await.unwrap(), None);
    assert_eq!(store.get_endpoint(&doomed.id, &ep.id).await.unwrap(), None);
    assert_eq!(store.all_endpoints(&doomed.id).await.unwrap(), Vec::<Endpoint>::new());
    assert_eq!(store.get_message(&doomed.id, &msg.id).await.unwrap(), None);
    let unfiltered = MessageFilter::default();
    let msgs = store
        .list_messages(&doomed.id, &unfiltered, &everything())
        .await
        .unwrap();
    assert_eq!(shape(&msgs), (vec![], false));
    assert_eq!(store.get_delivery(&msg.id, &ep.id).await.unwrap(), None);
    let deliveries = store.list_endpoint_deliveries(&ep.id, &unfiltered, &everything()).await;
    assert_eq!(shape(&deliveries.unwrap()), (vec![], false));
    assert_eq!(store.get_attempt(&msg.id, &outcome.attempt.id).await.unwrap(), None);
    let of_doomed = AttemptFilter {
        app_id: doomed.id.clone(),
        ..Default::default()
    };
    let attempts = store.list_attempts(&of_doomed, &everything()).await.unwrap();
    assert_eq!(shape(&attempts), (vec![], false));

    let claims = claim(store, 100, 200).await;
    assert!(
        !claims.contains(&pending.id),
        "a deleted application's delivery was claimed"
    );
    assert_eq!(claims, vec![kept_d.id]);
    let found = store.get_message(&kept.id, &kept_msg.id).await.unwrap();
    assert_eq!(found, Some(kept_msg));
    assert_eq!(store.all_endpoints(&kept.id).await.unwrap(), vec![kept_ep]);
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
            endpoint_room: HashMap::from([(busy.id.clone(), 0), (quiet.id.clone(), 1)]),
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
            endpoint_room: HashMap::from([(busy.id.clone(), 5)]),
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

/// Retention never starves delivery: a message whose retention ended keeps its payload while a
/// delivery still waits for an attempt (due, on its retry schedule, or parked), and loses it
/// once that delivery is finished.
pub async fn a_payload_outlives_its_retention_while_a_delivery_still_needs_it(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let mut msg = g.message(&ep.app_id, "user.created", at(0));
    msg.expires_at = at(10);
    let d = g.delivery(&msg, &ep.id, at(0));
    store.create_message(&msg, std::slice::from_ref(&d)).await.unwrap();
    let mut parked_msg = g.message(&ep.app_id, "user.created", at(1));
    parked_msg.expires_at = at(10);
    let parked = g.delivery(&parked_msg, &ep.id, at(1));
    store
        .create_message(&parked_msg, std::slice::from_ref(&parked))
        .await
        .unwrap();
    store.park_delivery(&parked.id, 0).await.unwrap();

    // A failed first attempt: the delivery waits for its retry.
    store
        .record_attempts(&[g.outcome(&d, at(5), 500, Sending, Some(at(500)))])
        .await
        .unwrap();
    assert_eq!(
        store.expire_payloads(at(100), 10).await.unwrap(),
        0,
        "both still needed"
    );
    let app_id = ep.app_id.clone();
    let payload = |id: String| {
        let app_id = app_id.clone();
        async move { store.get_message(&app_id, &id).await.unwrap().expect("message").payload }
    };
    assert!(payload(msg.id.clone()).await.is_some());
    assert!(payload(parked_msg.id.clone()).await.is_some());

    store
        .record_attempts(&[g.outcome(&d, at(500), 200, Success, None)])
        .await
        .unwrap();
    assert_eq!(
        store.expire_payloads(at(600), 10).await.unwrap(),
        1,
        "finished: it goes"
    );
    assert!(payload(msg.id).await.is_none());
    assert!(payload(parked_msg.id).await.is_some(), "the parked one still waits");
}

/// Expired idempotency keys are deleted in batches; live ones stay.
pub async fn expired_idempotency_keys_are_deleted_in_batches(store: &dyn Store) {
    for (key, expires) in [("a", 10), ("b", 20), ("c", 1000)] {
        let begun = store.idempotency_begin(key, at(0), at(-60), at(expires)).await.unwrap();
        assert_eq!(begun, IdempotencyState::Started);
        store.idempotency_complete(key, at(0), 202, b"{}").await.unwrap();
    }
    assert_eq!(
        store.delete_expired_idempotency(at(30), 1).await.unwrap(),
        1,
        "at most the limit"
    );
    assert_eq!(store.delete_expired_idempotency(at(30), 10).await.unwrap(), 1);
    assert_eq!(store.delete_expired_idempotency(at(30), 10).await.unwrap(), 0);
    assert!(matches!(
        store.idempotency_begin("c", at(30), at(-30), at(2000)).await.unwrap(),
        IdempotencyState::Completed { .. }
    ));
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
        app_room: HashMap::from([(app.id.clone(), 1)]),
        ..ClaimBounds::default()
    })
    .await;
    assert_eq!(got, vec![tenant[3].clone()], "its listed room of one");
}
