//! The integration guide's verification examples, run against a real delivery.
//!
//! The examples live in `docs/examples/` and the guide shows them verbatim (a test keeps each
//! code block equal to its file). Each is run, in its own language, over the same cases: the
//! delivery hookd sent with its body tampered with, checked with the wrong secret, and
//! correctly re-signed with a timestamp 10 minutes old (all refused); the genuine delivery
//! (accepted); and the genuine delivery once more, a replayed `webhook-id` (refused). TypeScript is type-checked with `tsc --strict` and run
//! with Node, Go is built with `go build`, Python runs with the system interpreter (standard
//! library alone, and with `standardwebhooks`), and the Rust example is compiled into this
//! test. `scripts/test.sh` installs what they need (`.ci/run` installs Go).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::helpers::TestApp;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WRONG: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// The forgeries come first, so a check that wrongly passes one cannot be hidden by the replay
/// guard (which would refuse the genuine delivery's id on a second sight).
const EXPECTED: [&str; 5] = ["rejected", "rejected", "rejected", "accepted", "rejected"];

#[path = "../../../../docs/examples/verify_delivery.rs"]
mod verify_delivery;

/// How an endpoint signs, and what its consumer verifies with.
struct Scheme {
    /// The endpoint's secret (`whsec_…` or `whsk_…`).
    endpoint_secret: &'static str,
    /// What the consumer verifies with: the same secret, or the public key (`whpk_…`).
    verify_with: &'static str,
    /// Another consumer's key, which must not verify.
    wrong: &'static str,
}

const HMAC: Scheme = Scheme {
    endpoint_secret: SECRET,
    verify_with: SECRET,
    wrong: WRONG,
};

/// RFC 8032's first test key as the endpoint's, and its second test key's public half as the
/// wrong one.
const ED25519: Scheme = Scheme {
    endpoint_secret: "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=",
    verify_with: "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    wrong: "whpk_PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=",
};

/// A delivery hookd really sent to an endpoint signing with `scheme`, and the cases built from
/// it: tampered body, wrong key, stale timestamp (correctly signed, under a new id), genuine,
/// and the genuine delivery again.
async fn cases_for(scheme: &Scheme) -> Value {
    let app = TestApp::spawn().await;
    app.create_app("ws_guide").await;
    app.create_endpoint("ws_guide", "/ok", json!({"secret": scheme.endpoint_secret}))
        .await;
    app.send_message(
        "ws_guide",
        json!({"eventType": "a.b", "payload": {"note": "a genuine delivery", "n": 1}}),
    )
    .await;
    let delivery = app.receiver.wait_for(1, |r| r.path == "/ok").await.remove(0);
    let header = |name: &str| delivery.header(name).expect(name).to_string();
    let body = String::from_utf8(delivery.body.to_vec()).unwrap();
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let genuine =
        json!({"webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": header("webhook-signature")});
    // Correctly signed, 10 minutes old, under an id not seen before.
    let stale_at = timestamp.parse::<i64>().unwrap() - 600;
    let stale_id = format!("{id}stale");
    let key = hookd_signing::SigningKey::parse_endpoint_key(scheme.endpoint_secret).unwrap();
    let stale = json!({
        "webhook-id": stale_id,
        "webhook-timestamp": stale_at.to_string(),
        "webhook-signature": key.sign(&stale_id, stale_at, body.as_bytes()),
    });
    let tampered = body.replacen("a genuine delivery", "a forged delivery!", 1);
    assert_ne!(tampered, body);
    app.stop().await;
    let with = scheme.verify_with;
    json!([
        {"name": "tampered body", "secret": with, "headers": genuine, "body": tampered},
        {"name": "wrong key", "secret": scheme.wrong, "headers": genuine, "body": body},
        {"name": "stale timestamp", "secret": with, "headers": stale, "body": body},
        {"name": "genuine", "secret": with, "headers": genuine, "body": body},
        {"name": "replayed webhook-id", "secret": with, "headers": genuine, "body": body},
    ])
}

/// Runs `cmd` with `cases` on stdin; returns its stdout lines.
fn run(mut cmd: Command, cases: &Value) -> Vec<String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{shown}: {e} (scripts/test.sh installs the toolchains)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{shown}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs a build or check step, failing with its output.
fn step(mut cmd: Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test.sh installs the toolchains)"));
    assert!(
        out.status.success(),
        "{cmd:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn example(name: &str) -> PathBuf {
    Path::new(ROOT).join("docs/examples").join(name)
}

fn driver(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guide").join(name)
}

