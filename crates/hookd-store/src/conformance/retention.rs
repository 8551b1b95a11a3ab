//! Conformance tests for [`RetentionStore`]: payload expiry, expunging and pruning.

use super::*;

// ----- retention -----

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
