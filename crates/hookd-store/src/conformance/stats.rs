//! Conformance tests for endpoint statistics (delivery and attempt counts) and for picking the
//! messages a replay sends again.

use crate::{ReplayKind, ReplayQuery, StatusCounts};

use super::*;

/// Sends a `user.created` message created at `t` to `ep` and leaves its delivery in `status`
/// through one scheduled attempt at `t` (none for `Pending`).
async fn delivery_in(store: &dyn Store, g: &mut Gen, ep: &Endpoint, t: i64, status: MessageStatus) -> NewDelivery {
    let (_, d) = send(store, g, ep, t).await;
    let (code, next) = match status {
        Pending => return d,
        Success => (200, None),
        Sending => (500, Some(at(100_000))),
        Fail => (500, None),
    };
    store
        .record_attempts(&[g.outcome(&d, at(t), code, status, next)])
        .await
        .unwrap();
    d
}

fn counts(success: i64, pending: i64, sending: i64, fail: i64) -> StatusCounts {
    StatusCounts {
        success,
        pending,
        sending,
        fail,
    }
}

// ----- counts -----

/// Deliveries to an endpoint count by status over `[since, until]` of their creation time:
/// both ends included, nothing outside, nothing of another endpoint.
pub async fn delivery_counts_cover_an_inclusive_window_of_creation_times(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_ep = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&other_ep).await.unwrap();
    let spread = [
        (9, Success),
        (10, Success),
        (15, Sending),
        (20, Fail),
        (25, Fail),
        (30, Pending),
        (35, Pending),
        (40, Pending),
        (41, Fail),
    ];
    for (t, status) in spread {
        delivery_in(store, &mut g, &ep, t, status).await;
    }
    delivery_in(store, &mut g, &other_ep, 20, Success).await;
    let count = |endpoint_id: &str, since: i64, until: i64| {
        let endpoint_id = endpoint_id.to_string();
        async move { store.delivery_counts(&endpoint_id, at(since), at(until)).await.unwrap() }
    };

    assert_eq!(count(&ep.id, 10, 40).await, counts(1, 3, 1, 2));
    assert_eq!(count(&ep.id, 0, 100).await, counts(2, 3, 1, 3));
    assert_eq!(count(&ep.id, 11, 39).await, counts(0, 2, 1, 2));
    assert_eq!(count(&ep.id, 40, 40).await, counts(0, 1, 0, 0));
    assert_eq!(count(&ep.id, 42, 100).await, StatusCounts::default());
    assert_eq!(count(&other_ep.id, 0, 100).await, counts(1, 0, 0, 0));
}

/// Attempts to an endpoint count by their own status over `[since, until]` of the attempt time:
/// both ends included, nothing outside, nothing of another endpoint.
pub async fn attempt_counts_cover_an_inclusive_window_of_attempt_times(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_ep = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&other_ep).await.unwrap();
    for (i, (t, code)) in (0..).zip([
        (99, 500),
        (100, 500),
        (110, 0),
        (120, 200),
        (150, 503),
        (200, 204),
        (201, 500),
    ]) {
        let (_, d) = send(store, &mut g, &ep, i).await;
        let outcome = match code {
            200..=299 => g.outcome(&d, at(t), code, Success, None),
            _ => g.outcome(&d, at(t), code, Sending, Some(at(t + 60))),
        };
        store.record_attempts(&[outcome]).await.unwrap();
    }
    let (_, elsewhere) = send(store, &mut g, &other_ep, 0).await;
    let outcome = g.outcome(&elsewhere, at(150), 200, Success, None);
    store.record_attempts(&[outcome]).await.unwrap();
    let count = |endpoint_id: &str, since: i64, until: i64| {
        let endpoint_id = endpoint_id.to_string();
        async move { store.attempt_counts(&endpoint_id, at(since), at(until)).await.unwrap() }
    };

    assert_eq!(count(&ep.id, 100, 200).await, counts(2, 0, 0, 3));
    assert_eq!(count(&ep.id, 0, 1000).await, counts(2, 0, 0, 5));
    assert_eq!(count(&ep.id, 101, 199).await, counts(1, 0, 0, 2));
    assert_eq!(count(&ep.id, 200, 200).await, counts(1, 0, 0, 0));
    assert_eq!(count(&ep.id, 202, 1000).await, StatusCounts::default());
    assert_eq!(count(&other_ep.id, 0, 1000).await, counts(1, 0, 0, 0));
}

