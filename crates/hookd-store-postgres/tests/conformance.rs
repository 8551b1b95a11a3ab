//! Runs the shared [`hookd_store::conformance`] suite against PostgreSQL, plus what only a
//! backend shared by several nodes must do.
//!
//! The server comes from `HOOKD_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); without it every test says so on stderr and
//! returns, so `cargo test` passes on a machine without PostgreSQL. Every test gets a schema of
//! its own (`hookd_t_<random hex>`), made the search_path of its store's connections, so tests
//! run in parallel on one database without seeing each other; the schema is dropped when the
//! test ends, passed or failed.

use std::collections::BTreeMap;
use std::io::Write;

use sqlx::Connection;

use hookd_core::id::IdKind;
use hookd_core::model::{Application, Attempt, Endpoint, Environment, Message, MessageStatus, TriggerType};
use hookd_store::conformance::at;
use hookd_store::prelude::*;
use hookd_store::{AttemptRecord, IdempotencyState, NewDelivery, TaskRecord, TaskStatus};
use hookd_store_postgres::testing::TestSchema;
use hookd_store_postgres::PostgresStore;

const URL_VAR: &str = "HOOKD_TEST_POSTGRES_URL";

/// A fresh, migrated store in a schema of its own, or `None` (after saying so) when no server
/// is configured.
async fn fresh_store() -> Option<(PostgresStore, TestSchema)> {
    let Ok(url) = std::env::var(URL_VAR) else {
        // Straight to the process's stderr: the test harness captures `eprintln!` of passing
        // tests, and a suite that silently ran nothing must not look like one that passed.
        // One write, so lines from tests running in parallel do not interleave.
        let line = format!("{URL_VAR} is not set; PostgreSQL conformance not run\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
        return None;
    };
    let schema = TestSchema::create(&url).await;
    let store = PostgresStore::connect(&schema.store_url(), schema.options())
        .await
        .expect("connect and migrate a fresh PostgreSQL store");
    Some((store, schema))
}

hookd_store::store_conformance_tests!(fresh_store);

// ----- what a shared backend does differently -----

/// An application with one endpoint, stored, and ids from a fixed seed.
async fn app_with_endpoint(store: &dyn Store, rng: &mut rand::rngs::StdRng) -> Endpoint {
    let app = Application {
        id: IdKind::Application.generate(at(0), rng),
        env: Environment::Live,
        uid: None,
        name: "Acme".to_string(),
        metadata: BTreeMap::new(),
        throttle_rate: None,
        created_at: at(0),
        updated_at: at(0),
    };
    store.create_application(&app).await.unwrap();
    let ep = Endpoint {
        id: IdKind::Endpoint.generate(at(0), rng),
        app_id: app.id.clone(),
        uid: None,
        url: "https://receiver.example/hooks".to_string(),
        description: String::new(),
        disabled: false,
        event_types: None,
        channels: None,
        throttle_rate: None,
        metadata: BTreeMap::new(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        headers: BTreeMap::new(),
        old_secrets: Vec::new(),
        failing_since: None,
        created_at: at(0),
        updated_at: at(0),
        destination: None,
    };
    store.create_endpoint(&ep).await.unwrap();
    ep
}

/// Stores a message created at `t` with one delivery to `ep`, due then.
async fn send(store: &dyn Store, rng: &mut rand::rngs::StdRng, ep: &Endpoint, t: i64) -> NewDelivery {
    let (msg, d) = message_to(ep, rng, t);
    store.create_message(&msg, std::slice::from_ref(&d)).await.unwrap();
    d
}

/// A message created at `t` with one delivery to `ep`, due then, not stored.
fn message_to(ep: &Endpoint, rng: &mut rand::rngs::StdRng, t: i64) -> (Message, NewDelivery) {
    let msg = Message {
        id: IdKind::Message.generate(at(t), rng),
        app_id: ep.app_id.clone(),
        event_id: None,
        event_type: "user.created".to_string(),
        channels: None,
        payload: Some("{}".to_string()),
        created_at: at(t),
        expires_at: at(t + 86_400),
    };
    let d = NewDelivery {
        id: IdKind::Delivery.generate(at(t), rng),
        msg_id: msg.id.clone(),
        endpoint_id: ep.id.clone(),
        app_id: ep.app_id.clone(),
        due_at: at(t),
        leased_until: None,
        lease_token: 0,
        lane: None,
    };
    (msg, d)
}

fn seeded() -> rand::rngs::StdRng {
    rand::SeedableRng::seed_from_u64(0x5ba7_ed00)
}

/// A node starting up (another store on the same schema) releases nothing: a delivery leased
/// by a running node stays unclaimable until its lease expires, and that node's running task
/// stays running.
#[tokio::test]
async fn release_stale_leases_on_a_shared_backend_leaves_other_nodes_leases() {
    let Some((node_a, schema)) = fresh_store().await else {
        return;
    };
    let mut rng = seeded();
    let ep = app_with_endpoint(&node_a, &mut rng).await;
    let d = send(&node_a, &mut rng, &ep, 0).await;
    let claimed = node_a.claim_due(at(0), at(1000), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let task = TaskRecord {
        id: IdKind::Task.generate(at(1), &mut rng),
        app_id: ep.app_id.clone(),
        endpoint_id: Some(ep.id.clone()),
        kind: "endpoint.recover".to_string(),
        status: TaskStatus::Running,
        data: serde_json::json!({"messagesSent": 3}),
        created_at: at(1),
        updated_at: at(1),
    };
    node_a.create_task(&task).await.unwrap();

    let node_b = PostgresStore::connect(&schema.store_url(), schema.options())
        .await
        .expect("a second node");
    assert_eq!(node_b.release_stale_leases(at(0)).await.expect("release"), 0);

    assert!(node_b.claim_due(at(10), at(40), 10).await.unwrap().is_empty());
    assert!(node_a.claim_due(at(999), at(1030), 10).await.unwrap().is_empty());
    let reclaimed = node_b.claim_due(at(1001), at(1030), 10).await.unwrap();
    let ids: Vec<&str> = reclaimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec![d.id.as_str()]);
    let kept = node_b.get_task(Environment::Live, &task.id).await.unwrap();
    assert_eq!(kept, Some(task));
    node_b.close().await;
}

/// Two nodes (two pools) claiming the same queue at once split it: no delivery is handed out
/// twice, and between them every due delivery is handed out.
#[tokio::test]
async fn nodes_claiming_at_once_split_the_queue_between_them() {
    let Some((node_a, schema)) = fresh_store().await else {
        return;
    };
    let node_b = PostgresStore::connect(&schema.store_url(), schema.options())
        .await
        .expect("a second node");
    let mut rng = seeded();
    let ep = app_with_endpoint(&node_a, &mut rng).await;
    let mut expected = Vec::new();
    for t in 0..40 {
        expected.push(send(&node_a, &mut rng, &ep, t).await.id);
    }

    let mut seen = Vec::new();
    for _ in 0..10 {
        let (a, b) = tokio::join!(
            node_a.claim_due(at(100), at(200), 3),
            node_b.claim_due(at(100), at(200), 3)
        );
        seen.extend(a.unwrap().into_iter().chain(b.unwrap()).map(|c| c.id));
    }
    let handed_out = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), handed_out, "a delivery was claimed by both nodes");
    let rest = node_a.claim_due(at(100), at(200), 100).await.unwrap();
    seen.extend(rest.into_iter().map(|c| c.id));
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
    node_b.close().await;
}