#[tokio::test]
async fn every_verification_example_accepts_a_genuine_delivery_and_refuses_forgeries() {
    let cases = cases_for(&HMAC).await;
    let ed25519 = cases_for(&ED25519).await;
    let check = |language: &str, cases: &Value, verdicts: Vec<String>| {
        let cases = cases.as_array().unwrap();
        for ((case, want), got) in cases.iter().zip(EXPECTED).zip(&verdicts) {
            assert_eq!(got, want, "{language}: {}", case["name"]);
        }
        assert_eq!(verdicts.len(), cases.len(), "{language}: {verdicts:?}");
    };

    // Python, with the standard library alone and with `standardwebhooks`.
    for file in ["verify_stdlib.py", "verify_standardwebhooks.py"] {
        let mut cmd = Command::new("python3");
        cmd.arg(driver("drive.py")).arg(example(file));
        check(file, &cases, run(cmd, &cases));
    }
    let mut cmd = Command::new("python3");
    cmd.arg(driver("drive.py"))
        .arg(example("verify_v1a.py"))
        .arg("verify_v1a");
    check("verify_v1a.py", &ed25519, run(cmd, &ed25519));

    let dir = tempfile::tempdir().unwrap();

    // TypeScript: type-checked with --strict, then run with Node.
    let ts = dir.path().join("ts");
    std::fs::create_dir_all(&ts).unwrap();
    for file in ["verify.ts", "verify_v1a.ts"] {
        std::fs::copy(example(file), ts.join(file)).unwrap();
    }
    std::fs::copy(driver("drive.ts"), ts.join("drive.ts")).unwrap();
    let tsc = std::env::var("HOOKD_TSC").unwrap_or_else(|_| "tsc".into());
    let mut cmd = Command::new(tsc);
    cmd.current_dir(&ts)
        .args([
            "--strict", "--target", "es2020", "--module", "commonjs", "--outDir", "out",
        ])
        .args(["--types", "node", "verify.ts", "verify_v1a.ts", "drive.ts"]);
    if let Ok(types) = std::env::var("HOOKD_NODE_TYPES") {
        cmd.args(["--typeRoots", &types]);
    }
    step(cmd);
    let mut cmd = Command::new("node");
    cmd.arg(ts.join("out/drive.js"));
    check("verify.ts", &cases, run(cmd, &cases));
    let mut cmd = Command::new("node");
    cmd.arg(ts.join("out/drive.js")).arg("v1a");
    check("verify_v1a.ts", &ed25519, run(cmd, &ed25519));

    // Go: the example as a package, built with a driver.
    let go = dir.path().join("go");
    std::fs::create_dir_all(go.join("webhooks")).unwrap();
    std::fs::write(go.join("go.mod"), "module guide\n\ngo 1.19\n").unwrap();
    std::fs::copy(example("verify.go"), go.join("webhooks/verify.go")).unwrap();
    std::fs::copy(driver("drive.go"), go.join("main.go")).unwrap();
    let mut cmd = Command::new("go");
    cmd.current_dir(&go)
        .args(["build", "-o", "drive", "."])
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", dir.path().join("go-cache"))
        .env("GOPATH", dir.path().join("go-path"));
    step(cmd);
    check("verify.go", &cases, run(Command::new(go.join("drive")), &cases));

    // Rust: compiled into this test.
    let secret = |s: &str| hookd_signing::Secret::parse(s).unwrap();
    let guard = verify_delivery::ReplayGuard::default();
    let verdicts = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut headers = http::HeaderMap::new();
            for (name, value) in c["headers"].as_object().unwrap() {
                let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
                headers.insert(name, value.as_str().unwrap().parse().unwrap());
            }
            let now = verify_delivery::unix_now();
            let verified = verify_delivery::verify_delivery(
                &secret(c["secret"].as_str().unwrap()),
                &headers,
                c["body"].as_str().unwrap().as_bytes(),
                now,
            );
            let ok = verified.is_ok_and(|id| guard.first_time(&id, now));
            if ok { "accepted" } else { "rejected" }.to_string()
        })
        .collect();
    check("verify_delivery.rs", &cases, verdicts);
}