// ----- replays -----

/// The replay of `ep` over `[since, until]`.
fn replay(ep: &Endpoint, since: i64, until: i64, kind: ReplayKind) -> ReplayQuery {
    ReplayQuery {
        app_id: ep.app_id.clone(),
        endpoint_id: ep.id.clone(),
        since: at(since),
        until: at(until),
        kind,
    }
}

/// Ids of the next `limit` candidates after `after`.
async fn candidates(store: &dyn Store, query: &ReplayQuery, after: Option<&str>, limit: usize) -> Vec<String> {
    let found = store.replay_candidates(query, after, limit).await.unwrap();
    found.into_iter().map(|m| m.id).collect()
}

/// Every candidate, one call.
async fn all_candidates(store: &dyn Store, query: &ReplayQuery) -> Vec<String> {
    candidates(store, query, None, 100).await
}

/// Stores a message of `event_type` on `channels` created at `t` with deliveries (due then) to
/// each of `endpoints`.
async fn publish(
    store: &dyn Store,
    g: &mut Gen,
    app_id: &str,
    (event_type, channels): (&str, Option<&[&str]>),
    t: i64,
    endpoints: &[&Endpoint],
) -> (Message, Vec<NewDelivery>) {
    let mut msg = g.message(app_id, event_type, at(t));
    msg.channels = channels.map(strings);
    let deliveries: Vec<NewDelivery> = endpoints.iter().map(|ep| g.delivery(&msg, &ep.id, at(t))).collect();
    store.create_message(&msg, &deliveries).await.unwrap();
    (msg, deliveries)
}

/// A `Missing` replay picks the application's messages in `[since, until]` (both ends included)
/// that have no delivery to the endpoint, whatever they have to other endpoints, in id order and
/// in pages; other applications' messages are never picked.
pub async fn missing_replay_picks_messages_never_sent_to_the_endpoint_in_id_order(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let sibling = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&sibling).await.unwrap();
    let other_app = g.app(Live, None, at(0));
    store.create_application(&other_app).await.unwrap();
    let plain = ("user.created", None);
    let mut m = Vec::new();
    for (t, to) in [
        (5, vec![]),
        (10, vec![]),
        (20, vec![&ep]),
        (30, vec![&sibling]),
        (40, vec![&ep, &sibling]),
        (45, vec![]),
        (50, vec![]),
        (51, vec![]),
    ] {
        m.push(publish(store, &mut g, &app.id, plain, t, &to).await.0);
    }
    publish(store, &mut g, &other_app.id, plain, 25, &[]).await;
    let resent = publish(store, &mut g, &app.id, plain, 35, &[]).await.0;
    store
        .schedule_manual(&g.delivery(&resent, &ep.id, at(60)), at(60))
        .await
        .unwrap();
    let query = replay(&ep, 10, 50, ReplayKind::Missing);

    let expected = pick(&m, &[1, 3, 5, 6]);
    assert_eq!(all_candidates(store, &query).await, expected);
    assert_eq!(candidates(store, &query, None, 2).await, pick(&m, &[1, 3]));
    assert_eq!(candidates(store, &query, Some(&m[3].id), 2).await, pick(&m, &[5, 6]));
    assert_eq!(candidates(store, &query, Some(&m[6].id), 2).await, pick(&m, &[]));
    assert_eq!(candidates(store, &query, Some(&m[4].id), 1).await, pick(&m, &[5]));

    let narrow = replay(&ep, 30, 45, ReplayKind::Missing);
    assert_eq!(all_candidates(store, &narrow).await, pick(&m, &[3, 5]));
    let for_sibling = replay(&sibling, 0, 100, ReplayKind::Missing);
    let mut expected = pick(&m, &[0, 1, 2, 5, 6, 7]);
    expected.push(resent.id.clone());
    assert_eq!(all_candidates(store, &for_sibling).await, sorted(expected));
}

