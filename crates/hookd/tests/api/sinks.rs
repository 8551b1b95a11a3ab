//! RabbitMQ and PostgreSQL destinations against the machine's own broker and database: what
//! arrives, signed how, in which order, once; failures as retried attempts; the address policy
//! on the broker's and the database's host; and a neighbour's hanging broker.

use std::time::Duration;

use hookd_signing::{verify, Secret, WebhookHeaders};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection as _, Row};

use crate::helpers::TestApp;

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub(crate) const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The PostgreSQL server the database destinations write to, as for the PostgreSQL suites:
/// named by `HOOKD_TEST_POSTGRES_URL` (`.ci/run` sets it).
pub(crate) fn postgres_url() -> Option<String> {
    let url = std::env::var("HOOKD_TEST_POSTGRES_URL").ok();
    if url.is_none() {
        eprintln!("HOOKD_TEST_POSTGRES_URL is not set; the PostgreSQL destination checks were not run");
    }
    url
}

/// A connection to the broker and a queue of the test's own, gone with the connection.
pub(crate) async fn queue(name: &str) -> (Connection, lapin::Channel) {
    let conn = Connection::connect(BROKER, ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (guest/guest)");
    let channel = conn.create_channel().await.unwrap();
    declare(&channel, name).await;
    (conn, channel)
}

async fn declare(channel: &lapin::Channel, name: &str) {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
}

/// One message taken from a queue: its body and its headers as text.
pub(crate) struct Got {
    pub body: Vec<u8>,
    message_id: Option<String>,
    content_type: Option<String>,
    pub headers: std::collections::BTreeMap<String, String>,
}

/// Takes `n` messages from `queue`, waiting (bounded) for them.
pub(crate) async fn take(channel: &lapin::Channel, queue: &str, n: usize) -> Vec<Got> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} messages reached {queue}",
            got.len()
        );
        let Some(m) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let p = &m.delivery.properties;
        let headers = p
            .headers()
            .as_ref()
            .map(|t| {
                t.inner()
                    .iter()
                    .map(|(k, v)| {
                        let text = match v {
                            AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                            other => format!("{other:?}"),
                        };
                        (k.to_string(), text)
                    })
                    .collect()
            })
            .unwrap_or_default();
        got.push(Got {
            body: m.delivery.data.clone(),
            message_id: p.message_id().as_ref().map(|s| s.to_string()),
            content_type: p.content_type().as_ref().map(|s| s.to_string()),
            headers,
        });
    }
    got
}

fn verifies(id: &str, timestamp: &str, signature: &str, body: &[u8]) -> bool {
    verifies_with(KEY, id, timestamp, signature, body)
}

/// Whether `signature` verifies with `key`.
fn verifies_with(key: &str, id: &str, timestamp: &str, signature: &str, body: &[u8]) -> bool {
    let headers = WebhookHeaders {
        id: id.into(),
        timestamp: timestamp.into(),
        signature: signature.into(),
    };
    let now = chrono::Utc::now().timestamp();
    verify(&Secret::parse(key).unwrap(), &headers, body, now, 600).is_ok()
}

/// The destination's attempts, newest first.
async fn attempts(app: &TestApp, app_uid: &str, dest: &str) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/api/v1/app/{app_uid}/attempt/endpoint/{dest}?limit=250"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