/// Migrating an up-to-date schema applies nothing, however many nodes start.
#[tokio::test]
async fn migrating_a_current_schema_applies_nothing() {
    let Some((store, schema)) = fresh_store().await else {
        return;
    };
    assert_eq!(store.migrate().await.expect("migrate again"), Vec::<i64>::new());
    let late = PostgresStore::connect_unmigrated(&schema.store_url(), schema.options())
        .await
        .expect("connect without migrating");
    let (a, b) = tokio::join!(store.migrate(), late.migrate());
    assert_eq!((a.unwrap(), b.unwrap()), (vec![], vec![]));
    late.close().await;
}

/// Migration 11 keys attempts by (message, id): an attempt stored at schema 10 reads back
/// unchanged afterwards; the table is left with its primary key on those columns and
/// `attempt_endpoint`, nothing else; and a read by message and id, a listing by message and a
/// deletion by message can all walk that key (with sequential scans off, so the plans show
/// what an index can serve rather than what an empty table makes cheapest).
#[tokio::test]
async fn attempts_are_keyed_by_their_message_from_migration_11_on() {
    let Ok(url) = std::env::var(URL_VAR) else {
        let line = format!("{URL_VAR} is not set; PostgreSQL conformance not run\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
        return;
    };
    let schema = TestSchema::create(&url).await;
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!("SET search_path = {}", schema.name()))
        .execute(&mut admin)
        .await
        .unwrap();
    for (version, sql) in hookd_store_postgres::migrate::MIGRATIONS
        .iter()
        .filter(|(v, _)| *v <= 10)
    {
        sqlx::raw_sql(sql).execute(&mut admin).await.unwrap();
        sqlx::raw_sql(&format!(
            "CREATE TABLE IF NOT EXISTS schema_migration (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL); \
             INSERT INTO schema_migration VALUES ({version}, 0)"
        ))
        .execute(&mut admin)
        .await
        .unwrap();
    }
    sqlx::raw_sql(
        "INSERT INTO attempt (id, delivery_id, msg_id, endpoint_id, app_id, url, response, response_status_code, \
         response_duration_ms, status, trigger_type, attempt_number, created_at) \
         VALUES ('atmpt_1', 'msgep_1', 'msg_1', 'ep_1', 'app_1', 'http://127.0.0.1:9/hook', 'ok', 200, 3, 0, 0, 1, 7)",
    )
    .execute(&mut admin)
    .await
    .unwrap();

    let store = PostgresStore::connect_unmigrated(&schema.store_url(), schema.options())
        .await
        .expect("connect without migrating");
    assert_eq!(store.migrate().await.expect("migrate"), vec![11, 12]);
    let attempt = store.get_attempt("msg_1", "atmpt_1").await.unwrap().expect("kept");
    assert_eq!(
        (
            attempt.endpoint_id.as_str(),
            attempt.response.as_str(),
            attempt.response_status_code
        ),
        ("ep_1", "ok", 200)
    );
    store.close().await;

    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'attempt' \
         ORDER BY indexname",
    )
    .bind(schema.name())
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let names: Vec<&str> = indexes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["attempt_endpoint", "attempt_pkey"]);
    assert!(
        indexes[1].1.contains("UNIQUE") && indexes[1].1.ends_with("(msg_id, id)"),
        "{}",
        indexes[1].1
    );

    sqlx::raw_sql("SET enable_seqscan = off")
        .execute(&mut admin)
        .await
        .unwrap();
    for statement in [
        "SELECT * FROM attempt WHERE id = 'atmpt_1' AND msg_id = 'msg_1'",
        "SELECT * FROM attempt WHERE msg_id = 'msg_1' ORDER BY id DESC LIMIT 50",
        "DELETE FROM attempt WHERE msg_id IN ('msg_1', 'msg_2')",
    ] {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {statement}"))
            .fetch_all(&mut admin)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("attempt_pkey") && !plan.contains("Seq Scan"),
            "{statement}:\n{plan}"
        );
    }
}

