//! Conformance tests for [`FifoStore`](crate::FifoStore): lanes of FIFO destinations, their
//! order, their leases, and what a lane's deliveries mean for the rest of the store.

use hookd_core::model::{Destination, DestinationKind};

use super::*;
use crate::FifoLane;

fn fifo(g: &mut Gen, app_id: &str, created: DateTime<Utc>) -> Endpoint {
    let mut ep = g.endpoint(app_id, None, created);
    ep.destination = Some(Destination {
        kind: DestinationKind::FifoEndpoint,
        config: serde_json::Map::new(),
        credential: None,
        batch_size: 10,
        max_wait_secs: 0,
    });
    ep
}

/// Publishes a message at `t` with one delivery to `ep` in `lane`.
async fn publish(store: &dyn Store, g: &mut Gen, ep: &Endpoint, lane: i32, t: i64) -> (Message, NewDelivery) {
    let msg = g.message(&ep.app_id, "user.created", at(t));
    let mut d = g.delivery(&msg, &ep.id, at(t));
    d.lane = Some(lane);
    store.create_message(&msg, slice::from_ref(&d)).await.unwrap();
    (msg, d)
}

/// Successful attempts, at 300 s, of `items` of `lane`.
fn delivered(g: &mut Gen, lane: &FifoLane, items: &[crate::FifoItem]) -> Vec<AttemptRecord> {
    items
        .iter()
        .map(|i| {
            let d = NewDelivery {
                id: i.delivery_id.clone(),
                msg_id: i.message.id.clone(),
                endpoint_id: lane.endpoint_id.clone(),
                app_id: lane.app_id.clone(),
                due_at: at(300),
                leased_until: None,
                lease_token: 0,
                lane: Some(lane.lane),
            };
            g.outcome(&d, at(300), 200, Success, None)
        })
        .collect()
}

