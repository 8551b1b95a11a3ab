//! PostgreSQL faults under load: the server stopped, restarted, and unreachable
//! (a network path that silently drops packets). While the database cannot store, the API
//! answers 503 (never a 202 for a message that was not committed), hookd reconnects by itself
//! when it is back, and every acknowledged message is delivered.
//!
//! These stop and start the machine's PostgreSQL server, so they must not run beside other
//! tests that use it: they run only with `HOOKD_TEST_PG_OUTAGE=1` (scripts/test.sh runs them
//! last, one at a time), and always start the server again, whatever happens.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookd_store_postgres::testing::TestSchema;
use serde_json::json;

use crate::helpers::{LogCapture, TestApp, WAIT};
use crate::load::{Load, Refusal, Target};

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

/// How many messages have been acknowledged so far.
type Acked = Arc<dyn Fn() -> usize + Send + Sync>;

/// Publishing under load (8 workers) while `fault` runs, then `heal`: every answer is a 202 or a
/// 503 in the Svix shape, publishing resumes by itself after the heal, and every acknowledged
/// message is delivered. `fault` gets the acknowledged count and returns how many were
/// acknowledged while the database could not store them. Returns (acknowledged, refused with
/// 503, that number).
async fn under_load<F: std::future::Future<Output = usize>>(
    app: Arc<TestApp>,
    fault: impl FnOnce(Acked) -> F,
    heal: impl FnOnce(),
) -> (usize, usize, usize) {
    let logs = LogCapture::start();
    app.create_app("ws_out").await;
    app.create_endpoint("ws_out", "/ok", json!({})).await;
    const ALLOWED: &[Refusal] = &[(503, &["service_unavailable", "timeout"])];
    let load = Load::start(Target::of(&app, "ws_out"), 8, 0, ALLOWED);
    let failed = |why: String| -> ! { panic!("{why}\n{}", problems(&logs)) };
    load.wait_acked(300, WAIT).await.unwrap_or_else(|e| failed(e));

    let during = fault(Arc::new(load.acked_counter())).await;
    heal();
    let heal_at = tokio::time::Instant::now();

    // hookd reconnects by itself: publishing succeeds again.
    load.wait_acked(load.acked() + 300, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| failed(format!("publishing did not recover after the fault: {e}")));
    let resumed_at = tokio::time::Instant::now();
    // Health turns green by itself soon after: the attempt recorder retries its batch at least
    // once a second, so it stops reporting itself stuck.
    let healed_at = tokio::time::Instant::now();
    loop {
        let (status, health) = app.get("/api/v1/health").await;
        if status == 200 {
            break;
        }
        assert!(
            healed_at.elapsed() < Duration::from_secs(10),
            "still unhealthy 10 s after publishing resumed: {health}\n{}",
            problems(&logs)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "300 more acknowledged {:?} after the heal; health green {:?} after that",
        resumed_at.duration_since(heal_at),
        healed_at.elapsed()
    );
    let refused = load.refused();
    let acked = load.finish().await.unwrap_or_else(|e| failed(e));
    let missing = app.receiver.wait_for_webhook_ids(&acked, Duration::from_secs(90)).await;
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged messages were not delivered",
        acked.len()
    );
    (acked.len(), refused, during)
}

/// The warnings and errors logged so far (the last 40), to show why a drill failed.
fn problems(logs: &LogCapture) -> String {
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The outage drills need the machine's server and the right to stop it.
fn outage_url() -> Option<String> {
    match (
        std::env::var("HOOKD_TEST_POSTGRES_URL"),
        std::env::var("HOOKD_TEST_PG_OUTAGE"),
    ) {
        (Ok(url), Ok(_)) => Some(url),
        _ => {
            eprintln!(
                "HOOKD_TEST_PG_OUTAGE and HOOKD_TEST_POSTGRES_URL are not both set; the outage drill was not run"
            );
            None
        }
    }
}

/// PostgreSQL stopped for `HOOKD_TEST_PG_OUTAGE_SECS` (default 60) under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_answers_503_and_loses_no_acknowledged_message() {
    let Some(url) = outage_url() else { return };
    let secs: u64 = std::env::var("HOOKD_TEST_PG_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let schema = TestSchema::create(&url).await;
    let app = Arc::new(TestApp::spawn_on_postgres(&schema, |c| c.delivery.poll_interval_ms = 100).await);
    let probe = app.clone();
    let restart = Restart;
    let fault = |acked: Acked| async move {
        assert!(pg_ctl("stop"), "stop PostgreSQL");
        let before = acked();
        let outage_end = tokio::time::Instant::now() + Duration::from_secs(secs);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, health) = probe.get("/api/v1/health").await;
        assert_eq!(status, 503, "health reports the outage: {health}");
        assert_eq!(health["database"]["status"], "error");
        tokio::time::sleep_until(outage_end).await;
        acked() - before
    };
    // The heal starts the server again (as the guard would on a failure).
    let (acked, refused, during) = under_load(app, fault, move || drop(restart)).await;
    assert!(refused > 0, "requests during the outage were answered 503");
    // A request whose commit raced the stop may have been acknowledged; none can be after it.
    assert!(
        during <= 8,
        "{during} messages acknowledged while the database was down"
    );
    eprintln!("PostgreSQL stopped {secs} s: {acked} acknowledged, {refused} answered 503, all delivered");
}