/// Requests racing for one idempotency key on two nodes: exactly one starts, every other sees
/// it in progress.
#[tokio::test]
async fn idempotency_key_raced_by_two_nodes_is_started_exactly_once() {
    let Some((node_a, schema)) = fresh_store().await else {
        return;
    };
    let node_b = PostgresStore::connect(&schema.store_url(), schema.options())
        .await
        .expect("a second node");
    let begin = |store: &PostgresStore| {
        let store = store.clone();
        async move { store.idempotency_begin("race", at(0), at(-60), at(86_400)).await }
    };
    let (a1, b1, a2, b2) = tokio::join!(begin(&node_a), begin(&node_b), begin(&node_a), begin(&node_b));
    let states = [a1, b1, a2, b2].map(|r| r.expect("idempotency_begin"));
    let started = states.iter().filter(|s| **s == IdempotencyState::Started).count();
    let waiting = states.iter().filter(|s| **s == IdempotencyState::InProgress).count();
    assert_eq!((started, waiting), (1, 3), "{states:?}");
    node_b.close().await;
}

/// One batch holding several outcomes for the same delivery and endpoint ends where recording
/// them one by one would: the last outcome decides the delivery's state, every outcome counts
/// as an attempt, and endpoint health follows the order (an exhaustion after a success marks
/// the endpoint failing from the exhaustion; a success after it clears it).
#[tokio::test]
async fn a_batch_recording_one_delivery_twice_ends_as_recording_in_turn_would() {
    let Some((store, _schema)) = fresh_store().await else {
        return;
    };
    let mut rng = seeded();
    let ep = app_with_endpoint(&store, &mut rng).await;
    let d = send(&store, &mut rng, &ep, 0).await;
    let outcome = |rng: &mut rand::rngs::StdRng, when: i64, code: i64, status, next: Option<i64>| {
        let ok = (200..300).contains(&code);
        AttemptRecord {
            delivery_id: d.id.clone(),
            attempt: Attempt {
                id: IdKind::Attempt.generate(at(when), rng),
                msg_id: d.msg_id.clone(),
                endpoint_id: ep.id.clone(),
                url: ep.url.clone(),
                response: String::new(),
                response_status_code: code,
                response_duration_ms: 1,
                status: if ok {
                    MessageStatus::Success
                } else {
                    MessageStatus::Fail
                },
                trigger_type: TriggerType::Scheduled,
                attempt_number: 1,
                request_headers: Default::default(),
                response_headers: Vec::new(),
                created_at: at(when),
            },
            delivery_status: status,
            next_attempt_at: next.map(at),
            scheduled_attempts: 1,
            park: false,
            lease_token: 0,
            row: None,
            events: Vec::new(),
        }
    };
    let failing_since = || async {
        let found = store.get_endpoint(&ep.app_id, &ep.id).await.unwrap();
        found.expect("endpoint").failing_since
    };

    // Failing from an earlier run: a success in the batch must clear this before the
    // exhaustion after it starts a new run.
    let earlier = Endpoint {
        failing_since: Some(at(-10)),
        ..ep.clone()
    };
    store.update_endpoint(&earlier).await.unwrap();

    let batch = [
        outcome(&mut rng, 1, 500, MessageStatus::Sending, Some(2)),
        outcome(&mut rng, 2, 200, MessageStatus::Success, None),
        outcome(&mut rng, 3, 500, MessageStatus::Fail, None),
        outcome(&mut rng, 4, 503, MessageStatus::Sending, Some(50)),
    ];
    store.record_attempts(&batch).await.expect("record");
    let state = store.get_delivery(&d.msg_id, &ep.id).await.unwrap().expect("delivery");
    assert_eq!(
        (state.status, state.next_attempt_at),
        (MessageStatus::Sending, Some(at(50)))
    );
    assert_eq!(failing_since().await, Some(at(3)));
    let claims = store.claim_due(at(50), at(80), 10).await.unwrap();
    let counts: Vec<(i64, i64)> = claims
        .iter()
        .map(|c| (c.scheduled_attempts, c.total_attempts))
        .collect();
    assert_eq!(counts, vec![(1, 4)]);

    let batch = [
        outcome(&mut rng, 60, 500, MessageStatus::Fail, None),
        outcome(&mut rng, 61, 200, MessageStatus::Success, None),
    ];
    store.record_attempts(&batch).await.expect("record");
    assert_eq!(failing_since().await, None);
}