/// The replay of deliveries to `ep` over `[since, until]` in `statuses`, unfiltered otherwise.
fn deliveries(ep: &Endpoint, since: i64, until: i64, statuses: &[MessageStatus]) -> ReplayQuery {
    let kind = ReplayKind::Deliveries {
        statuses: statuses.to_vec(),
        event_types: None,
        channel: None,
        status_code_class: None,
    };
    replay(ep, since, until, kind)
}

/// `query` with one more `Deliveries` filter set by `set`.
fn narrowed(
    mut query: ReplayQuery,
    set: impl FnOnce(&mut Option<Vec<String>>, &mut Option<String>, &mut Option<i64>),
) -> ReplayQuery {
    if let ReplayKind::Deliveries {
        event_types,
        channel,
        status_code_class,
        ..
    } = &mut query.kind
    {
        set(event_types, channel, status_code_class);
    }
    query
}

/// A `Deliveries` replay picks the messages in `[since, until]` whose delivery to the endpoint is
/// in one of the statuses, filtered by event type, channel and the class of the delivery's
/// latest response, in id order and in pages.
pub async fn deliveries_replay_filters_by_status_type_channel_and_latest_response_class(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let sibling = g.endpoint(&app.id, None, at(0));
    store.create_endpoint(&sibling).await.unwrap();
    let specs: [(&str, Option<&[&str]>); 7] = [
        ("user.created", Some(&["eu"])),
        ("user.created", Some(&["us"])),
        ("invoice.paid", Some(&["eu"])),
        ("user.created", None),
        ("user.created", None),
        ("user.created", None),
        ("user.created", None),
    ];
    let times = [10, 20, 30, 40, 45, 60, 25];
    let mut m = Vec::new();
    let mut d = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let to: &[&Endpoint] = if i == 6 { &[&sibling] } else { &[&ep, &sibling] };
        let (msg, ds) = publish(store, &mut g, &app.id, spec, times[i], to).await;
        m.push(msg);
        d.push(ds);
    }
    let retry = Some(at(10_000));
    let outcomes = [
        // m0: failed once, then delivered: latest class 200. Its delivery to the sibling failed.
        g.outcome(&d[0][0], at(100), 500, Sending, retry),
        g.outcome(&d[0][0], at(101), 200, Success, None),
        g.outcome(&d[0][1], at(102), 503, Fail, None),
        // m1: exhausted on a 5xx.
        g.outcome(&d[1][0], at(103), 503, Fail, None),
        // m2: a 5xx, then exhausted on a 4xx: latest class 400.
        g.outcome(&d[2][0], at(104), 500, Sending, retry),
        g.outcome(&d[2][0], at(105), 404, Fail, None),
        // m3: no response, retry scheduled: class 0. m4 stays pending.
        g.outcome(&d[3][0], at(106), 0, Sending, retry),
        // m5 (outside the window) and m6 (only sent to the sibling) failed too.
        g.outcome(&d[5][0], at(107), 500, Fail, None),
        g.outcome(&d[6][0], at(108), 500, Fail, None),
    ];
    for outcome in outcomes {
        store.record_attempts(&[outcome]).await.unwrap();
    }
    let any = [Success, Pending, Sending, Fail];
    let find = |query: ReplayQuery| async move { all_candidates(store, &query).await };

    assert_eq!(find(deliveries(&ep, 10, 50, &[Fail])).await, pick(&m, &[1, 2]));
    assert_eq!(
        find(deliveries(&ep, 10, 50, &[Fail, Sending])).await,
        pick(&m, &[1, 2, 3])
    );
    assert_eq!(find(deliveries(&ep, 10, 50, &[Pending])).await, pick(&m, &[4]));
    assert_eq!(find(deliveries(&ep, 10, 50, &any)).await, pick(&m, &[0, 1, 2, 3, 4]));
    assert_eq!(find(deliveries(&ep, 10, 50, &[])).await, pick(&m, &[]));
    assert_eq!(find(deliveries(&ep, 20, 40, &any)).await, pick(&m, &[1, 2, 3]));
    assert_eq!(find(deliveries(&sibling, 0, 100, &[Fail])).await, pick(&m, &[0, 6]));

    let all = deliveries(&ep, 10, 50, &any);
    let of_type = narrowed(all.clone(), |types, _, _| *types = Some(strings(&["user.created"])));
    assert_eq!(find(of_type).await, pick(&m, &[0, 1, 3, 4]));
    let two_types = narrowed(all.clone(), |types, _, _| {
        *types = Some(strings(&["invoice.paid", "user.deleted"]))
    });
    assert_eq!(find(two_types).await, pick(&m, &[2]));
    let on_eu = narrowed(all.clone(), |_, channel, _| *channel = Some("eu".to_string()));
    assert_eq!(find(on_eu).await, pick(&m, &[0, 2]));
    // Never-attempted deliveries are left out: whether they count as class 0 is not settled.
    let attempted = deliveries(&ep, 10, 50, &[Success, Sending, Fail]);
    let class = |c: i64| narrowed(attempted.clone(), |_, _, cls| *cls = Some(c));
    assert_eq!(find(class(200)).await, pick(&m, &[0]));
    assert_eq!(find(class(400)).await, pick(&m, &[2]));
    assert_eq!(find(class(500)).await, pick(&m, &[1]));
    assert_eq!(find(class(0)).await, pick(&m, &[3]));
    assert_eq!(find(class(300)).await, pick(&m, &[]));
    let failed_eu_user = narrowed(deliveries(&ep, 10, 50, &[Fail, Success]), |types, channel, _| {
        (*types, *channel) = (Some(strings(&["user.created"])), Some("eu".to_string()))
    });
    assert_eq!(find(failed_eu_user).await, pick(&m, &[0]));

    assert_eq!(candidates(store, &all, None, 2).await, pick(&m, &[0, 1]));
    assert_eq!(candidates(store, &all, Some(&m[1].id), 2).await, pick(&m, &[2, 3]));
    assert_eq!(candidates(store, &all, Some(&m[3].id), 2).await, pick(&m, &[4]));
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