/// Waits (bounded) until the destination has an attempt that `matches`.
async fn wait_attempt(app: &TestApp, app_uid: &str, dest: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(a) = attempts(app, app_uid, dest).await.into_iter().find(&matches) {
            return a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such attempt: {:?}",
            attempts(app, app_uid, dest).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_stats(app: &TestApp, app_uid: &str, dest: &str, success: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, stats) = app.get(&format!("/api/v1/app/{app_uid}/endpoint/{dest}/stats")).await;
        if stats["success"].as_i64() == Some(success) || tokio::time::Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_rabbitmq_destination_publishes_each_message_signed_confirmed_and_in_order() {
    // Retries a minute apart: the test moves the clock to bring one on.
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![60; 5]).await;
    app.create_app("bus").await;
    let name = format!("hookd-sink-{:016x}", rand::random::<u64>());
    let (_conn, channel) = queue(&name).await;
    let (status, dest) = app
        .post(
            "/api/v1/app/bus/destination",
            json!({"type": "rabbitMq", "uid": "events", "batchSize": 10,
                   "config": {"uri": BROKER, "routingKey": name, "mandatory": true, "key": KEY}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dest}");
    // The SDK's `RabbitMqConfigOut`, the broker's password withheld.
    assert_eq!(
        dest["config"],
        json!({"uri": "amqp://guest:********@127.0.0.1:5672/%2f", "routingKey": name, "mandatory": true})
    );
    let (_, got) = app.get("/api/v1/app/bus/destination/events").await;
    assert!(!got.to_string().contains("guest:guest"), "{got}");

    let mut sent = Vec::new();
    for n in 0..25 {
        let m = app
            .send_message("bus", json!({"eventType": "order.paid", "payload": {"n": n}}))
            .await;
        sent.push(m["id"].as_str().unwrap().to_string());
    }
    let got = take(&channel, &name, 25).await;
    let order: Vec<String> = got.iter().map(|g| g.headers["webhook-id"].clone()).collect();
    assert_eq!(order, sent, "published in publish order, each once");
    for (g, n) in got.iter().zip(0..) {
        let id = &g.headers["webhook-id"];
        assert_eq!(g.message_id.as_deref(), Some(id.as_str()));
        assert_eq!(g.content_type.as_deref(), Some("application/json"));
        assert_eq!(g.headers["webhook-event-type"], "order.paid");
        assert_eq!(serde_json::from_slice::<Value>(&g.body).unwrap(), json!({"n": n}));
        assert!(
            verifies(
                id,
                &g.headers["webhook-timestamp"],
                &g.headers["webhook-signature"],
                &g.body
            ),
            "{id} is signed with the destination's key"
        );
    }
    let stats = wait_stats(&app, "bus", "events", 25).await;
    assert_eq!(
        (stats["success"].as_i64(), stats["pending"].as_i64()),
        (Some(25), Some(0)),
        "{stats}"
    );
    // The dashboard's traffic charts count them, stored or still in memory.
    let minute = hookd::traffic::minute_of(app.clock_now());
    let live = hookd_core::model::Environment::Live;
    let mut counted = app.store.traffic(live, minute - 5, minute + 5).await.unwrap();
    counted.extend(app.dispatcher.traffic().unstored(live, minute - 5, minute + 5));
    let sum = |f: fn(&hookd_store::TrafficMinute) -> i64| counted.iter().map(f).sum::<i64>();
    assert_eq!((sum(|m| m.attempts), sum(|m| m.succeeded)), (25, 25));
    assert_eq!(
        sum(|m| m.latency.iter().sum::<i64>()),
        25,
        "publish-to-delivered latencies"
    );
    let log = attempts(&app, "bus", "events").await;
    assert!(
        log.iter()
            .all(|a| a["status"] == 0 && a["url"] == "amqp://guest:********@127.0.0.1:5672/%2f"),
        "{log:?}"
    );
    assert!(log
        .iter()
        .any(|a| a["response"].as_str().unwrap().contains("confirmed by the broker")));

    // `mandatory`: with no queue bound for the routing key, the broker returns the message;
    // that is a failed attempt, retried on the schedule, and it arrives once the queue exists.
    let missing = format!("{name}-later");
    let (status, patched) = app
        .call(
            "PATCH",
            "/api/v1/app/bus/destination/events",
            Some(json!({"type": "rabbitMq", "config": {"routingKey": missing}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["config"]["uri"], "amqp://guest:********@127.0.0.1:5672/%2f",
        "the URI is kept"
    );
    let late = app
        .send_message("bus", json!({"eventType": "order.paid", "payload": {"n": "late"}}))
        .await;
    let failed = wait_attempt(&app, "bus", "events", |a| a["msgId"] == late["id"]).await;
    assert_eq!(failed["status"], 2, "{failed}");
    assert!(failed["response"].as_str().unwrap().contains("unroutable"), "{failed}");
    declare(&channel, &missing).await;
    // Past the retry's time, jitter included.
    app.advance(Duration::from_secs(120));
    let got = take(&channel, &missing, 1).await;
    assert_eq!(got[0].headers["webhook-id"], late["id"].as_str().unwrap());
    let stats = wait_stats(&app, "bus", "events", 26).await;
    assert_eq!(stats["success"], 26, "{stats}");

    // A rotated key signs beside the new one until its grace period ends, then no longer (the
    // clock stays within the verifier's tolerance of real time).
    let rotated = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let (status, body) = app
        .post(
            "/api/v1/app/bus/destination/events/secret/rotate",
            json!({"key": rotated, "gracePeriodSeconds": 300}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let signed_by = |g: &Got| {
        let h = &g.headers;
        [KEY, rotated].map(|key| {
            verifies_with(
                key,
                &h["webhook-id"],
                &h["webhook-timestamp"],
                &h["webhook-signature"],
                &g.body,
            )
        })
    };
    app.send_message("bus", json!({"eventType": "order.paid", "payload": {"n": "both"}}))
        .await;
    let got = take(&channel, &missing, 1).await;
    assert_eq!(signed_by(&got[0]), [true, true], "{:?}", got[0].headers);
    app.advance(Duration::from_secs(301));
    app.send_message("bus", json!({"eventType": "order.paid", "payload": {"n": "new"}}))
        .await;
    let got = take(&channel, &missing, 1).await;
    assert_eq!(
        signed_by(&got[0]),
        [false, true],
        "the old key no longer signs: {:?}",
        got[0].headers
    );
}

#[tokio::test]
async fn a_postgres_destination_inserts_each_message_once_as_a_signed_row() {
    let Some(url) = postgres_url() else { return };
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![60; 5]).await;
    app.create_app("warehouse").await;
    let schema = hookd_store_postgres::testing::TestSchema::create(&url).await;
    let table = format!("{}.events", schema.name());
    let (status, dest) = app
        .post(
            "/api/v1/app/warehouse/destination",
            json!({"type": "postgres", "uid": "rows", "batchSize": 50, "maxWaitSecs": 60,
                   "config": {"url": url.clone(), "password": "pw-never-shown", "tableName": table, "key": KEY}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dest}");
    assert_eq!(dest["config"], json!({"url": url.clone(), "tableName": table}));
    assert!(!dest.to_string().contains("pw-never-shown"));

    let mut sent = Vec::new();
    for n in 0..120 {
        let m = app
            .send_message("warehouse", json!({"eventType": "stock.moved", "eventId": format!("evt-{n}"), "payload": {"sku": format!("s-{n}"), "qty": n, "nested": {"b": 1, "a": [1, 2]}}}))
            .await;
        sent.push(m["id"].as_str().unwrap().to_string());
    }
    // Two full batches go at once; the last 20 wait up to maxWaitSecs for more.
    let stats = wait_stats(&app, "warehouse", "rows", 100).await;
    assert_eq!(
        (stats["success"].as_i64(), stats["pending"].as_i64()),
        (Some(100), Some(20)),
        "{stats}"
    );
    app.advance(Duration::from_secs(61));
    let stats = wait_stats(&app, "warehouse", "rows", 120).await;
    assert_eq!(
        (stats["success"].as_i64(), stats["pending"].as_i64()),
        (Some(120), Some(0)),
        "{stats}"
    );

    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let rows = sqlx::query(&format!(
        "SELECT id, event_type, payload::text AS body, signature, extract(epoch FROM timestamp)::bigint AS ts, event_id, payload->>'sku' AS sku \
         FROM \"{}\".\"events\"",
        schema.name()
    ))
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 120, "one row per message");
    let mut ids: Vec<String> = Vec::new();
    for row in &rows {
        let id: String = row.get("id");
        let n = sent.iter().position(|s| *s == id).expect("a published message");
        assert_eq!(row.get::<String, _>("event_type"), "stock.moved");
        assert_eq!(row.get::<Option<String>, _>("sku"), Some(format!("s-{n}")));
        assert_eq!(row.get::<Option<String>, _>("event_id"), Some(format!("evt-{n}")));
        let body: String = row.get("body");
        let ts: i64 = row.get("ts");
        assert!(
            verifies(&id, &ts.to_string(), row.get("signature"), body.as_bytes()),
            "{id}'s signature verifies over payload::text"
        );
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 120);
    // Each message has its attempt, carrying its batch's answer: two batches of 50, one of 20.
    let log = attempts(&app, "warehouse", "rows").await;
    let mut batches: Vec<String> = log
        .iter()
        .map(|a| a["response"].as_str().unwrap().to_string())
        .collect();
    batches.sort();
    batches.dedup_by(|a, b| a == b);
    let inserted = |n: usize| format!("{n} row(s) inserted into \"{}\".\"events\"", schema.name());
    let sizes: Vec<usize> = log
        .iter()
        .map(|a| a["response"].as_str().unwrap())
        .map(|r| r.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(sizes.iter().filter(|n| **n == 50).count(), 100, "{batches:?}");
    assert_eq!(sizes.iter().filter(|n| **n == 20).count(), 20, "{batches:?}");
    assert!(log.iter().any(|a| a["response"] == inserted(20)));
    assert!(
        log.iter().all(|a| a["url"] == format!("{}#{table}", url.clone())),
        "{log:?}"
    );

    // Idempotent on the id: sending a message again inserts nothing new.
    let first = &sent[0];
    let dest_id = dest["id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/api/v1/app/warehouse/msg/{first}/endpoint/{dest_id}/resend"),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let again = wait_attempt(&app, "warehouse", "rows", |a| {
        a["msgId"] == first.as_str() && a["response"].as_str().unwrap().contains("already there")
    })
    .await;
    assert_eq!(again["status"], 0, "{again}");
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\".\"events\"", schema.name()))
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(count, 120);

    // The stored password goes only to the server it was given for: moving the destination
    // to another host needs it again.
    let (status, body) = app
        .call(
            "PATCH",
            "/api/v1/app/warehouse/destination/rows",
            Some(json!({"type": "postgres", "config": {"url": "postgres://postgres@127.0.0.2:5432/test"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "config", "password"]),
        "{body}"
    );
    // A table the destination cannot write is a failed attempt, retried on the schedule.
    let elsewhere = format!("{}_later", schema.name());
    let (status, patched) = app
        .call(
            "PATCH",
            "/api/v1/app/warehouse/destination/rows",
            Some(json!({"type": "postgres", "config": {"tableName": format!("{elsewhere}.events")}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let late = app
        .send_message(
            "warehouse",
            json!({"eventType": "stock.moved", "payload": {"sku": "late"}}),
        )
        .await;
    // Alone in its batch, it goes once maxWaitSecs is up.
    app.advance(Duration::from_secs(61));
    let failed = wait_attempt(&app, "warehouse", "rows", |a| a["msgId"] == late["id"]).await;
    assert_eq!(failed["status"], 2, "{failed}");
    assert!(
        failed["response"].as_str().unwrap().contains("cannot create table"),
        "{failed}"
    );
    sqlx::query(&format!("CREATE SCHEMA \"{elsewhere}\""))
        .execute(&mut db)
        .await
        .unwrap();
    app.advance(Duration::from_secs(120));
    let stats = wait_stats(&app, "warehouse", "rows", 122).await;
    let landed: Option<String> = sqlx::query_scalar(&format!("SELECT id FROM \"{elsewhere}\".\"events\""))
        .fetch_optional(&mut db)
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA \"{elsewhere}\" CASCADE"))
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(landed.as_deref(), late["id"].as_str(), "{stats}");
}

#[tokio::test]
async fn the_address_policy_applies_to_the_brokers_and_the_databases_host() {
    // Loopback is refused to live applications once the allow-list is off.
    let app = TestApp::spawn_with(|c| c.delivery.allowed_subnets = vec![]).await;
    app.create_app("guarded").await;
    let name = format!("hookd-sink-{:016x}", rand::random::<u64>());
    let (_conn, channel) = queue(&name).await;
    let pg = postgres_url();
    let mut targets = vec![(
        "bus",
        json!({"type": "rabbitMq", "uid": "bus", "config": {"uri": BROKER, "routingKey": name}}),
    )];
    if let Some(url) = &pg {
        targets.push((
            "db",
            json!({"type": "postgres", "uid": "db", "config": {"url": url, "tableName": "public.hookd_never"}}),
        ));
    }
    for (uid, body) in targets.clone() {
        let (status, dest) = app.post("/api/v1/app/guarded/destination", body).await;
        assert_eq!(status, StatusCode::CREATED, "{uid}: {dest}");
    }
    let m = app
        .send_message("guarded", json!({"eventType": "a.b", "payload": {}}))
        .await;
    for (uid, _) in targets {
        let refused = wait_attempt(&app, "guarded", uid, |a| a["msgId"] == m["id"]).await;
        assert_eq!(refused["status"], 2, "{refused}");
        let why = refused["response"].as_str().unwrap();
        assert!(
            why.contains("loopback") && why.contains("delivery.allowed_subnets"),
            "{uid}: {why}"
        );
    }
    let nothing = channel
        .basic_get(name.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert!(nothing.is_none(), "nothing reached the broker");
    if let Some(url) = pg {
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        let made: Option<String> = sqlx::query_scalar("SELECT to_regclass('public.hookd_never')::text")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(made, None, "nothing reached the database");
    }
}

#[tokio::test]
async fn a_neighbours_hanging_broker_does_not_hold_up_another_tenants_destination() {
    let app = TestApp::spawn_with(|c| c.delivery.timeout_secs = 3).await;
    // A "broker" that accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = silent.accept().await {
            keep.lock().unwrap().push(socket);
        }
    });
    app.create_app("noisy").await;
    let mut noisy = Vec::new();
    for k in 0..12 {
        let (status, dest) = app
            .post(
                "/api/v1/app/noisy/destination",
                json!({"type": "rabbitMq", "config": {"uri": format!("amqp://guest:guest@127.0.0.1:{port}/%2f"), "routingKey": format!("q{k}")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{dest}");
        noisy.push(dest["id"].as_str().unwrap().to_string());
    }
    for n in 0..12 {
        app.send_message("noisy", json!({"eventType": "a.b", "payload": {"n": n}}))
            .await;
    }
    app.create_app("quiet").await;
    let name = format!("hookd-sink-{:016x}", rand::random::<u64>());
    let (_conn, channel) = queue(&name).await;
    let (status, dest) = app
        .post(
            "/api/v1/app/quiet/destination",
            json!({"type": "rabbitMq", "config": {"uri": BROKER, "routingKey": name}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dest}");
    // Let the neighbour's lanes hang on their silent broker first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    app.send_message("quiet", json!({"eventType": "a.b", "payload": {"mine": true}}))
        .await;
    let got = take(&channel, &name, 1).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&got[0].body).unwrap(),
        json!({"mine": true})
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "delivered while the neighbour's 12 destinations hang: {:?}",
        started.elapsed()
    );
    assert!(
        held.lock().unwrap().len() <= 8,
        "at most 8 of one application's lanes (and connections) at once: {}",
        held.lock().unwrap().len()
    );
    // Once the neighbour's destinations are gone and the delivery timeout has passed, every
    // connection to the silent broker has been given up and closed: a hanging broker leaves no
    // connection (or the thread that serves it) behind.
    for id in &noisy {
        let (status, _) = app
            .call("DELETE", &format!("/api/v1/app/noisy/destination/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let sockets: Vec<tokio::net::TcpStream> = std::mem::take(&mut *held.lock().unwrap());
    assert!(!sockets.is_empty());
    let mut open = 0;
    for socket in sockets {
        let closed = tokio::time::timeout(Duration::from_secs(2), async {
            let mut buf = [0u8; 64];
            loop {
                socket.readable().await.unwrap();
                match socket.try_read(&mut buf) {
                    // Closed (or reset) by hookd.
                    Ok(0) => return,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return,
                    // The protocol header it sent, or nothing yet.
                    _ => {}
                }
            }
        })
        .await;
        if closed.is_err() {
            open += 1;
        }
    }
    assert_eq!(open, 0, "connections to the silent broker left open");
}

#[tokio::test]
async fn a_destinations_credential_is_sealed_at_rest_and_still_used() {
    let key = hookd_store::secrets::generate_key();
    let app = TestApp::spawn_with(|c| c.secrets.main_key = key.clone()).await;
    app.create_app("sealed").await;
    let name = format!("hookd-sink-{:016x}", rand::random::<u64>());
    let (_conn, channel) = queue(&name).await;
    let (status, bus) = app
        .post(
            "/api/v1/app/sealed/destination",
            json!({"type": "rabbitMq", "config": {"uri": BROKER, "routingKey": name}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bus}");
    let (status, db) = app
        .post(
            "/api/v1/app/sealed/destination",
            json!({"type": "postgres", "status": "disabled",
                   "config": {"url": "postgres://hooks@127.0.0.1:5432/app", "password": "pw-sealed-9f3", "tableName": "sealed_events"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{db}");
    let (_, list) = app.get("/api/v1/app/sealed/destination").await;
    assert!(
        !list.to_string().contains("guest:guest") && !list.to_string().contains("pw-sealed-9f3"),
        "{list}"
    );
    // Unsealed to connect: the broker takes the message.
    app.send_message("sealed", json!({"eventType": "a.b", "payload": {"k": 1}}))
        .await;
    let got = take(&channel, &name, 1).await;
    assert_eq!(serde_json::from_slice::<Value>(&got[0].body).unwrap(), json!({"k": 1}));
    if std::env::var("HOOKD_TEST_BACKEND").as_deref() != Ok("postgres") {
        let mut raw = Vec::new();
        for file in ["hookd.db", "hookd.db-wal"] {
            raw.extend(std::fs::read(app.data_dir().join(file)).unwrap_or_default());
        }
        let has = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(has("sealed_events"), "the scan sees plaintext where there is some");
        assert!(!has("guest:guest"), "the broker URI is sealed");
        assert!(!has("pw-sealed-9f3"), "the database password is sealed");
        assert!(has("hkenc1:"));
    }
}