/// Lease renewals and releases lock their deliveries in id order, as the attempt recorder
/// does, so two of them never deadlock (PostgreSQL would stall both for a second and cancel
/// one). Shown with the highest id held elsewhere: a renewal given its leases highest first
/// waits there already holding every lower one.
#[tokio::test]
async fn lease_renewals_and_releases_lock_their_deliveries_in_id_order() {
    use sqlx::Connection;
    let Some((store, schema)) = fresh_store().await else {
        return;
    };
    let mut rng = seeded();
    let ep = app_with_endpoint(&store, &mut rng).await;
    for t in 0..5 {
        send(&store, &mut rng, &ep, t).await;
    }
    let claimed = store.claim_due(at(10), at(1000), 10).await.unwrap();
    assert_eq!(claimed.len(), 5);
    let mut leases: Vec<(String, i64)> = claimed.iter().map(|c| (c.id.clone(), c.lease_token)).collect();
    leases.sort();
    leases.reverse();
    let (highest, lowest) = (leases[0].0.clone(), leases[4].0.clone());
    let table = format!("\"{}\".delivery", schema.name());
    let url = std::env::var(URL_VAR).unwrap();
    // Rewrite the rows highest id first, so the table's own order (and any scan in it) meets
    // the highest id first: locking in the order rows are found would take it first.
    let mut shuffle = sqlx::PgConnection::connect(&url).await.unwrap();
    for (id, _) in &leases {
        sqlx::query(&format!("UPDATE {table} SET updated_at = updated_at + 1 WHERE id = $1"))
            .bind(id)
            .execute(&mut shuffle)
            .await
            .unwrap();
    }

    for release in [false, true] {
        let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
        let mut probe = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
        sqlx::query(&format!("SELECT id FROM {table} WHERE id = $1 FOR UPDATE"))
            .bind(&highest)
            .execute(&mut holder)
            .await
            .unwrap();
        let writer = {
            let (store, leases) = (store.clone(), leases.clone());
            tokio::spawn(async move {
                match release {
                    false => store.renew_leases(&leases, at(2000)).await.map(|_| ()),
                    true => store.release_leases(&leases, at(2000)).await,
                }
            })
        };
        // The lowest id is taken first: a probe that will not wait finds it locked.
        let mut lowest_locked = false;
        for _ in 0..100 {
            let probe_lock = sqlx::query(&format!("SELECT id FROM {table} WHERE id = $1 FOR UPDATE NOWAIT"))
                .bind(&lowest)
                .execute(&mut probe)
                .await;
            if probe_lock.is_err() {
                lowest_locked = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            lowest_locked,
            "release {release}: the lowest id was not locked while the highest was waited for"
        );
        assert!(!writer.is_finished(), "it waits for the highest id");
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        writer.await.unwrap().expect("done once the highest id is free");
    }
    // Released: all five are due again for any node, from the time the release was made.
    assert_eq!(store.claim_due(at(2001), at(3000), 10).await.unwrap().len(), 5);
}

/// While the database is slow, one application's burst takes at most its share of the queue
/// of publishes waiting to be stored: the rest of its burst is refused at once
/// (`Unavailable`, answered 503), while another application's publish still queues, and every
/// queued publish is stored once the database is back.
#[tokio::test]
async fn one_applications_burst_takes_only_its_share_of_the_publish_queue() {
    use sqlx::Connection;
    let Some((store, schema)) = fresh_store().await else {
        return;
    };
    let mut rng = seeded();
    let noisy = app_with_endpoint(&store, &mut rng).await.app_id;
    let quiet = app_with_endpoint(&store, &mut rng).await.app_id;
    let message = |app: &str, n: i64, rng: &mut rand::rngs::StdRng| Message {
        id: IdKind::Message.generate(at(n), rng),
        app_id: app.to_string(),
        event_id: None,
        event_type: "user.created".to_string(),
        channels: None,
        payload: Some("{}".to_string()),
        created_at: at(n),
        expires_at: at(n + 86_400),
    };
    // The database is slow: every insert into `message` waits for this lock.
    let mut holder = sqlx::PgConnection::connect(&std::env::var(URL_VAR).unwrap())
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(&format!("LOCK TABLE \"{}\".message IN EXCLUSIVE MODE", schema.name()))
        .execute(&mut holder)
        .await
        .unwrap();

    let burst = 1_100;
    let share = 1_024; // a quarter of the 4,096 places
    let mut publishes = Vec::new();
    for n in 0..burst {
        let (store, m) = (store.clone(), message(&noisy, n, &mut rng));
        publishes.push(tokio::spawn(async move { store.create_message(&m, &[]).await }));
    }
    let refused_at_once = async {
        loop {
            if publishes.iter().filter(|p| p.is_finished()).count() >= (burst - share) as usize {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), refused_at_once)
        .await
        .expect("the burst beyond the share is refused at once");
    let quiet_message = message(&quiet, 0, &mut rng);
    let quiet_publish = {
        let (store, m) = (store.clone(), quiet_message.clone());
        tokio::spawn(async move { store.create_message(&m, &[]).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !quiet_publish.is_finished(),
        "the other application's publish queues, not refused"
    );
    let finished = publishes.iter().filter(|p| p.is_finished()).count();
    assert_eq!(
        finished,
        (burst - share) as usize,
        "only the burst beyond the share ended early"
    );

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    quiet_publish
        .await
        .unwrap()
        .expect("the other application's publish is stored");
    let (mut stored, mut refused) = (0, 0);
    for p in publishes {
        match p.await.unwrap() {
            Ok(()) => stored += 1,
            Err(hookd_store::StoreError::Unavailable(_)) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((stored, refused), (share, burst - share));
    assert!(store.get_message(&quiet, &quiet_message.id).await.unwrap().is_some());
}

/// Recording attempts, claiming and reading claimed messages never walk the delivery table,
/// also on connections that first ran while the table was nearly empty. PostgreSQL keeps a
/// prepared statement's generic plan once it has chosen one, and on a tiny table that plan is
/// a sequential scan: kept as the table grew, each batch of records on a fresh installation
/// under load walked the whole table (0.2–0.6 s per batch at 100,000 deliveries, and
/// deliveries fell seconds behind). The attempt records' own function keeps its generic plans
/// on purpose (migration 12); its reads must stay lookups by key, not a walk of the table or
/// of one of its indexes, which this counts too.
#[tokio::test]
async fn the_queue_keeps_to_its_indexes_as_the_delivery_table_grows() {
    let Some((store, schema)) = fresh_store().await else {
        return;
    };
    let mut rng = seeded();
    let ep = app_with_endpoint(&store, &mut rng).await;
    let d = send(&store, &mut rng, &ep, 0).await;
    let record = |rng: &mut rand::rngs::StdRng, when: i64| AttemptRecord {
        delivery_id: d.id.clone(),
        attempt: Attempt {
            id: IdKind::Attempt.generate(at(when), rng),
            msg_id: d.msg_id.clone(),
            endpoint_id: ep.id.clone(),
            url: ep.url.clone(),
            response: String::new(),
            response_status_code: 500,
            response_duration_ms: 1,
            status: MessageStatus::Fail,
            trigger_type: TriggerType::Scheduled,
            attempt_number: 1,
            request_headers: Default::default(),
            response_headers: Vec::new(),
            created_at: at(when),
        },
        delivery_status: MessageStatus::Sending,
        next_attempt_at: Some(at(when + 60)),
        scheduled_attempts: 1,
        park: false,
        lease_token: 0,
        row: None,
        events: Vec::new(),
    };

    // While the table holds one delivery, every pooled connection records often enough for
    // PostgreSQL to settle on a generic plan (it does after five executions).
    queue_rounds(&store, |i| record(&mut rng, i)).await;

    // The table grows to 20,000 deliveries behind the store's back (no ANALYZE, which would
    // make PostgreSQL plan again).
    let grown = 20_000;
    let mut admin = sqlx::PgConnection::connect(&std::env::var(URL_VAR).unwrap())
        .await
        .unwrap();
    grow(&mut admin, schema.name(), &ep, grown, Grown::Delivery).await;
    let scanned_before = delivery_rows_read(&mut admin, schema.name()).await;

    queue_rounds(&store, |i| record(&mut rng, 100 + i)).await;
    store.close().await;
    wait_for_sessions_to_end(&mut admin, schema.name()).await;
    let scanned = delivery_rows_read(&mut admin, schema.name()).await;
    assert!(
        scanned - scanned_before < grown,
        "the queue walked the {grown}-row delivery table: {} rows read by sequential scans or fetched through an index",
        scanned - scanned_before
    );
}

/// Twelve rounds of the queue's work: four single-record batches at once (so every pooled
/// connection records), then a claim and the batch read of its messages. `record(i)` makes
/// the `i`th record.
async fn queue_rounds(store: &PostgresStore, mut record: impl FnMut(i64) -> AttemptRecord) {
    for round in 0..12 {
        let b: Vec<[AttemptRecord; 1]> = (0..4).map(|i| [record(round * 4 + i)]).collect();
        let done = tokio::join!(
            store.record_attempts(&b[0]),
            store.record_attempts(&b[1]),
            store.record_attempts(&b[2]),
            store.record_attempts(&b[3])
        );
        for outcome in [done.0, done.1, done.2, done.3] {
            outcome.expect("record");
        }
        let claims = store.claim_due(at(10_000), at(10_001), 10).await.unwrap();
        store.claimed_messages(&claims).await.unwrap();
    }
}

/// A table [`grow`] adds rows to.
enum Grown {
    Message,
    Delivery,
}

/// Adds `rows` rows for `ep` to `schema`'s `table` behind the store's back, with no `ANALYZE`:
/// PostgreSQL keeps planning as for the table it last analyzed.
async fn grow(admin: &mut sqlx::PgConnection, schema: &str, ep: &Endpoint, rows: i64, table: Grown) {
    let (ep, app) = (&ep.id, &ep.app_id);
    let insert = match table {
        Grown::Message => format!(
            "INSERT INTO {schema}.message (id, app_id, event_id, event_type, payload, created_at, expires_at) \
             SELECT 'msg_grown_' || g, '{app}', 'evt_grown_' || g, 'user.created', '{{}}', 0, 0 \
             FROM generate_series(1, {rows}) g"
        ),
        Grown::Delivery => format!(
            "INSERT INTO {schema}.delivery (id, msg_id, endpoint_id, app_id, status, created_at, updated_at) \
             SELECT 'msgep_grown_' || g, 'msg_grown_' || g, '{ep}', '{app}', 0, 0, 0 \
             FROM generate_series(1, {rows}) g"
        ),
    };
    sqlx::raw_sql(&insert).execute(admin).await.unwrap();
}

/// Waits until the store's sessions on `schema` are gone: a session reports what it read to the
/// statistics when it ends.
async fn wait_for_sessions_to_end(admin: &mut sqlx::PgConnection, schema: &str) {
    for _ in 0..200 {
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(schema)
            .fetch_one(&mut *admin)
            .await
            .unwrap();
        if open == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Rows of `schema`'s delivery table read by sequential scans or fetched through an index, as
/// the statistics have them: a plan that walks the whole table, by itself or by one of its
/// indexes, reads every row.
async fn delivery_rows_read(conn: &mut sqlx::PgConnection, schema: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) FROM pg_stat_user_tables \
         WHERE schemaname = $1 AND relname = 'delivery'",
    )
    .bind(schema)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// A publish group is written by `hookd_write_group`, whose statements keep generic plans for
/// the connection's life (migration 12). That is safe only while they read no table: this
/// publishes often enough on every pooled connection for the plans to be made while the tables
/// are nearly empty, grows the message and delivery tables behind the store's back (no
/// `ANALYZE`), publishes again, and finds no table walked by a sequential scan.
#[tokio::test]
async fn a_publish_groups_kept_plans_read_no_table_as_the_tables_grow() {
    let Some((migrated, schema)) = fresh_store().await else {
        return;
    };
    let mut admin = sqlx::PgConnection::connect(&std::env::var(URL_VAR).unwrap())
        .await
        .unwrap();
    // Building the tables' indexes reads them; those reads are reported when the migrating
    // session ends, so they are counted before the store that publishes connects.
    migrated.close().await;
    wait_for_sessions_to_end(&mut admin, schema.name()).await;
    let before = table_scans(&mut admin, schema.name()).await;
    let store = PostgresStore::connect_unmigrated(&schema.store_url(), schema.options())
        .await
        .expect("connect");
    let config: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(p.proconfig) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = $1 AND p.proname = 'hookd_write_group'",
    )
    .bind(schema.name())
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        config,
        ["plan_cache_mode=force_generic_plan"],
        "the function's plans are kept"
    );

    let mut rng = seeded();
    let ep = app_with_endpoint(&store, &mut rng).await;
    publish_rounds(&store, &ep, &mut rng, 0).await;

    let grown = 20_000;
    grow(&mut admin, schema.name(), &ep, grown, Grown::Message).await;
    grow(&mut admin, schema.name(), &ep, grown, Grown::Delivery).await;
    publish_rounds(&store, &ep, &mut rng, 1_000).await;
    store.close().await;
    wait_for_sessions_to_end(&mut admin, schema.name()).await;
    let after = table_scans(&mut admin, schema.name()).await;
    assert_eq!(
        after, before,
        "sequential scans of (message, delivery, fifo_lane) while publishing"
    );
}

/// Publishes 48 messages with one delivery each to `ep`, created from `from` on: four at once,
/// twelve times, so groups of one to four go to whichever connections the pool hands out, each
/// of them used more than five times.
async fn publish_rounds(store: &PostgresStore, ep: &Endpoint, rng: &mut rand::rngs::StdRng, from: i64) {
    for round in 0..12 {
        let four: Vec<(Message, NewDelivery)> = (0..4)
            .map(|i| {
                let t = from + round * 4 + i;
                // Every column of the group's message array filled in.
                let (mut msg, d) = message_to(ep, rng, t);
                msg.event_id = Some(format!("evt_{t}"));
                msg.channels = Some(vec!["eu".to_string()]);
                (msg, d)
            })
            .collect();
        let [a, b, c, d] = &four[..] else {
            unreachable!("four messages")
        };
        let done = tokio::join!(
            store.create_message(&a.0, std::slice::from_ref(&a.1)),
            store.create_message(&b.0, std::slice::from_ref(&b.1)),
            store.create_message(&c.0, std::slice::from_ref(&c.1)),
            store.create_message(&d.0, std::slice::from_ref(&d.1))
        );
        for outcome in [done.0, done.1, done.2, done.3] {
            outcome.expect("publish");
        }
    }
}

/// Sequential scans of `schema`'s message, delivery and fifo_lane tables, as the statistics
/// have them.
async fn table_scans(conn: &mut sqlx::PgConnection, schema: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT relname::text, COALESCE(seq_scan, 0) FROM pg_stat_user_tables \
         WHERE schemaname = $1 AND relname IN ('message', 'delivery', 'fifo_lane') ORDER BY relname",
    )
    .bind(schema)
    .fetch_all(conn)
    .await
    .unwrap()
}
