//! Durability: `kill -9` of a real `hookd serve` process under load, then a restart, delivers
//! every acknowledged (202) message at least once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use crate::helpers::{Receiver, WAIT};

/// A `hookd serve` child process and what it printed at start.
pub struct Process {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The admin token printed at first start, if any.
    pub token: Option<String>,
}

impl Drop for Process {
    /// A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The child moves into `Process`, whose Drop kills and reaps it; clippy cannot follow the move.
fn spawn_hookd(data_dir: &std::path::Path) -> Process {
    spawn_serve(&["--data-dir", data_dir.to_str().unwrap()], &[])
}

/// Starts `hookd serve` on a free loopback port with `args` and `env` added to the test defaults.
pub fn spawn_serve(args: &[&str], env: &[(&str, &str)]) -> Process {
    spawn_serve_on("127.0.0.1:0", args, env)
}

/// Starts `hookd serve` on `listen` with `args` and `env` added to the test defaults.
#[allow(clippy::zombie_processes)]
pub fn spawn_serve_on(listen: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--listen", listen])
        .args(args)
        .envs(env.iter().copied())
        .env("HOOKD_DELIVERY__POLL_INTERVAL_MS", "50")
        .env("HOOKD_DELIVERY__ALLOW_HTTP", "true")
        .env("HOOKD_DELIVERY__ALLOWED_SUBNETS", "127.0.0.0/8")
        // The load tests publish faster than the default per-token rate.
        .env("HOOKD_API__RATE_LIMIT_PER_SEC", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hookd");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = None;
    loop {
        let line = lines.next().expect("hookd exited before listening").unwrap();
        if line.starts_with("hk_live_") {
            token = Some(line);
        } else if let Some(addr) = line.strip_prefix("hookd: listening on ") {
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return Process {
                child,
                base: addr.to_string(),
                token,
            };
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_then_restart_delivers_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let mut first = spawn_hookd(dir.path());
    let token = first.token.clone().expect("first start prints a token");
    let client = reqwest::Client::new();
    let post = |base: &str, path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    assert_eq!(
        post(&first.base, "/api/v1/app", json!({"name": "Durable", "uid": "ws_d"}))
            .await
            .unwrap()
            .status(),
        201
    );
    let ep = post(
        &first.base,
        "/api/v1/app/ws_d/endpoint",
        json!({"url": receiver.url("/ok")}),
    )
    .await
    .unwrap();
    assert_eq!(ep.status(), 201);

    // Publishers run until the process dies under them; every 202 is remembered.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (count_tx, mut count_rx) = watch::channel(0usize);
    let mut publishers = Vec::new();
    for worker in 0..16 {
        let (client, token, base, acked, count_tx) = (
            client.clone(),
            token.clone(),
            first.base.clone(),
            acked.clone(),
            count_tx.clone(),
        );
        publishers.push(tokio::spawn(async move {
            for i in 0..2_000 {
                let body = json!({"eventType": "load.test", "payload": {"worker": worker, "i": i}});
                let Ok(resp) = client
                    .post(format!("{base}/api/v1/app/ws_d/msg"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                else {
                    return;
                };
                if resp.status().as_u16() != 202 {
                    return;
                }
                let Ok(msg) = resp.json::<serde_json::Value>().await else {
                    return;
                };
                let mut all = acked.lock().unwrap();
                all.push(msg["id"].as_str().unwrap().to_string());
                count_tx.send_replace(all.len());
            }
        }));
    }
    tokio::time::timeout(WAIT, count_rx.wait_for(|n| *n >= 400))
        .await
        .expect("load did not start")
        .unwrap();
    first.child.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix: no shutdown hooks run
    first.child.wait().unwrap();
    for p in publishers {
        p.await.unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() >= 400);

    let mut second = spawn_hookd(dir.path());
    assert!(
        second.token.is_none(),
        "a restart on an existing data dir prints no new token"
    );
    let missing = receiver.wait_for_webhook_ids(&acked, Duration::from_secs(90)).await;
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged messages were never delivered",
        acked.len()
    );
    let requests = receiver.requests();
    let distinct: HashSet<&str> = requests.iter().filter_map(|r| r.header("webhook-id")).collect();
    eprintln!(
        "acknowledged {} messages; {} deliveries of {} distinct messages after the kill and restart",
        acked.len(),
        requests.len(),
        distinct.len()
    );
}

/// Operational webhooks are at least once: an exhaustion recorded just before a `kill -9`
/// reaches the operator after the restart. The event waits in the database's outbox (stored
/// with the attempt that caused it), not in a queue in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhaustion_just_before_a_kill_9_reaches_the_operator_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let operator = receiver.url("/ok");
    let data_dir = ["--data-dir", dir.path().to_str().unwrap()];
    let env = [
        ("HOOKD_OPERATIONAL_WEBHOOK__URL", operator.as_str()),
        (
            "HOOKD_OPERATIONAL_WEBHOOK__SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        ("HOOKD_DELIVERY__RETRY_SCHEDULE", "1"),
    ];
    let mut first = spawn_serve(&data_dir, &env);
    let token = first.token.clone().expect("first start prints a token");
    let client = reqwest::Client::new();
    let call = |base: String, method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
        let request = client.request(method, format!("{base}{path}")).bearer_auth(&token);
        let request = match body {
            Some(b) => request.json(&b),
            None => request,
        };
        async move {
            let resp = request.send().await.unwrap();
            (
                resp.status().as_u16(),
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let post = reqwest::Method::POST;
    let (status, _) = call(
        first.base.clone(),
        post.clone(),
        "/api/v1/app".into(),
        Some(json!({"name": "Ops", "uid": "ws_ops"})),
    )
    .await;
    assert_eq!(status, 201);
    let failing = json!({"url": receiver.url("/status/500"), "uid": "failing"});
    let (status, _) = call(
        first.base.clone(),
        post.clone(),
        "/api/v1/app/ws_ops/endpoint".into(),
        Some(failing),
    )
    .await;
    assert_eq!(status, 201);
    let (status, msg) = call(
        first.base.clone(),
        post,
        "/api/v1/app/ws_ops/msg".into(),
        Some(json!({"eventType": "a.b", "payload": {"n": 1}})),
    )
    .await;
    assert_eq!(status, 202);
    let msg_id = msg["id"].as_str().unwrap().to_string();

    // Kill the moment the delivery shows as exhausted: its event is committed with it.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, dest) = call(
            first.base.clone(),
            reqwest::Method::GET,
            format!("/api/v1/app/ws_ops/msg/{msg_id}/endpoint"),
            None,
        )
        .await;
        if dest["data"][0]["statusText"] == "fail" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never exhausted: {dest}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let _second = spawn_serve(&data_dir, &env);
    let reported = receiver
        .wait_for(1, |r| {
            r.path == "/ok" && r.header("content-type").is_some() && {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                body["type"] == "message.attempt.exhausted" && body["data"]["msgId"] == msg_id.as_str()
            }
        })
        .await;
    assert!(!reported.is_empty());
}