pub async fn traffic_minutes_add_up_per_environment_and_are_pruned_by_age(store: &dyn Store) {
    use crate::TrafficMinute;
    let minute = |env, m: i64, messages: i64, latency_ms: i64| {
        let mut t = TrafficMinute::new(env, m);
        t.messages = messages;
        t.deliveries = 2 * messages;
        t.attempts = messages + 1;
        t.succeeded = messages;
        t.failed = 1;
        t.latency[TrafficMinute::bucket(latency_ms)] = messages;
        t
    };
    store
        .add_traffic(&[
            minute(Live, 100, 3, 7),
            minute(Live, 101, 1, 400),
            minute(Test, 100, 9, 7),
        ])
        .await
        .unwrap();
    // A second node adds to the same minute.
    store.add_traffic(&[minute(Live, 100, 2, 7000)]).await.unwrap();

    let live = store.traffic(Live, 100, 102).await.unwrap();
    let mut expected = minute(Live, 100, 3, 7);
    expected.add(&minute(Live, 100, 2, 7000));
    assert_eq!(live, vec![expected, minute(Live, 101, 1, 400)]);
    assert_eq!(live[0].messages, 5);
    assert_eq!(live[0].latency[TrafficMinute::bucket(7)], 3);
    assert_eq!(live[0].latency[TrafficMinute::bucket(7000)], 2);
    assert_eq!(
        store.traffic(Live, 101, 102).await.unwrap().len(),
        1,
        "from is inclusive"
    );
    assert_eq!(
        store.traffic(Live, 100, 101).await.unwrap().len(),
        1,
        "until is exclusive"
    );
    assert_eq!(
        store.traffic(Test, 0, 1000).await.unwrap(),
        vec![minute(Test, 100, 9, 7)]
    );

    assert_eq!(
        store.prune_traffic(101).await.unwrap(),
        2,
        "minute 100 of both environments"
    );
    assert_eq!(
        store.traffic(Live, 0, 1000).await.unwrap(),
        vec![minute(Live, 101, 1, 400)]
    );
}
