//! Dependency-fault drills on SQLite: the disk holding the database fills up under load.
//!
//! hookd must refuse with `507 Insufficient Storage` in the Svix error shape instead of
//! acknowledging what it cannot store, lose nothing it acknowledged before, and recover by
//! itself once space is freed. The database lives on a small tmpfs mounted for the test, so this
//! needs root: it runs with `HOOKD_TEST_FAULTS=1` (scripts/test.sh sets it when run as root).

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, WAIT};

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
    let app = Arc::new(TestApp::spawn_with(|c| c.data_dir = data.clone()).await);
    app.create_app("ws_full").await;
    app.create_endpoint("ws_full", "/ok", json!({})).await;

    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let full = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut publishers = Vec::new();
    for worker in 0..4 {
        let (app, acked, full, stop) = (app.clone(), acked.clone(), full.clone(), stop.clone());
        publishers.push(tokio::spawn(async move {
            let pad = "p".repeat(2000);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let body = json!({"eventType": "a.b", "payload": {"w": worker, "i": i, "pad": pad}});
                let (status, body) = app.post("/api/v1/app/ws_full/msg", body).await;
                match status.as_u16() {
                    202 => {
                        acked.lock().unwrap().insert(body["id"].as_str().unwrap().to_string());
                    }
                    507 => {
                        assert_eq!(body["code"], "insufficient_storage", "{body}");
                        assert!(body["detail"].as_str().unwrap().contains("nothing was stored"));
                        full.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("publishing answered {other}: {body}"),
                }
            }
        }));
    }
    let count = |acked: &Arc<Mutex<HashSet<String>>>| acked.lock().unwrap().len();
    let deadline = tokio::time::Instant::now() + WAIT;
    while count(&acked) < 200 {
        assert!(tokio::time::Instant::now() < deadline, "load did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The disk fills up: writes are refused with 507 and nothing more is acknowledged.
    let filler = disk.fill();
    let deadline = tokio::time::Instant::now() + WAIT;
    while full.load(Ordering::Relaxed) < 20 {
        assert!(tokio::time::Instant::now() < deadline, "no 507 while the disk was full");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = count(&acked);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = count(&acked) - before;
    // SQLite may still fit a few small writes in pages it had already allocated.
    assert!(during <= 20, "{during} messages acknowledged on a full disk");
    let (status, _) = app.get("/api/v1/app/ws_full").await;
    assert_eq!(status, 200, "reads still answer while the disk is full");

    // Space is freed: hookd writes again without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let resumed = count(&acked);
    let deadline = tokio::time::Instant::now() + WAIT;
    while count(&acked) < resumed + 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "publishing did not recover after space was freed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for p in publishers {
        p.await.unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().clone();
    let missing = app.receiver.wait_for_webhook_ids(&acked, Duration::from_secs(60)).await;
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged messages were not delivered",
        acked.len()
    );
    eprintln!(
        "disk full: {} acknowledged, {} answered 507, {during} acknowledged while full",
        acked.len(),
        full.load(Ordering::Relaxed)
    );
}
