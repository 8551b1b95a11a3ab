//! Several `hookd serve` nodes on one PostgreSQL database: they share the work through claims
//! and leases, and losing one to `kill -9` loses nothing. Runs when `HOOKD_TEST_POSTGRES_URL` is
//! set (CI sets it); each run uses a fresh schema that is dropped afterwards.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookd_store_postgres::testing::TestSchema;
use serde_json::json;

use crate::durability::spawn_serve;
use crate::helpers::Receiver;

const MESSAGES: usize = 10_000;
/// Sends in flight at once on one node, and the most attempt records a node holds unwritten
/// (the recorder's queue and the batch being written): what a killed node can have sent without
/// recording, i.e. the most duplicates its death can cause.
const NODE_CONCURRENCY: usize = 16;
const UNRECORDED_BOUND: usize = NODE_CONCURRENCY + 4 * 512 + 512;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_deliver_every_message_when_one_is_killed_mid_run() {
    let Ok(url) = std::env::var("HOOKD_TEST_POSTGRES_URL") else {
        eprintln!("HOOKD_TEST_POSTGRES_URL is not set; the several-node test was not run");
        return;
    };
    let schema = TestSchema::create(&url).await;
    let db = schema.store_url();

    // `hookd token create --database` against the shared database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["token", "create", "--database", &db])
        .env("HOOKD_STORAGE__POSTGRES_SCHEMA", schema.name())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let receiver = Receiver::start().await;
    let concurrency = NODE_CONCURRENCY.to_string();
    let env = [
        ("HOOKD_STORAGE__POSTGRES_SCHEMA", schema.name()),
        ("HOOKD_DELIVERY__TIMEOUT_SECS", "5"),
        ("HOOKD_DELIVERY__MAX_CONCURRENCY", concurrency.as_str()),
    ];
    let mut nodes: Vec<_> = (0..3).map(|_| spawn_serve(&["--database", &db], &env)).collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let client = reqwest::Client::new();
    let post = |base: &str, path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    assert_eq!(
        post(&bases[0], "/api/v1/app", json!({"name": "Cluster", "uid": "ws_c"}))
            .await
            .unwrap()
            .status(),
        201
    );
    let ep = post(
        &bases[1],
        "/api/v1/app/ws_c/endpoint",
        json!({"url": receiver.url("/ok")}),
    )
    .await
    .unwrap();
    assert_eq!(ep.status(), 201);

    // Publishers spread messages over the nodes; a message whose node died is published again on
    // another node with the same eventId (a 409 then means the first attempt was stored).
    let acked = Arc::new(std::sync::Mutex::new(HashSet::<String>::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut publishers = Vec::new();
    for _ in 0..24 {
        let (client, token, bases, acked, next, dead) = (
            client.clone(),
            token.clone(),
            bases.clone(),
            acked.clone(),
            next.clone(),
            dead.clone(),
        );
        publishers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= MESSAGES {
                    return;
                }
                let event_id = format!("evt-{i}");
                let body = json!({"eventType": "cluster.test", "eventId": event_id, "payload": {"i": i}});
                for attempt in 0..6 {
                    let mut node = (i + attempt) % 3;
                    if node == 2 && dead.load(Ordering::Relaxed) {
                        node = attempt % 2;
                    }
                    let base = &bases[node];
                    let Ok(resp) = client
                        .post(format!("{base}/api/v1/app/ws_c/msg"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                    else {
                        continue;
                    };
                    let id = match resp.status().as_u16() {
                        202 => resp.json::<serde_json::Value>().await.unwrap()["id"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                        409 => {
                            let got = client
                                .get(format!("{base}/api/v1/app/ws_c/msg/{event_id}"))
                                .bearer_auth(&token)
                                .send()
                                .await
                                .unwrap();
                            got.json::<serde_json::Value>().await.unwrap()["id"]
                                .as_str()
                                .unwrap()
                                .to_string()
                        }
                        other => panic!("publish answered {other}"),
                    };
                    acked.lock().unwrap().insert(id);
                    break;
                }
            }
        }));
    }
    // Kill one node a third of the way through.
    while acked.lock().unwrap().len() < MESSAGES / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dead.store(true, Ordering::Relaxed);
    nodes[2].child.kill().unwrap();
    nodes[2].child.wait().unwrap();
    let killed_at = std::time::Instant::now();
    for p in publishers {
        p.await.unwrap();
    }
    let published_at = std::time::Instant::now();
    let acked: HashSet<String> = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), MESSAGES, "every message was acknowledged by some node");

    let missing = receiver.wait_for_webhook_ids(&acked, Duration::from_secs(120)).await;
    let delivered_at = std::time::Instant::now();
    for n in nodes.iter_mut() {
        let _ = n.child.kill();
        let _ = n.child.wait();
    }
    assert_eq!(missing, 0, "{missing} acknowledged messages were never delivered");
    let requests = receiver.requests().len();
    let duplicates = requests - MESSAGES;
    // With the default lease (20 s, renewed while held) the dead node's claimed deliveries are
    // taken over within one lease: the last delivery comes well under 30 s after publishing
    // ended (a 5-minute lease made this wait 300 s).
    let after_publishing = delivered_at - published_at;
    eprintln!(
        "{MESSAGES} messages over 3 nodes, one killed: {requests} deliveries, {duplicates} duplicates; \
         publishing ended {:?} after the kill, the last delivery {after_publishing:?} after that",
        published_at - killed_at
    );
    assert!(
        after_publishing < Duration::from_secs(30),
        "the dead node's work took {after_publishing:?} to be delivered after publishing ended"
    );
    assert!(
        duplicates <= UNRECORDED_BOUND,
        "{duplicates} duplicates exceed what the killed node could hold"
    );
}