/// PostgreSQL restarted under load (every connection dropped at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_loses_no_acknowledged_message() {
    let Some(url) = outage_url() else { return };
    let schema = TestSchema::create(&url).await;
    let app = Arc::new(TestApp::spawn_on_postgres(&schema, |c| c.delivery.poll_interval_ms = 100).await);
    let restart = Restart;
    let fault = |_| async {
        assert!(pg_ctl("restart"), "restart PostgreSQL");
        0
    };
    let (acked, refused, _) = under_load(app, fault, move || drop(restart)).await;
    eprintln!("PostgreSQL restarted: {acked} acknowledged, {refused} answered 503, all delivered");
}

/// A TCP relay to the PostgreSQL server that can be cut off: while `cut`, it forwards nothing
/// (bytes wait, new connections are not passed on), as when a network path silently drops
/// packets; when lifted, everything flows again.
async fn partition_relay(upstream: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicBool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let flag = cut.clone();
    async fn wait_open(cut: &AtomicBool) {
        while cut.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    /// Copies one direction of a connection, holding every chunk while the path is cut.
    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        cut: Arc<AtomicBool>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            wait_open(&cut).await;
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    }
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let cut = flag.clone();
            tokio::spawn(async move {
                wait_open(&cut).await;
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = pipe(cr, sw, cut.clone());
                let down = pipe(sr, cw, cut);
                tokio::join!(up, down);
            });
        }
    });
    (addr, cut)
}

/// PostgreSQL unreachable (packets silently dropped) for 15 s under load: requests end with a
/// 503 at the request deadline instead of hanging, and everything resumes when the path heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_database_answers_503_at_the_deadline_and_heals() {
    let Some(url) = outage_url() else { return };
    let schema = TestSchema::create(&url).await;
    let (relay, cut) = partition_relay("127.0.0.1:5432".parse().unwrap()).await;
    let through_relay = schema.store_url().replace("127.0.0.1:5432", &relay.to_string());
    assert_ne!(through_relay, schema.store_url(), "the test URL names 127.0.0.1:5432");
    let name = schema.name().to_string();
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.database = through_relay;
            c.storage.postgres_schema = name;
            c.delivery.poll_interval_ms = 100;
            c.api.request_timeout_secs = 3;
        })
        .await,
    );
    let probe = app.clone();
    let heal = cut.clone();
    let fault = |acked: Acked| async move {
        cut.store(true, Ordering::Relaxed);
        // Requests already past the relay may still finish: count from a moment later.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = acked();
        let healed = tokio::time::Instant::now() + Duration::from_secs(15);
        let started = std::time::Instant::now();
        let (status, body) = probe
            .post("/api/v1/app/ws_out/msg", json!({"eventType": "a.b", "payload": {}}))
            .await;
        assert_eq!(status, 503, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "answered only after {:?}",
            started.elapsed()
        );
        tokio::time::sleep_until(healed).await;
        acked() - before
    };
    let (acked, refused, during) = under_load(app, fault, move || heal.store(false, Ordering::Relaxed)).await;
    assert!(refused > 0);
    // Requests in flight when the path was cut may still commit once it heals (their clients
    // got a 503 and may retry with an idempotency key); nothing is acknowledged meanwhile.
    assert!(
        during <= 8,
        "{during} messages acknowledged while the database was unreachable"
    );
    eprintln!("PostgreSQL unreachable 15 s: {acked} acknowledged, {refused} answered 503, all delivered");
}
