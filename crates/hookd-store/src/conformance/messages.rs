//! Conformance tests for [`MessageStore`]: messages and their deliveries, manual attempts, and the
//! message, delivery and attempt listings with what an attempt keeps.

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

/// Publishes made together succeed or fail each on its own (a backend may commit them as one
/// group): among 120 concurrent messages, two share an event id and exactly one of those two is
/// a `Conflict`; every other message and its delivery is stored. A publish whose request deadline closed its
/// write gate before it was written stores nothing.
pub async fn concurrent_publishes_succeed_or_fail_each_on_its_own(store: &dyn Store) {
    use crate::gate::WriteGate;
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let mut batch = Vec::new();
    for i in 0..120 {
        let mut m = g.message(&app.id, "user.created", at(10 + i));
        // Message 119 repeats message 40's event id.
        m.event_id = Some(format!("evt-{}", if i == 119 { 40 } else { i }));
        m.channels = (i % 3 == 0).then(|| strings(&["eu"]));
        let d = g.delivery(&m, &ep.id, at(10 + i));
        batch.push((m, d));
    }
    let results =
        futures_util::future::join_all(batch.iter().map(|(m, d)| store.create_message(m, slice::from_ref(d)))).await;
    let mut conflicts = 0;
    for (i, ((m, d), result)) in batch.iter().zip(results).enumerate() {
        if (i == 40 || i == 119) && result.is_err() {
            conflicts += 1;
            assert_conflict(result, "event id evt-40 twice");
            assert_eq!(store.get_message(&app.id, &m.id).await.unwrap(), None);
            assert_eq!(store.get_delivery(&m.id, &ep.id).await.unwrap(), None);
        } else {
            result.unwrap_or_else(|e| panic!("message {i}: {e:?}"));
            assert_eq!(store.get_message(&app.id, &m.id).await.unwrap().as_ref(), Some(m));
            let stored = store
                .get_delivery(&m.id, &ep.id)
                .await
                .unwrap()
                .expect("delivery stored");
            assert_eq!(stored.id, d.id);
        }
    }
    assert_eq!(conflicts, 1, "one of the two messages with event id evt-40 is refused");

    let closed = WriteGate::new();
    assert!(closed.close());
    let late = g.message(&app.id, "user.created", at(500));
    let d = g.delivery(&late, &ep.id, at(500));
    let refused = closed.scope(store.create_message(&late, slice::from_ref(&d))).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "refused: {refused:?}"
    );
    assert_eq!(store.get_message(&app.id, &late.id).await.unwrap(), None);
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

// ----- manual attempts -----

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

// ----- listings -----

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
    full.attempt.request_headers = SentHeaders::from_pairs([
        ("content-type", "application/json"),
        ("webhook-id", &msg.id),
        ("webhook-signature", "[redacted]"),
        ("X-Tenant", "Zürich ✓"),
    ]);
    full.attempt.response_headers = pairs(&[
        ("x-zulu", "first though last by name"),
        ("Set-Cookie", "a=1; Path=/"),
        ("content-type", "text/plain; charset=utf-8"),
        ("Set-Cookie", "b=2"),
        ("x-empty", ""),
    ]);
    let mut bare = g.outcome(&bare_d, at(11), 0, Sending, Some(at(60)));
    bare.attempt.request_headers = SentHeaders::default();
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
    hostile.attempt.request_headers = SentHeaders::from_pairs([("webhook-id", msg.id.as_str()), ("x-custom", "c\0d")]);
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
    assert_eq!(found.request_headers.to_map()["x-custom"], "c\\x00d");
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

