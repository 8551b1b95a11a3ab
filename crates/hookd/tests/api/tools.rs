//! The integrator's tools: `hookd listen`, `trigger`, `receive`, `catalog export|import`,
//! `openapi` and `token create --environment test`, each run as the real binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hookd_signing::{verify, Secret, WebhookHeaders};
use serde_json::{json, Value};

use crate::durability::{spawn_serve_on, Process};
use crate::helpers::{Receiver, TestApp};

/// A running `hookd` subcommand whose stdout lines are collected as they come.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    // The child moves into `Running`, whose Drop kills and reaps it.
    #[allow(clippy::zombie_processes)]
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookd"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hookd");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (from now on) that satisfies `pred`, waiting up to `max`.
    fn wait_line(&mut self, max: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + max;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no matching line within {max:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

async fn api(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut req = client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{base}{path}"),
        )
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn signature_ok(secret: &Secret, r: &crate::helpers::Recorded) -> bool {
    let headers = WebhookHeaders {
        id: r.header("webhook-id").unwrap().to_string(),
        timestamp: r.header("webhook-timestamp").unwrap().to_string(),
        signature: r.header("webhook-signature").unwrap().to_string(),
    };
    verify(secret, &headers, &r.body, chrono::Utc::now().timestamp(), 300).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listen_forwards_signed_deliveries_and_loses_none_across_drops() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    // A long retry schedule: anything delivered after a reconnect was made due by the reconnect.
    let env = [("HOOKD_DELIVERY__RETRY_SCHEDULE", "120,120,120")];
    // The system picks the port, so no other test can take it first; the restart reuses it.
    let server: Process = spawn_serve_on("127.0.0.1:0", &["--data-dir", &data_dir], &env);
    let token = server.token.clone().expect("first start prints a token");
    let base = server.base.clone();
    let addr = base.strip_prefix("http://").unwrap().to_string();
    let client = reqwest::Client::new();
    let (status, _) = api(
        &client,
        &base,
        &token,
        "POST",
        "/api/v1/app",
        Some(r#"{"name":"Dev","uid":"ws_dev"}"#),
    )
    .await;
    assert_eq!(status, 201);
    let local = Receiver::start().await;
    let forward = local.url("/ok");
    let listen_args = [
        "listen",
        "--forward-to",
        &forward,
        "--app",
        "ws_dev",
        "--server",
        &base,
        "--token",
        &token,
    ];

    let mut cli = Running::start(&listen_args);
    let session_line = cli.wait_line(Duration::from_secs(20), |l| l.trim_start().starts_with("session"));
    let session = session_line.split_whitespace().nth(1).unwrap().to_string();
    assert!(session.starts_with("ep_"), "{session_line}");
    let secret_line = cli.wait_line(Duration::from_secs(5), |l| l.trim_start().starts_with("secret"));
    let secret = Secret::parse(secret_line.split_whitespace().nth(1).unwrap()).unwrap();

    // 1. A delivery is forwarded byte for byte, signed with the printed secret.
    let raw = r#"{"eventType":"dev.ping","payload":{"b": 2,  "a":[1, 2]}}"#;
    let (status, m1) = api(&client, &base, &token, "POST", "/api/v1/app/ws_dev/msg", Some(raw)).await;
    assert_eq!(status, 202);
    let m1_id = m1["id"].as_str().unwrap().to_string();
    let got = local.wait_for(1, |_| true).await;
    assert_eq!(&got[0].body[..], br#"{"b": 2,  "a":[1, 2]}"#);
    assert_eq!(got[0].header("webhook-id"), Some(m1_id.as_str()));
    assert_eq!(got[0].header("webhook-attempt"), Some("1"));
    assert!(
        signature_ok(&secret, &got[0]),
        "the local server verifies with the printed secret"
    );
    let line = cli.wait_line(Duration::from_secs(10), |l| l.contains(&m1_id));
    assert!(
        line.contains("dev.ping") && line.contains("-> 200") && line.contains(" ms"),
        "{line}"
    );
    // The attempt is recorded like any other, with the local answer.
    let attempts = wait_attempts(&client, &base, &token, &m1_id, 1).await;
    assert_eq!(attempts[0]["responseStatusCode"], json!(200));
    assert_eq!(attempts[0]["endpointId"], json!(session));

    // 2. The server goes away and comes back: the CLI reconnects to the same session by itself.
    drop(server);
    cli.wait_line(Duration::from_secs(10), |l| l.contains("connection lost"));
    let server = spawn_serve_on(&addr, &["--data-dir", &data_dir], &env);
    cli.wait_line(Duration::from_secs(40), |l| {
        l.contains(&format!("connected (session {session})"))
    });
    let (status, m2) = api(
        &client,
        &base,
        &token,
        "POST",
        "/api/v1/app/ws_dev/msg",
        Some(r#"{"eventType":"dev.ping","payload":{"n":2}}"#),
    )
    .await;
    assert_eq!(status, 202);
    let got = local.wait_for(2, |_| true).await;
    let m2_id = m2["id"].as_str().unwrap();
    assert_eq!(got[1].header("webhook-id"), Some(m2_id));
    // Its result travels back before the CLI goes away (else it would be retried: at least once).
    cli.wait_line(Duration::from_secs(10), |l| l.contains(m2_id));
    wait_status(&client, &base, &token, m2_id, "success").await;

    // 3. The CLI dies; a message published meanwhile fails its attempt and waits for a retry;
    //    a CLI resuming the session gets it at once rather than two minutes later.
    cli.child.kill().unwrap();
    cli.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, m3) = api(
        &client,
        &base,
        &token,
        "POST",
        "/api/v1/app/ws_dev/msg",
        Some(r#"{"eventType":"dev.ping","payload":{"n":3}}"#),
    )
    .await;
    assert_eq!(status, 202);
    let m3_id = m3["id"].as_str().unwrap().to_string();
    let failed = wait_attempts(&client, &base, &token, &m3_id, 1).await;
    assert_eq!(failed[0]["responseStatusCode"], json!(0));
    assert_eq!(
        local.requests().len(),
        2,
        "nothing reached the machine while no CLI ran"
    );
    let mut resume_args = listen_args.to_vec();
    resume_args.extend(["--session", &session]);
    let mut cli = Running::start(&resume_args);
    let line = cli.wait_line(Duration::from_secs(20), |l| l.contains("waiting deliveries resumed"));
    assert!(line.contains("1 waiting deliveries resumed"), "{line}");
    let got = local.wait_for(3, |_| true).await;
    assert_eq!(got[2].header("webhook-id"), Some(m3_id.as_str()));
    assert_eq!(got[2].header("webhook-attempt"), Some("2"));
    assert!(signature_ok(&secret, &got[2]), "a resumed session keeps its secret");
    let attempts = wait_attempts(&client, &base, &token, &m3_id, 2).await;
    let codes: Vec<i64> = attempts
        .iter()
        .map(|a| a["responseStatusCode"].as_i64().unwrap())
        .collect();
    assert!(codes.contains(&0) && codes.contains(&200), "{codes:?}");

    // 4. Ctrl-C ends the session and removes its endpoint.
    cli.signal("INT");
    cli.wait_line(Duration::from_secs(10), |l| l.contains("stopped"));
    let mut gone = 0;
    for _ in 0..50 {
        gone = api(
            &client,
            &base,
            &token,
            "GET",
            &format!("/api/v1/app/ws_dev/endpoint/{session}"),
            None,
        )
        .await
        .0;
        if gone == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gone, 404);
    drop(server);
}

async fn wait_status(client: &reqwest::Client, base: &str, token: &str, msg_id: &str, status: &str) {
    for _ in 0..100 {
        let (_, list) = api(
            client,
            base,
            token,
            "GET",
            &format!("/api/v1/app/ws_dev/msg/{msg_id}/endpoint"),
            None,
        )
        .await;
        if list["data"][0]["statusText"] == json!(status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{msg_id} never reached {status}");
}

async fn wait_attempts(client: &reqwest::Client, base: &str, token: &str, msg_id: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let (_, list) = api(
            client,
            base,
            token,
            "GET",
            &format!("/api/v1/app/ws_dev/attempt/msg/{msg_id}"),
            None,
        )
        .await;
        let items = list["data"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{msg_id} never had {n} attempts");
}

#[tokio::test]
async fn listen_refuses_a_bad_token_or_application_at_once() {
    let app = TestApp::spawn().await;
    let run = |token: String, application: &'static str| {
        let base = app.base.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
                .args([
                    "listen",
                    "--forward-to",
                    "http://127.0.0.1:9/",
                    "--app",
                    application,
                    "--server",
                    &base,
                    "--token",
                    &token,
                ])
                .env("RUST_LOG", "off")
                .output()
                .await
                .unwrap()
        }
    };
    let out = tokio::time::timeout(Duration::from_secs(20), run("hk_live_wrong".into(), "ws_x"))
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tokio::time::timeout(Duration::from_secs(20), run(app.token.clone(), "ws_missing"))
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn trigger_publishes_a_fresh_catalog_example_with_changes_and_shows_where_it_went() {
    let app = TestApp::spawn_with(|c| c.catalog.builtin = true).await;
    app.create_app("ws_t").await;
    let ep = app.create_endpoint("ws_t", "/ok", json!({})).await;
    let trigger = |args: Vec<String>, token: String| {
        let base = app.base.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
                .arg("trigger")
                .args(args)
                .env("HOOKD_SERVER", base)
                .env("HOOKD_TOKEN", token)
                .env("RUST_LOG", "off")
                .output()
                .await
                .unwrap()
        }
    };
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["content.published".into(), "--app".into(), "ws_t".into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let out = trigger(args(&["--set", "data.title=Hello from trigger"]), app.token.clone()).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("published msg_"), "{stdout}");
    assert!(
        stdout.contains(&format!("-> {}", ep["id"].as_str().unwrap())),
        "{stdout}"
    );
    assert!(stdout.contains("success"), "{stdout}");

    let out = trigger(args(&[]), app.token.clone()).await;
    assert!(out.status.success());
    let got = app.receiver.wait_for(2, |_| true).await;
    let payloads: Vec<Value> = got.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert_eq!(payloads[0]["data"]["title"], json!("Hello from trigger"));
    assert_ne!(payloads[0]["id"], payloads[1]["id"], "a new envelope each time");
    let (_, et) = app.get("/api/v1/event-type/content.published").await;
    let validator = hookd::catalog::compile(&et["schemas"]["1"]).unwrap();
    for p in &payloads {
        assert!(validator.is_valid(p), "a triggered event matches its schema: {p}");
    }

    // --data replaces `data`; in the sandbox a payload that breaks the schema is refused.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.json");
    std::fs::write(&file, r#"{"custom": [1, 2, 3]}"#).unwrap();
    let out = trigger(args(&["--data", file.to_str().unwrap()]), app.token.clone()).await;
    assert!(out.status.success(), "live warns only");
    let got = app.receiver.wait_for(3, |_| true).await;
    let third: Value = serde_json::from_slice(&got[2].body).unwrap();
    assert_eq!(third["data"], json!({"custom": [1, 2, 3]}));

    let sandbox = app.test_token().await;
    app.call_as(
        &sandbox,
        "POST",
        "/api/v1/app",
        Some(json!({"name": "S", "uid": "ws_t"})),
    )
    .await;
    let out = trigger(
        vec![
            "payment.failed".into(),
            "--app".into(),
            "ws_t".into(),
            "--set".into(),
            "data.amount=-1".into(),
        ],
        sandbox,
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("422") && stderr.contains("payload.data.amount"),
        "{stderr}"
    );
}

#[tokio::test]
async fn receive_prints_verifies_and_answers_with_the_chosen_status() {
    let app = TestApp::spawn().await;
    let secret = Secret::generate(&mut rand::thread_rng()).to_string();
    let mut receive = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["receive", "--port", "0", "--secret", &secret, "--status", "503"])
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(receive.stdout.take().unwrap()));
    let first = lines.next_line().await.unwrap().unwrap();
    // Port 0: the system picks a free port, and the first line names it.
    let port = first
        .split("listening on http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();

    app.create_app("ws_r").await;
    let (status, _) = app
        .post(
            "/api/v1/app/ws_r/endpoint",
            json!({"url": format!("http://127.0.0.1:{port}/hooks"), "secret": secret}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    app.send_message("ws_r", json!({"eventType": "a.b", "payload": {"hello": "receiver"}}))
        .await;
    app.wait_recorded(1).await;
    let (_, msgs) = app.get("/api/v1/app/ws_r/msg").await;
    let msg_id = msgs["data"][0]["id"].as_str().unwrap();
    let (_, attempts) = app.get(&format!("/api/v1/app/ws_r/attempt/msg/{msg_id}")).await;
    assert_eq!(attempts["data"][0]["responseStatusCode"], json!(503));

    let mut printed = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
    {
        let done = line.starts_with("answer:");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(text.contains("POST /hooks"), "{text}");
    assert!(text.contains(&format!("webhook-id: {msg_id}")), "{text}");
    assert!(text.contains("\"hello\": \"receiver\""), "pretty JSON: {text}");
    assert!(text.contains("signature: valid"), "{text}");
    assert!(text.contains("answer: 503"), "{text}");
}

#[test]
fn catalog_exports_and_imports_between_environments_and_refuses_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    {
        // First start loads the built-in catalog.
        let _server = crate::durability::spawn_serve(&["--data-dir", data_dir], &[]);
    }
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hookd"))
            .args(args)
            .args(["--data-dir", data_dir])
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let out = run(&["catalog", "export"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut exported: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exported.len(), 16);
    assert!(exported.iter().all(|e| e["schemas"]["1"]["examples"].is_array()));

    exported.truncate(2);
    exported[0]["description"] = json!("Changed for the sandbox");
    let file = dir.path().join("catalog.json");
    std::fs::write(&file, serde_json::to_vec(&exported).unwrap()).unwrap();
    let out = run(&["catalog", "import", file.to_str().unwrap(), "--environment", "test"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 event types into the test environment"));
    let out = run(&["catalog", "export", "--environment", "test"]);
    let test: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let changed = test.iter().find(|e| e["name"] == exported[0]["name"]).unwrap();
    assert_eq!(changed["description"], json!("Changed for the sandbox"));
    let out = run(&["catalog", "export"]);
    let live: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let untouched = live.iter().find(|e| e["name"] == exported[0]["name"]).unwrap();
    assert_ne!(
        untouched["description"],
        json!("Changed for the sandbox"),
        "live is untouched"
    );

    std::fs::write(&file, r#"[{"name": "ok.one", "description": "x", "schemas": {"1": {"type": 5}}}, {"name": "bad name", "description": "y"}]"#).unwrap();
    let out = run(&["catalog", "import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entry 0") && err.contains("entry 1"), "{err}");
}

#[test]
fn openapi_prints_the_api_with_the_catalog_as_webhooks() {
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    assert_eq!(doc["webhooks"].as_object().unwrap().len(), 16);
    let schema = &doc["webhooks"]["payment.failed"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(schema["properties"]["type"]["const"], json!("payment.failed"));
    assert!(doc["paths"]["/api/v1/app/{app_id}/listen"]["get"].is_object());
}

#[test]
fn token_create_makes_sandbox_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["token", "create", "--environment", "test", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("hk_test_"), "{token}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let record = rt.block_on(async {
        let store = hookd_store_sqlite::SqliteStore::open(&hookd_store_sqlite::SqliteOptions {
            path: dir.path().join("hookd.db"),
            synchronous: hookd_store_sqlite::Synchronous::Full,
            cache_mib: hookd_store_sqlite::DEFAULT_CACHE_MIB,
        })
        .unwrap();
        hookd_store::TokenStore::find_token(&store, &hookd::auth::hash_token(&token))
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(record.env, hookd_core::model::Environment::Test);
    let bad = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["token", "create", "--environment", "staging", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
