//! Conformance tests for [`PollStore`](crate::PollStore): an application's stream as polling
//! consumers read it, time seeks, and what a poll records; and destinations stored as endpoints.

use hookd_core::model::{Destination, DestinationKind};

use super::*;
use crate::{PollCursor, PollRecord};

/// Reads `app_id`'s stream after `from` until it holds `n` messages. On a backend whose stream
/// ends before the oldest transaction still running (PostgreSQL), a neighbouring test may hold
/// the end back for a moment, so reads repeat (bounded) until the stream has caught up.
async fn read(store: &dyn Store, app_id: &str, from: &PollCursor, n: usize) -> Vec<(PollCursor, String)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = store.poll_messages(app_id, from, n + 10).await.unwrap();
        if got.len() >= n || std::time::Instant::now() > deadline {
            return got.into_iter().map(|p| (p.cursor, p.message.id)).collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn polling(g: &mut Gen, app_id: &str, created: DateTime<Utc>) -> Endpoint {
    let mut ep = g.endpoint(app_id, Some("feed"), created);
    ep.url = "poll:".to_string();
    ep.destination = Some(Destination {
        kind: DestinationKind::PollingEndpoint,
        config: serde_json::Map::new(),
        credential: Some("s3cret".to_string()),
        batch_size: 100,
        max_wait_secs: 0,
    });
    ep
}

/// A destination reads back with its settings and credential, and is listed with the
/// destinations, never with the plain endpoints.
pub async fn destinations_round_trip_and_are_listed_apart_from_endpoints(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, plain) = app_with_endpoint(store, &mut g).await;
    let dest = polling(&mut g, &app.id, at(1));
    store.create_endpoint(&dest).await.unwrap();
    assert_eq!(store.get_endpoint(&app.id, "feed").await.unwrap(), Some(dest.clone()));
    let mut changed = dest.clone();
    changed.destination.as_mut().unwrap().batch_size = 7;
    changed.destination.as_mut().unwrap().credential = Some("rotated".into());
    store.update_endpoint(&changed).await.unwrap();
    assert_eq!(
        store.get_endpoint(&app.id, &dest.id).await.unwrap(),
        Some(changed.clone())
    );
    let page = PageRequest {
        limit: 50,
        cursor: None,
        ascending: true,
    };
    let endpoints = store.list_endpoints(&app.id, &page).await.unwrap();
    assert_eq!(endpoints.items, vec![plain.clone()]);
    let destinations = store.list_destinations(&app.id, &page).await.unwrap();
    assert_eq!(destinations.items, vec![changed.clone()]);
    // Every endpoint of the application, for fan-out, includes the destination.
    assert_eq!(store.all_endpoints(&app.id).await.unwrap().len(), 2);
}

/// The stream holds only the application's messages, in publish order here (publishes one at a
/// time); reading after any message's position continues right after it; a time seek starts at
/// the first message published at or after that time, or at the end of the stream.
pub async fn the_stream_reads_an_applications_messages_in_order_from_any_position(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let other = g.app(Live, None, at(0));
    store.create_application(&other).await.unwrap();
    let mut mine = Vec::new();
    for t in 1..=6 {
        let m = g.message(&app.id, "user.created", at(t * 10));
        store.create_message(&m, &[]).await.unwrap();
        mine.push(m.id);
        let theirs = g.message(&other.id, "user.created", at(t * 10 + 1));
        store.create_message(&theirs, &[]).await.unwrap();
    }
    let start = store.poll_cursor_at(&app.id, at(0)).await.unwrap();
    let all = read(store, &app.id, &start, 6).await;
    assert_eq!(all.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(), mine);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "positions grow: {all:?}");
    let after_third = store.poll_messages(&app.id, &all[2].0, 10).await.unwrap();
    let ids: Vec<String> = after_third.into_iter().map(|p| p.message.id).collect();
    assert_eq!(ids, mine[3..].to_vec());
    let limited = store.poll_messages(&app.id, &start, 2).await.unwrap();
    assert_eq!(limited.len(), 2);

    // Seeks: to the fourth message's time, between messages, and past the end.
    let fourth = store.poll_cursor_at(&app.id, at(40)).await.unwrap();
    let from_fourth: Vec<String> = read(store, &app.id, &fourth, 3)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(from_fourth, mine[3..].to_vec());
    let between = store.poll_cursor_at(&app.id, at(35)).await.unwrap();
    let from_between: Vec<String> = read(store, &app.id, &between, 3)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(from_between, mine[3..].to_vec());
    let end = store.poll_cursor_at(&app.id, at(1_000)).await.unwrap();
    assert!(store.poll_messages(&app.id, &end, 10).await.unwrap().is_empty());
    let late = g.message(&app.id, "user.created", at(2_000));
    store.create_message(&late, &[]).await.unwrap();
    let after_end: Vec<String> = read(store, &app.id, &end, 1)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(
        after_end,
        vec![late.id],
        "what is published after a seek to the end follows it"
    );
}