/// Another node: another connection pool on the same schema.
async fn other_node(schema: &TestSchema) -> hookd_store_postgres::PostgresStore {
    hookd_store_postgres::PostgresStore::connect(&schema.store_url(), schema.options())
        .await
        .unwrap()
}

/// The id of the application with uid `uid`.
async fn app_id(app: &crate::helpers::TestApp, uid: &str) -> String {
    let (_, found) = app.get(&format!("/api/v1/app/{uid}")).await;
    found["id"].as_str().unwrap().to_string()
}

/// Makes a resend of `msg_id` to `endpoint_id` due now, through `other`.
async fn resend_from(
    other: &hookd_store_postgres::PostgresStore,
    app: &crate::helpers::TestApp,
    app_id: &str,
    msg_id: &str,
    endpoint_id: &str,
) {
    let delivery = hookd_store::NewDelivery {
        id: hookd_core::id::IdKind::Delivery.generate(app.clock_now(), &mut rand::thread_rng()),
        msg_id: msg_id.to_string(),
        endpoint_id: endpoint_id.to_string(),
        app_id: app_id.to_string(),
        due_at: app.clock_now(),
        leased_until: None,
        lease_token: 0,
        lane: None,
    };
    hookd_store::MessageStore::schedule_manual(other, &delivery, app.clock_now())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_idle_node_is_woken_at_once_by_work_another_node_makes_due() {
    let Ok(url) = std::env::var("HOOKD_TEST_POSTGRES_URL") else {
        eprintln!("HOOKD_TEST_POSTGRES_URL is not set; the wake-up test was not run");
        return;
    };
    let schema = TestSchema::create(&url).await;
    // Polling once an hour: only a notification can make this node act within the test.
    let app = crate::helpers::TestApp::spawn_on_postgres(&schema, |c| c.delivery.poll_interval_ms = 3_600_000).await;
    app.create_app("ws_wake").await;
    let ep = app.create_endpoint("ws_wake", "/ok", json!({})).await;
    let msg = app
        .send_message("ws_wake", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.receiver.wait_for(1, |r| r.path == "/ok").await;

    // Another node (here: another connection pool on the same schema) makes a resend due.
    let other = other_node(&schema).await;
    let app_id = app_id(&app, "ws_wake").await;
    let ep_id = ep["id"].as_str().unwrap();
    resend_from(&other, &app, &app_id, msg["id"].as_str().unwrap(), ep_id).await;
    let got = app.receiver.wait_for(2, |r| r.path == "/ok").await;
    assert_eq!(got[1].header("webhook-id"), msg["id"].as_str());
    other.close().await;
}

#[tokio::test]
async fn a_delivery_to_an_endpoint_made_on_another_node_is_sent_at_once_despite_a_stale_cache() {
    let Ok(url) = std::env::var("HOOKD_TEST_POSTGRES_URL") else {
        eprintln!("HOOKD_TEST_POSTGRES_URL is not set; the stale-cache test was not run");
        return;
    };
    let schema = TestSchema::create(&url).await;
    // Leases of ten minutes: a delivery this node claimed and dropped would wait that long.
    let app = crate::helpers::TestApp::spawn_on_postgres(&schema, |c| c.delivery.lease_secs = 600).await;
    app.create_app("ws_stale").await;
    app.create_endpoint("ws_stale", "/ok", json!({})).await;
    let msg = app
        .send_message("ws_stale", json!({"eventType": "a.b", "payload": {}}))
        .await;
    // The node has now cached the application's endpoint list: only `/ok`.
    app.receiver.wait_for(1, |r| r.path == "/ok").await;

    // Another node adds an endpoint and resends the message to it.
    let other = other_node(&schema).await;
    let app_id = app_id(&app, "ws_stale").await;
    let now = app.clock_now();
    let endpoint = hookd_core::model::Endpoint {
        id: hookd_core::id::IdKind::Endpoint.generate(now, &mut rand::thread_rng()),
        app_id: app_id.clone(),
        uid: None,
        url: app.receiver.url("/status/200"),
        description: String::new(),
        disabled: false,
        event_types: None,
        channels: None,
        throttle_rate: None,
        metadata: Default::default(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        headers: Default::default(),
        old_secrets: Vec::new(),
        failing_since: None,
        created_at: now,
        updated_at: now,
        destination: None,
    };
    hookd_store::CatalogStore::create_endpoint(&other, &endpoint)
        .await
        .unwrap();
    resend_from(&other, &app, &app_id, msg["id"].as_str().unwrap(), &endpoint.id).await;

    // The node claims it, misses the endpoint in its cached list, finds it in the database,
    // and gives the lease back after refreshing the list: it arrives well within the lease.
    let got = app.receiver.wait_for(1, |r| r.path == "/status/200").await;
    assert_eq!(got[0].header("webhook-id"), msg["id"].as_str());
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shutdown_gives_back_unsent_deliveries_so_another_node_sends_them_at_once() {
    let Ok(url) = std::env::var("HOOKD_TEST_POSTGRES_URL") else {
        eprintln!("HOOKD_TEST_POSTGRES_URL is not set; the shutdown hand-over test was not run");
        return;
    };
    let schema = TestSchema::create(&url).await;
    let first = crate::helpers::TestApp::spawn_on_postgres(&schema, |c| c.delivery.endpoint_concurrency = 1).await;
    first.create_app("ws_drain").await;
    first.create_endpoint("ws_drain", "/slow/300", json!({})).await;
    for i in 0..10 {
        first
            .send_message("ws_drain", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
    }
    let receiver = first.receiver.clone();
    // One request is being sent (one at a time to this endpoint), the rest wait behind it.
    receiver.wait_for(1, |r| r.path == "/slow/300").await;
    first.stop().await;
    let after_stop = receiver.requests().len();
    assert!(after_stop <= 2, "a shutdown sends nothing new: {after_stop} requests");

    // Another node on the same database takes over at once: with the default 5-minute lease,
    // only given-back leases make that possible within the test's wait.
    let second = crate::helpers::TestApp::spawn_on_postgres(&schema, |_| {}).await;
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    loop {
        let ids = receiver.webhook_ids();
        if ids.len() == 10 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of 10 messages delivered after the hand-over",
            ids.len()
        );
        receiver.changed(Duration::from_millis(200)).await;
    }
    let total = receiver.requests().len();
    assert!(
        total <= 11,
        "at most the one in-flight request is repeated: {total} requests for 10 messages"
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_still_in_flight_after_the_grace_period_is_abandoned_and_given_back() {
    let app = crate::helpers::TestApp::spawn_with(|c| c.delivery.shutdown_grace_secs = 1).await;
    app.create_app("ws_grace").await;
    app.create_endpoint("ws_grace", "/slow/10000", json!({})).await;
    let msg = app
        .send_message("ws_grace", json!({"eventType": "a.b", "payload": {}}))
        .await;
    // The receiver records a slow request only when it answers; the engine knows it is sending.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app.dispatcher.stats().in_flight == 0 {
        assert!(std::time::Instant::now() < deadline, "the request never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let store = app.store.clone();
    let now = app.clock_now();
    let started = std::time::Instant::now();
    let _data = app.stop_keeping_data().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "waited the grace period, not the 10 s request: {took:?}"
    );
    // Nothing was recorded for the abandoned request, and its delivery is claimable at once
    // (not after the 5-minute lease): a restart or another node sends it again.
    let msg_id = msg["id"].as_str().unwrap();
    let claimed = store
        .claim_due(now, now + chrono::Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "given back");
    assert_eq!(claimed[0].msg_id, msg_id);
    assert_eq!(claimed[0].total_attempts, 0, "no attempt was recorded");
}