/// The guide shows each example file verbatim, between `<!-- example: FILE -->` and
/// `<!-- end example -->`; `HOOKD_BLESS=1` copies the files into the guide.
#[test]
fn the_guide_shows_each_example_file_verbatim() {
    let path = Path::new(ROOT).join("docs/integration-guide.md");
    let guide = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut rest = guide.as_str();
    let mut shown = Vec::new();
    while let Some(at) = rest.find("<!-- example: ") {
        let open_end = at + rest[at..].find(" -->").unwrap() + " -->".len();
        let file = &rest[at + "<!-- example: ".len()..open_end - " -->".len()];
        let close = open_end + rest[open_end..].find("<!-- end example -->").expect("an end marker");
        let code = std::fs::read_to_string(example(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let language = match file.rsplit('.').next().unwrap() {
            "ts" => "typescript",
            "py" => "python",
            "rs" => "rust",
            "go" => "go",
            other => other,
        };
        out.push_str(&rest[..open_end]);
        out.push_str(&format!("\n```{language}\n{code}```\n"));
        rest = &rest[close..];
        shown.push(file.to_string());
    }
    out.push_str(rest);
    for file in std::fs::read_dir(Path::new(ROOT).join("docs/examples")).unwrap() {
        let name = file.unwrap().file_name().to_string_lossy().into_owned();
        assert!(shown.contains(&name), "docs/examples/{name} is not shown in the guide");
    }
    if std::env::var_os("HOOKD_BLESS").is_some() {
        std::fs::write(&path, out).unwrap();
        return;
    }
    assert!(
        out == guide,
        "the guide's examples differ from docs/examples/; run this test with HOOKD_BLESS=1 and commit"
    );
}

/// The best-practice receivers of the guide (TypeScript and Python, standard library only),
/// each run as a process behind a real endpoint: they answer at once (every attempt is a `204`
/// that took less than the second each event takes to process), process each message exactly
/// once (a resend is answered but not processed again), and refuse a forged request with 400.
#[tokio::test]
async fn the_receiver_examples_answer_at_once_process_later_and_deduplicate() {
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("ts");
    std::fs::create_dir_all(&ts).unwrap();
    for file in ["verify.ts", "receiver.ts"] {
        std::fs::copy(example(file), ts.join(file)).unwrap();
    }
    let tsc = std::env::var("HOOKD_TSC").unwrap_or_else(|_| "tsc".into());
    let mut cmd = Command::new(tsc);
    cmd.current_dir(&ts)
        .args([
            "--strict", "--target", "es2020", "--module", "commonjs", "--outDir", "out",
        ])
        .args(["--types", "node", "verify.ts", "receiver.ts"]);
    if let Ok(types) = std::env::var("HOOKD_NODE_TYPES") {
        cmd.args(["--typeRoots", &types]);
    }
    step(cmd);
    let mut node = Command::new("node");
    node.arg(ts.join("out/receiver.js"));
    let mut python = Command::new("python3");
    python
        .arg("receiver.py")
        .current_dir(Path::new(ROOT).join("docs/examples"));
    for (name, cmd) in [("receiver.ts", node), ("receiver.py", python)] {
        receiver_behaves(name, cmd).await;
    }
}

async fn receiver_behaves(name: &str, mut cmd: Command) {
    use std::io::BufRead;
    // Port 0: the receiver gets a free port from the system and names it in its first line,
    // so no other test can take the port between a pick and the bind.
    let mut child = cmd
        .env("HOOKD_WEBHOOK_SECRET", SECRET)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    let processed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let lines = processed.clone();
    let (first_line, listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines_read = std::io::BufReader::new(stdout).lines().map_while(Result::ok);
        if let Some(first) = lines_read.next() {
            let _ = first_line.send(first);
        }
        for line in lines_read {
            lines.lock().unwrap().push(line);
        }
    });
    let first = listening
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{name} never said where it listens: {e}"));
    let url = first
        .strip_prefix("listening on ")
        .map(|base| format!("{base}/webhooks"))
        .unwrap_or_else(|| panic!("{name}'s first line: {first}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{name}: {url}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let forged = loop {
        let sent = client
            .post(&url)
            .header("webhook-id", "msg_forged")
            .header("webhook-timestamp", chrono::Utc::now().timestamp().to_string())
            .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl")
            .body("{}")
            .send()
            .await;
        match sent {
            Ok(r) => break r.status().as_u16(),
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("{name} never listened: {e}"),
        }
    };
    assert_eq!(forged, 400, "{name} refuses a forged request");

    let app = TestApp::spawn().await;
    app.create_app("ws_rx").await;
    let (status, endpoint) = app
        .post("/api/v1/app/ws_rx/endpoint", json!({"url": url, "secret": SECRET}))
        .await;
    assert_eq!(status.as_u16(), 201, "{endpoint}");
    let ep = endpoint["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for n in 0..3 {
        let msg = app
            .send_message("ws_rx", json!({"eventType": "a.b", "payload": {"n": n}}))
            .await;
        ids.push(msg["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        app.wait_delivery_status("ws_rx", id, "success").await;
    }
    // The first message once more: answered, not processed again.
    let (status, _) = app
        .post(
            &format!("/api/v1/app/ws_rx/msg/{}/endpoint/{ep}/resend", ids[0]),
            json!({}),
        )
        .await;
    assert_eq!(status.as_u16(), 202, "{name}: resend");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, attempts) = app.get(&format!("/api/v1/app/ws_rx/attempt/endpoint/{ep}")).await;
        let done = processed.lock().unwrap().len();
        if attempts["data"].as_array().unwrap().len() == 4 && done >= 3 {
            for a in attempts["data"].as_array().unwrap() {
                assert_eq!(a["responseStatusCode"], 204, "{name}: {a}");
                let took = a["responseDurationMs"].as_i64().unwrap();
                assert!(
                    took < 900,
                    "{name} answered after {took} ms, before processing would be done"
                );
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: {attempts} / {done} processed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Time for a second processing of the resent message, which must not come.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut done = processed.lock().unwrap().clone();
    done.sort();
    let mut want: Vec<String> = ids.iter().map(|id| format!("processed {id}")).collect();
    want.sort();
    assert_eq!(done, want, "{name} processes each message exactly once");
    app.stop().await;
}
