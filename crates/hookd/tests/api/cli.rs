//! The command line: `token create`, `verify`, and zero-configuration `serve`.

use std::process::{Command, Stdio};

use hookd_signing::Secret;

fn hookd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hookd"))
}

#[test]
fn token_create_prints_only_a_token_that_the_api_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = hookd()
        .args(["token", "create", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stdout must hold the token and nothing else: {stdout:?}"
    );
    assert!(lines[0].starts_with("hk_live_") && lines[0].len() > 30);
    assert!(dir.path().join("hookd.db").exists());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = hookd_store_sqlite::SqliteStore::open(&hookd_store_sqlite::SqliteOptions {
            path: dir.path().join("hookd.db"),
            synchronous: hookd_store_sqlite::Synchronous::Full,
            cache_mib: hookd_store_sqlite::DEFAULT_CACHE_MIB,
        })
        .unwrap();
        let found = hookd_store::TokenStore::find_token(&store, &hookd::auth::hash_token(lines[0]))
            .await
            .unwrap();
        assert!(found.is_some(), "the token is stored (hashed) and can be found");
        let raw = std::fs::read(dir.path().join("hookd.db")).unwrap();
        assert!(
            !raw.windows(lines[0].len()).any(|w| w == lines[0].as_bytes()),
            "the secret itself is never stored"
        );
    });
}

fn verify_cmd(secret: &str, id: &str, ts: &str, sig: &str, body: &[u8]) -> (i32, String) {
    let mut child = hookd()
        .args([
            "verify",
            "--secret",
            secret,
            "--id",
            id,
            "--timestamp",
            ts,
            "--signature",
            sig,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), body).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn verify_exits_0_for_a_valid_webhook_and_1_with_the_reason_otherwise() {
    let secret = Secret::generate(&mut rand::thread_rng());
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"type":"user.created"}"#;
    let sig = secret.sign("msg_1", now, body);
    let (code, out) = verify_cmd(&secret.to_string(), "msg_1", &now.to_string(), &sig, body);
    assert_eq!((code, out.trim()), (0, "valid"));

    let (code, out) = verify_cmd(
        &secret.to_string(),
        "msg_1",
        &now.to_string(),
        &sig,
        b"{\"tampered\":1}",
    );
    assert_eq!(code, 1);
    assert!(out.starts_with("invalid:") && out.contains("signature"), "{out}");

    let old = now - 3_600;
    let (code, out) = verify_cmd(
        &secret.to_string(),
        "msg_1",
        &old.to_string(),
        &secret.sign("msg_1", old, body),
        body,
    );
    assert_eq!(code, 1);
    assert!(out.contains("old"), "{out}");

    let (code, out) = verify_cmd("whsec_", "msg_1", &now.to_string(), &sig, body);
    assert_eq!(code, 1);
    assert!(out.contains("secret"), "{out}");
}

#[test]
fn serve_with_zero_configuration_uses_hookd_data_and_prints_a_token_once() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0 keeps the test from colliding with anything; everything else is the default.
    let mut child = hookd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("hookd-data/hookd.db"), "{first}");
    // One admin token per environment, each alone on its line under a heading.
    assert!(lines.next().unwrap().unwrap().starts_with("hookd: live environment"));
    let token = lines.next().unwrap().unwrap();
    assert!(token.starts_with("hk_live_"));
    assert!(lines.next().unwrap().unwrap().starts_with("hookd: test environment"));
    let sandbox = lines.next().unwrap().unwrap();
    assert!(sandbox.starts_with("hk_test_"), "{sandbox}");
    assert!(lines
        .next()
        .unwrap()
        .unwrap()
        .starts_with("hookd: listening on http://127.0.0.1:"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dir.path().join("hookd-data/hookd.db").exists());
}

#[test]
fn migrate_creates_the_embedded_schema_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = hookd()
            .args(["migrate", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("SQLite schema is up to date"));
    }
    assert!(dir.path().join("hookd.db").exists());
}

#[tokio::test]
async fn migrate_and_token_create_work_against_postgres() {
    let Ok(url) = std::env::var("HOOKD_TEST_POSTGRES_URL") else {
        eprintln!("HOOKD_TEST_POSTGRES_URL is not set; the PostgreSQL CLI test was not run");
        return;
    };
    let schema = hookd_store_postgres::testing::TestSchema::create(&url).await;
    let run = |args: &[&str]| {
        hookd()
            .args(args)
            .args(["--database", &schema.store_url()])
            .env("HOOKD_STORAGE__POSTGRES_SCHEMA", schema.name())
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let out = run(&["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PostgreSQL schema is up to date"));
    let out = run(&["token", "create"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(token.trim().starts_with("hk_live_") && token.lines().count() == 1);
    let store = hookd_store_postgres::PostgresStore::connect(&schema.store_url(), schema.options())
        .await
        .unwrap();
    let found = hookd_store::TokenStore::find_token(&store, &hookd::auth::hash_token(token.trim()))
        .await
        .unwrap();
    assert!(found.is_some(), "the token is stored hashed in PostgreSQL");
    store.close().await;
}