/// An operator marks failed deliveries reviewed (others are left alone); listings filter on
/// the mark, and resending a delivery clears it.
pub async fn failed_deliveries_are_marked_reviewed_and_a_resend_clears_the_mark(store: &dyn Store) {
    let mut g = Gen::new();
    let (_, ep) = app_with_endpoint(store, &mut g).await;
    let (failed_msg, failed) = send(store, &mut g, &ep, 0).await;
    let (ok_msg, ok) = send(store, &mut g, &ep, 1).await;
    store
        .record_attempts(&[g.outcome(&failed, at(5), 500, Fail, None)])
        .await
        .unwrap();
    store
        .record_attempts(&[g.outcome(&ok, at(6), 200, Success, None)])
        .await
        .unwrap();

    let both = [failed_msg.id.clone(), ok_msg.id.clone()];
    assert_eq!(
        store.mark_reviewed(&ep.id, &both, at(10)).await.unwrap(),
        1,
        "only the failed one"
    );
    let state = |id: String| {
        let ep = ep.id.clone();
        async move { store.get_delivery(&id, &ep).await.unwrap().expect("delivery") }
    };
    assert_eq!(state(failed_msg.id.clone()).await.reviewed_at, Some(at(10)));
    assert_eq!(state(ok_msg.id.clone()).await.reviewed_at, None);

    let failed_only = |reviewed| MessageFilter {
        status: Some(Fail),
        reviewed: Some(reviewed),
        ..MessageFilter::default()
    };
    let listed = |reviewed| {
        let filter = failed_only(reviewed);
        let ep = ep.id.clone();
        async move {
            let page = store
                .list_endpoint_deliveries(&ep, &filter, &everything())
                .await
                .unwrap();
            page.items.into_iter().map(|(d, _)| d.msg_id).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(true).await, vec![failed_msg.id.clone()]);
    assert!(listed(false).await.is_empty());

    let resend = NewDelivery {
        id: g.id(IdKind::Delivery, at(20)),
        ..failed.clone()
    };
    store.schedule_manual(&resend, at(20)).await.unwrap();
    assert_eq!(
        state(failed_msg.id.clone()).await.reviewed_at,
        None,
        "a resend clears the mark"
    );
    assert_eq!(store.mark_reviewed(&ep.id, &[], at(30)).await.unwrap(), 0);
}

/// A status filter on the message list keeps the messages with at least one delivery in that
/// status (a message fanned out to two endpoints can be both failed and delivered).
pub async fn messages_filter_by_the_status_of_any_of_their_deliveries(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&other).await.unwrap();
    let (failed, d_failed) = send(store, &mut g, &ep, 1).await;
    let (mixed, d_mixed) = send(store, &mut g, &ep, 2).await;
    let to_other = NewDelivery {
        id: g.id(IdKind::Delivery, at(2)),
        endpoint_id: other.id.clone(),
        ..d_mixed.clone()
    };
    store.schedule_manual(&to_other, at(2)).await.unwrap();
    let (pending, _) = send(store, &mut g, &ep, 3).await;
    store
        .record_attempts(&[g.outcome(&d_failed, at(5), 500, Fail, None)])
        .await
        .unwrap();
    store
        .record_attempts(&[g.outcome(&d_mixed, at(6), 500, Fail, None)])
        .await
        .unwrap();
    let claimed = store.claim_due(at(7), at(100), 10).await.unwrap();
    let other_claim = claimed
        .iter()
        .find(|c| c.endpoint_id == other.id)
        .expect("the other endpoint's delivery");
    let delivered = AttemptRecord {
        delivery_id: other_claim.id.clone(),
        ..g.outcome(&to_other, at(8), 200, Success, None)
    };
    store.record_attempts(&[delivered]).await.unwrap();

    let with = |status| {
        let app_id = app.id.clone();
        let filter = MessageFilter {
            status: Some(status),
            ..MessageFilter::default()
        };
        async move { keys(&store.list_messages(&app_id, &filter, &everything()).await.unwrap()) }
    };
    assert_eq!(with(Fail).await, [mixed.id.clone(), failed.id.clone()]);
    assert_eq!(with(Success).await, vec![mixed.id.clone()]);
    assert_eq!(with(Pending).await, vec![pending.id.clone()]);
}