fn poll_attempt(g: &mut Gen, ep: &Endpoint, msg_id: &str, when: DateTime<Utc>) -> (String, Attempt) {
    let attempt = Attempt {
        id: g.id(IdKind::Attempt, when),
        msg_id: msg_id.to_string(),
        endpoint_id: ep.id.clone(),
        url: "poll:consumer/c1".to_string(),
        response: String::new(),
        response_status_code: 200,
        response_duration_ms: 0,
        status: Success,
        trigger_type: TriggerType::Scheduled,
        attempt_number: 1,
        request_headers: Default::default(),
        response_headers: Vec::new(),
        created_at: when,
    };
    (g.id(IdKind::Delivery, when), attempt)
}

/// A poll marks each message's delivery to the destination delivered (created on the first
/// poll), numbers its attempts within the delivery, and saves the consumer's position; a new
/// consumer beyond the bound is `Conflict` and writes nothing; consumers go with their
/// destination and with their application.
pub async fn a_poll_records_attempts_and_the_consumers_position_within_the_bound(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let dest = polling(&mut g, &app.id, at(1));
    store.create_endpoint(&dest).await.unwrap();
    let m1 = g.message(&app.id, "user.created", at(10));
    let m2 = g.message(&app.id, "user.created", at(11));
    store.create_message(&m1, &[]).await.unwrap();
    store.create_message(&m2, &[]).await.unwrap();
    let position = PollCursor {
        seq: 42,
        id: m2.id.clone(),
    };
    let record = |attempts, consumer: &str, max| PollRecord {
        app_id: app.id.clone(),
        endpoint_id: dest.id.clone(),
        attempts,
        consumer: Some((consumer.to_string(), position.clone())),
        max_consumers: max,
        at: at(20),
    };
    let first = vec![
        poll_attempt(&mut g, &dest, &m1.id, at(20)),
        poll_attempt(&mut g, &dest, &m2.id, at(20)),
    ];
    store.record_poll(&record(first, "c1", 2)).await.unwrap();
    assert_eq!(
        store.poll_consumer(&dest.id, "c1").await.unwrap(),
        Some(position.clone())
    );
    assert_eq!(store.poll_consumer(&dest.id, "c2").await.unwrap(), None);
    // The same message handed out again (a consumer went back) is a second attempt.
    let again = vec![poll_attempt(&mut g, &dest, &m1.id, at(30))];
    store.record_poll(&record(again, "c2", 2)).await.unwrap();
    let delivery = store.get_delivery(&m1.id, &dest.id).await.unwrap().expect("delivery");
    assert_eq!((delivery.status, delivery.total_attempts), (Success, 2));
    let filter = AttemptFilter {
        app_id: app.id.clone(),
        msg_id: Some(m1.id.clone()),
        ..AttemptFilter::default()
    };
    let page = PageRequest {
        limit: 50,
        cursor: None,
        ascending: true,
    };
    let attempts = store.list_attempts(&filter, &page).await.unwrap().items;
    let numbers: Vec<i64> = attempts.iter().map(|a| a.attempt_number).collect();
    assert_eq!(numbers, vec![1, 2]);
    // A third consumer is one too many; the known ones still move.
    let refused = store
        .record_poll(&record(vec![poll_attempt(&mut g, &dest, &m2.id, at(40))], "c3", 2))
        .await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert_eq!(store.poll_consumer(&dest.id, "c3").await.unwrap(), None);
    let m2_delivery = store.get_delivery(&m2.id, &dest.id).await.unwrap().expect("delivery");
    assert_eq!(m2_delivery.total_attempts, 1, "the refused poll recorded nothing");
    store.record_poll(&record(Vec::new(), "c1", 2)).await.unwrap();

    store.delete_endpoint(&app.id, &dest.id).await.unwrap();
    assert_eq!(store.poll_consumer(&dest.id, "c1").await.unwrap(), None);
    let dest2 = polling(&mut g, &app.id, at(50));
    store.create_endpoint(&dest2).await.unwrap();
    let moved = PollRecord {
        endpoint_id: dest2.id.clone(),
        ..record(Vec::new(), "c1", 2)
    };
    store.record_poll(&moved).await.unwrap();
    store.delete_application(Live, &app.id).await.unwrap();
    assert_eq!(store.poll_consumer(&dest2.id, "c1").await.unwrap(), None);
}
