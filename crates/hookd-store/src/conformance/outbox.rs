//! Conformance tests for [`OutboxStore`]: operational events stored with their cause and removed
//! once published.

use super::*;

// ----- outbox -----

/// Operational events ride with their attempt record into the outbox, in its transaction, and
/// only when the record is applied (a fenced-out record stores none); an event already in the
/// outbox is kept as it is, and the record carrying it again is still applied; the outbox lists
/// events oldest first and forgets those removed once published.
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

    // The same events once more: added again, and carried by the delivery's next record.
    store.add_outbox(std::slice::from_ref(&later)).await.unwrap();
    let mut again = g.outcome(&d, at(8), 200, Success, None);
    again.lease_token = 0;
    again.events = vec![outbox_event("opevt_1", &app.id, 9)];
    store.record_attempts(&[again]).await.unwrap();
    let of_message = AttemptFilter {
        app_id: app.id.clone(),
        msg_id: Some(d.msg_id.clone()),
        ..Default::default()
    };
    let attempts = store.list_attempts(&of_message, &everything()).await.unwrap();
    assert_eq!(attempts.items.len(), 2, "the record carrying a stored event is applied");

    let all = store.outbox_events(10).await.unwrap();
    assert_eq!(all, vec![outbox_event("opevt_1", &app.id, 6), later.clone()]);
    assert_eq!(store.outbox_events(1).await.unwrap().len(), 1, "at most the limit");
    store.remove_outbox(&["opevt_1".to_string()]).await.unwrap();
    assert_eq!(store.outbox_events(10).await.unwrap(), vec![later]);
}