/// Reads a lane's head until it holds `n` deliveries (bounded): on PostgreSQL a lane ends
/// before the oldest transaction still running, which a neighbouring test may hold a moment.
async fn head(store: &dyn Store, lane: &FifoLane, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let items = store.fifo_head(lane, 100).await.unwrap();
        if items.len() >= n || std::time::Instant::now() > deadline {
            return items.into_iter().map(|i| i.message.id).collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A lane's deliveries are never claimed by the queue; the lane lists them oldest first; it is
/// found while it has work, its destination is enabled, and no lease or retry time holds it;
/// a lease is exclusive until released or run out, and extends under its own token.
pub async fn fifo_lanes_hold_their_deliveries_in_order_under_one_lease(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let dest = fifo(&mut g, &app.id, at(0));
    store.create_endpoint(&dest).await.unwrap();
    let mut lane0 = Vec::new();
    for t in 1..=4 {
        lane0.push(publish(store, &mut g, &dest, 0, t).await.0.id);
    }
    let other = publish(store, &mut g, &dest, 5, 5).await.0.id;
    assert!(
        claim(store, 100, 200).await.is_empty(),
        "lane deliveries are not the claim's"
    );
    let lane = FifoLane {
        endpoint_id: dest.id.clone(),
        app_id: app.id.clone(),
        lane: 0,
    };
    assert_eq!(head(store, &lane, 4).await, lane0);
    let five = FifoLane {
        lane: 5,
        ..lane.clone()
    };
    assert_eq!(head(store, &five, 1).await, vec![other]);
    let mut found = store.fifo_lanes(at(10), 10, &[]).await.unwrap();
    found.sort_by_key(|l| l.lane);
    assert_eq!(found, vec![lane.clone(), five.clone()]);
    // An application the caller works on as much as it may is left out.
    assert!(store
        .fifo_lanes(at(10), 10, slice::from_ref(&app.id))
        .await
        .unwrap()
        .is_empty());

    // One lease at a time; the holder extends it; released with a retry time, the lane waits.
    assert!(store.lease_fifo_lane(&lane, 7, at(40), at(10)).await.unwrap());
    assert!(
        !store.lease_fifo_lane(&lane, 8, at(40), at(20)).await.unwrap(),
        "held by another token"
    );
    assert!(
        store.lease_fifo_lane(&lane, 7, at(60), at(20)).await.unwrap(),
        "the holder extends it"
    );
    assert_eq!(store.fifo_lanes(at(20), 10, &[]).await.unwrap(), vec![five.clone()]);
    assert!(
        store.lease_fifo_lane(&lane, 8, at(90), at(61)).await.unwrap(),
        "a lease that ran out is taken over"
    );
    store.release_fifo_lane(&lane, 7, at(0), 0).await.unwrap();
    assert!(
        !store.lease_fifo_lane(&lane, 9, at(90), at(62)).await.unwrap(),
        "a late release by the old holder frees nothing"
    );
    store.release_fifo_lane(&lane, 8, at(300), 0).await.unwrap();
    assert!(
        !store.fifo_lanes(at(100), 10, &[]).await.unwrap().contains(&lane),
        "waits for its retry time"
    );
    assert!(store.fifo_lanes(at(300), 10, &[]).await.unwrap().contains(&lane));

    // A delivered head leaves the lane; a lane without work is not found.
    let items = store.fifo_head(&lane, 100).await.unwrap();
    store
        .record_attempts(&delivered(&mut g, &lane, &items[..2]))
        .await
        .unwrap();
    assert_eq!(head(store, &lane, 2).await, lane0[2..].to_vec());
    let rest = store.fifo_head(&five, 100).await.unwrap();
    store.record_attempts(&delivered(&mut g, &five, &rest)).await.unwrap();
    assert_eq!(store.fifo_lanes(at(400), 10, &[]).await.unwrap(), vec![lane.clone()]);

    // Waiting for a batch of 3 to fill: not due with 2 waiting, due once the third arrives,
    // long before its fill deadline.
    assert!(store.lease_fifo_lane(&lane, 10, at(450), at(400)).await.unwrap());
    store.release_fifo_lane(&lane, 10, at(10_000), 3).await.unwrap();
    assert!(store.fifo_lanes(at(500), 10, &[]).await.unwrap().is_empty());
    publish(store, &mut g, &dest, 0, 501).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.fifo_lanes(at(502), 10, &[]).await.unwrap() != vec![lane.clone()] {
        assert!(std::time::Instant::now() < deadline, "a full batch makes its lane due");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A disabled destination's lanes wait; deleting it removes them.
    let mut disabled = dest.clone();
    disabled.disabled = true;
    store.update_endpoint(&disabled).await.unwrap();
    assert!(store.fifo_lanes(at(400), 10, &[]).await.unwrap().is_empty());
    store.update_endpoint(&dest).await.unwrap();
    assert_eq!(store.fifo_lanes(at(400), 10, &[]).await.unwrap().len(), 1);
    store.delete_endpoint(&app.id, &dest.id).await.unwrap();
    assert!(store.fifo_lanes(at(400), 10, &[]).await.unwrap().is_empty());
}

/// A message whose delivery still waits in a lane keeps its payload past its retention and is
/// not pruned, as one waiting for a retry is not.
pub async fn a_lanes_waiting_delivery_keeps_its_message(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let dest = fifo(&mut g, &app.id, at(0));
    store.create_endpoint(&dest).await.unwrap();
    let (msg, _) = publish(store, &mut g, &dest, 3, 1).await;
    let far = msg.expires_at + Duration::days(400);
    assert_eq!(store.expire_payloads(far, 100).await.unwrap(), 0);
    let below = IdKind::Message.lower_bound(far);
    assert_eq!(store.prune_messages(&below, 100).await.unwrap(), 0);
    let kept = store
        .get_message(&app.id, &msg.id)
        .await
        .unwrap()
        .expect("message kept");
    assert!(kept.payload.is_some());
}
