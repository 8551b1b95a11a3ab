//! A PostgreSQL outage under load: while the database is down the API answers 503 (never a 202
//! for a message that was not committed), hookd reconnects by itself when it is back, and every
//! acknowledged message is delivered.
//!
//! This stops and starts the machine's PostgreSQL server, so it must not run beside other
//! tests that use it: it runs only with `HOOKD_TEST_PG_OUTAGE=1` (scripts/test.sh runs it last,
//! alone), and always starts the server again, whatever happens.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookd_store_postgres::testing::TestSchema;
use serde_json::json;

use crate::helpers::{TestApp, WAIT};

/// Runs `pg_ctlcluster` on the machine's cluster.
fn pg_ctl(action: &str) -> bool {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("a PostgreSQL cluster under /etc/postgresql");
    let mut cmd = Command::new("pg_ctlcluster");
    cmd.args(["--skip-systemctl-redirect", &version, "main", action]);
    if action == "stop" {
        cmd.args(["-m", "fast"]);
    }
    cmd.status().map(|s| s.success()).unwrap_or(false)
}

/// Starts the server again when the test ends, passed or failed.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        if !pg_ctl("start") {
            // Already running is fine; say so in case it is not.
            eprintln!("pg_ctlcluster start reported failure (the server may already be running)");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_answers_503_and_loses_no_acknowledged_message() {
    let (Ok(url), Ok(_)) = (
        std::env::var("HOOKD_TEST_POSTGRES_URL"),
        std::env::var("HOOKD_TEST_PG_OUTAGE"),
    ) else {
        eprintln!("HOOKD_TEST_PG_OUTAGE and HOOKD_TEST_POSTGRES_URL are not both set; the outage test was not run");
        return;
    };
    let schema = TestSchema::create(&url).await;
    let app = Arc::new(TestApp::spawn_on_postgres(&schema, |c| c.delivery.poll_interval_ms = 100).await);
    app.create_app("ws_out").await;
    app.create_endpoint("ws_out", "/ok", json!({})).await;

    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut publishers = Vec::new();
    for worker in 0..8 {
        let (app, acked, unavailable, stop) = (app.clone(), acked.clone(), unavailable.clone(), stop.clone());
        publishers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (status, body) = app
                    .post(
                        "/api/v1/app/ws_out/msg",
                        json!({"eventType": "a.b", "payload": {"w": worker, "i": i}}),
                    )
                    .await;
                match status.as_u16() {
                    202 => {
                        acked.lock().unwrap().insert(body["id"].as_str().unwrap().to_string());
                    }
                    503 => {
                        assert_eq!(body["code"], "service_unavailable", "{body}");
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("publishing answered {other}: {body}"),
                }
            }
        }));
    }
    let count = |acked: &Arc<Mutex<HashSet<String>>>| acked.lock().unwrap().len();
    let deadline = tokio::time::Instant::now() + WAIT;
    while count(&acked) < 300 {
        assert!(tokio::time::Instant::now() < deadline, "load did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let restart = Restart;
    assert!(pg_ctl("stop"), "stop PostgreSQL");
    let before = count(&acked);
    let outage_end = tokio::time::Instant::now() + Duration::from_secs(3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, health) = app.get("/api/v1/health").await;
    assert_eq!(status, 503, "health reports the outage: {health}");
    assert_eq!(health["database"]["status"], "error");
    while tokio::time::Instant::now() < outage_end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = count(&acked) - before;
    drop(restart); // start it again
    let refused = unavailable.load(Ordering::Relaxed);
    assert!(refused > 0, "requests during the outage were answered 503");
    // A request whose commit raced the stop may have been acknowledged; none can be after it.
    assert!(
        during <= 8,
        "{during} messages acknowledged while the database was down"
    );

    // hookd reconnects by itself: publishing succeeds again.
    let resumed = count(&acked);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count(&acked) < resumed + 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "publishing did not recover after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, health) = app.get("/api/v1/health").await;
    assert_eq!(status, 200, "healthy again once the database is back: {health}");
    stop.store(true, Ordering::Relaxed);
    for p in publishers {
        p.await.unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().clone();
    let missing = app.receiver.wait_for_webhook_ids(&acked, Duration::from_secs(90)).await;
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged messages were not delivered",
        acked.len()
    );
    eprintln!("{} acknowledged, {refused} answered 503 during the outage", acked.len());
}
