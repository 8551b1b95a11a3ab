//! Dependency-fault drills on SQLite: the disk holding the database fills up under load, and
//! the disk turns slow (every fsync stalls).
//!
//! On a full disk hookd must refuse with `507 Insufficient Storage` in the Svix error shape
//! instead of acknowledging what it cannot store, lose nothing it acknowledged before, and
//! recover by itself once space is freed. The database lives on a small tmpfs mounted for the
//! test. On a slow disk (strace's fault injection) it must answer at the request deadline rather
//! than queue without end. Both need root: they run with `HOOKD_TEST_FAULTS=1` (scripts/test.sh
//! sets it when run as root).

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, WAIT};
use crate::load::{Load, Target};

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount a {size} tmpfs (HOOKD_TEST_FAULTS=1 needs root)"
        );
        SmallDisk { dir }
    }

    /// Fills what is left with a file; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create filler");
        let block = vec![0u8; 64 * 1024];
        while std::io::Write::write_all(&mut file, &block).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_answers_507_loses_nothing_acknowledged_and_recovers_by_itself() {
    if std::env::var("HOOKD_TEST_FAULTS").is_err() || std::env::var("HOOKD_TEST_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("HOOKD_TEST_FAULTS is not set (or the suite runs on PostgreSQL); the disk-full drill was not run");
        return;
    }
    let disk = SmallDisk::mount("24m");
    let data = disk.dir.path().join("data");
    let app = TestApp::spawn_with(|c| c.data_dir = data.clone()).await;
    app.create_app("ws_full").await;
    app.create_endpoint("ws_full", "/ok", json!({})).await;

    let load = Load::start(
        Target::of(&app, "ws_full"),
        4,
        2000,
        &[(507, &["insufficient_storage"])],
    );
    load.wait_acked(200, WAIT).await.expect("load started");

    // The disk fills up: writes are refused with 507 and nothing more is acknowledged.
    let filler = disk.fill();
    load.wait_refused(20, WAIT).await.expect("507 while the disk is full");
    let before = load.acked();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = load.acked() - before;
    // SQLite may still fit a few small writes in pages it had already allocated.
    assert!(during <= 20, "{during} messages acknowledged on a full disk");
    let (status, _) = app.get("/api/v1/app/ws_full").await;
    assert_eq!(status, 200, "reads still answer while the disk is full");

    // Space is freed: hookd writes again without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    load.wait_acked(load.acked() + 200, WAIT)
        .await
        .expect("publishing recovers after space was freed");
    let refused = load.refused();
    let acked = load.finish().await.expect("only 202 and 507");
    let missing = app.receiver.wait_for_webhook_ids(&acked, Duration::from_secs(60)).await;
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged messages were not delivered",
        acked.len()
    );
    eprintln!(
        "disk full: {} acknowledged, {refused} answered 507, {during} acknowledged while full",
        acked.len()
    );
}

/// Whether a process is being traced (its `TracerPid` in `/proc`).
fn traced(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("TracerPid:") && l.split_whitespace().nth(1) != Some("0"))
        })
        .unwrap_or(false)
}

/// A slow disk: for 15 s every `fsync` and `fdatasync` of a `hookd serve` process stalls for
/// 1 s (strace's fault injection, attached to the running process and then detached), with a
/// request deadline of 1 s. hookd keeps answering: each request ends with a 202 once its commit
/// is durable, or with a 503 at the deadline when its write is still queued (the writer then
/// skips it); nothing acknowledged is lost, nothing refused is delivered, and full speed returns
/// by itself when the disk does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_disk_slows_acknowledgements_loses_none_and_recovers_by_itself() {
    if std::env::var("HOOKD_TEST_FAULTS").is_err() || std::env::var("HOOKD_TEST_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("HOOKD_TEST_FAULTS is not set (or the suite runs on PostgreSQL); the slow-disk drill was not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let receiver = crate::helpers::Receiver::start().await;
    let hookd = crate::durability::spawn_serve(
        &["--data-dir", dir.path().to_str().unwrap()],
        &[("HOOKD_API__REQUEST_TIMEOUT_SECS", "1")],
    );
    let target = Target {
        base: hookd.base.clone(),
        token: hookd.token.clone().expect("first start prints a token"),
        app: "ws_slow".into(),
    };
    let client = reqwest::Client::new();
    for (path, body) in [
        (
            "/api/v1/app".to_string(),
            json!({"name": "Slow disk", "uid": "ws_slow"}),
        ),
        (
            "/api/v1/app/ws_slow/endpoint".to_string(),
            json!({"url": receiver.url("/ok")}),
        ),
    ] {
        let r = client
            .post(format!("{}{path}", target.base))
            .bearer_auth(&target.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{path}");
    }
    let load = Load::start(target, 8, 0, &[(503, &["timeout", "service_unavailable"])]);
    load.wait_acked(300, WAIT).await.expect("load started");
    let healthy = load.take_slowest();

    // The disk turns slow.
    let pid = hookd.child.id();
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync"])
        .args(["-e", "inject=fsync,fdatasync:delay_enter=1000000", "-p"])
        .arg(pid.to_string())
        .spawn()
        .expect("run strace (HOOKD_TEST_FAULTS=1 needs strace and root)");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !traced(pid) {
        assert!(tokio::time::Instant::now() < deadline, "strace did not attach");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (acked_before, refused_before) = (load.acked(), load.refused());
    load.take_slowest();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let during = load.acked() - acked_before;
    let refused = load.refused() - refused_before;
    let slowest = load.take_slowest();

    // The disk heals: strace detaches on SIGTERM and hookd runs at full speed again.
    let healed = std::time::Instant::now();
    Command::new("kill")
        .args(["-TERM", &strace.id().to_string()])
        .status()
        .unwrap();
    strace.wait().unwrap();
    assert!(!traced(pid), "strace detached");
    load.wait_acked(load.acked() + 300, Duration::from_secs(30))
        .await
        .expect("full speed again once the disk heals");
    let recovered = healed.elapsed();
    let acked = load.finish().await.expect("only 202 and 503");
    let missing = receiver.wait_for_webhook_ids(&acked, Duration::from_secs(90)).await;
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged messages were not delivered",
        acked.len()
    );
    // A 503 never hides a stored message: nothing but what was acknowledged is delivered.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stray = receiver.webhook_ids().difference(&acked).count();
    assert_eq!(stray, 0, "{stray} messages answered 503 were delivered");
    // A request ends at its 1 s deadline, or after the one commit it had already joined (so that
    // a 503 never hides a stored message): a commit with a checkpoint stalls on 3 fsyncs at most.
    assert!(
        slowest < Duration::from_secs(6),
        "a request took {slowest:?} on the slow disk"
    );
    assert!(during > 0, "hookd still acknowledged messages on the slow disk");
    eprintln!(
        "slow disk (1 s per fsync, 15 s): {during} acknowledged and {refused} answered 503 meanwhile; \
         slowest answer {slowest:?} (healthy: {healthy:?}); 300 more acknowledged {recovered:?} after it healed; \
         all {} acknowledged delivered",
        acked.len()
    );
}
