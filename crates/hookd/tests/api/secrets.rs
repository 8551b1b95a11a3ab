//! Secrets at rest: with `secrets.main_key`, endpoint secrets and sensitive header values are
//! sealed in the database, deliveries are signed as usual, and `hookd secrets rotate` re-seals
//! under a new key.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use hookd_signing::{verify, Secret, WebhookHeaders};
use hookd_store::prelude::*;
use serde_json::json;

use crate::helpers::TestApp;

/// Every byte the embedded database holds, WAL included.
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["hookd.db", "hookd.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn sealed_secrets_never_reach_the_database_file_and_still_sign() {
    let key = hookd_store::secrets::generate_key();
    let app = TestApp::spawn_with(|c| c.secrets.main_key = key.clone()).await;
    app.create_app("ws_sec").await;
    let secret = Secret::generate(&mut rand::thread_rng()).to_string();
    let ep = app
        .create_endpoint(
            "ws_sec",
            "/ok",
            json!({"secret": secret, "headers": {"Authorization": "Bearer topsecret-123", "X-Plain": "visible-value"}}),
        )
        .await;
    app.send_message("ws_sec", json!({"eventType": "a.b", "payload": {"n": 1}}))
        .await;
    let got = app.receiver.wait_for(1, |_| true).await;
    assert_eq!(got[0].header("authorization"), Some("Bearer topsecret-123"));
    let headers = WebhookHeaders {
        id: got[0].header("webhook-id").unwrap().into(),
        timestamp: got[0].header("webhook-timestamp").unwrap().into(),
        signature: got[0].header("webhook-signature").unwrap().into(),
    };
    let now = chrono::Utc::now().timestamp();
    verify(&Secret::parse(&secret).unwrap(), &headers, &got[0].body, now, 300).expect("signed with the secret");
    let (_, shown) = app
        .get(&format!(
            "/api/v1/app/ws_sec/endpoint/{}/secret",
            ep["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(shown["key"], json!(secret));
    // Rotation stores the old key sealed too.
    let (status, _) = app
        .post(
            &format!(
                "/api/v1/app/ws_sec/endpoint/{}/secret/rotate",
                ep["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);

    if std::env::var("HOOKD_TEST_BACKEND").as_deref() != Ok("postgres") {
        let raw = database_bytes(app.data_dir());
        assert!(
            contains(&raw, "visible-value"),
            "the scan sees plaintext where there is some"
        );
        assert!(!contains(&raw, &secret), "the endpoint secret is sealed");
        assert!(!contains(&raw, &secret["whsec_".len()..]), "not even its base64 part");
        assert!(!contains(&raw, "topsecret-123"), "sensitive header values are sealed");
        assert!(contains(&raw, "hkenc1:"));
    }
}

#[test]
fn rotate_reseals_under_the_new_key_and_the_old_key_alone_no_longer_reads() {
    use hookd_core::id::IdKind;
    use hookd_core::model::{Application, Endpoint, Environment};
    use hookd_store::secrets::{generate_key, SecretBox};

    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (generate_key(), generate_key());
    let open = |keys: Option<(&str, &[String])>| {
        hookd_store_sqlite::SqliteStore::open(&hookd_store_sqlite::SqliteOptions {
            path: dir.path().join("hookd.db"),
            synchronous: hookd_store_sqlite::Synchronous::Full,
            cache_mib: hookd_store_sqlite::DEFAULT_CACHE_MIB,
        })
        .unwrap()
        .with_secrets(keys.map(|(main, prev)| std::sync::Arc::new(SecretBox::new(main, prev).unwrap())))
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let now = chrono::Utc::now();
    let secret = Secret::generate(&mut rand::thread_rng()).to_string();
    let (app_id, ep_id) = rt.block_on(async {
        let store = open(Some((&old, &[])));
        let app = Application {
            id: IdKind::Application.generate(now, &mut rand::thread_rng()),
            env: Environment::Live,
            uid: None,
            name: "a".into(),
            metadata: Default::default(),
            throttle_rate: None,
            created_at: now,
            updated_at: now,
        };
        store.create_application(&app).await.unwrap();
        let ep = Endpoint {
            id: IdKind::Endpoint.generate(now, &mut rand::thread_rng()),
            app_id: app.id.clone(),
            uid: None,
            url: "https://example.com/hook".into(),
            description: String::new(),
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: Default::default(),
            secret: secret.clone(),
            headers: Default::default(),
            old_secrets: Vec::new(),
            failing_since: None,
            created_at: now,
            updated_at: now,
            destination: None,
        };
        store.create_endpoint(&ep).await.unwrap();
        (app.id, ep.id)
    });
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["secrets", "rotate", "--data-dir"])
        .arg(dir.path())
        .env("HOOKD_SECRETS__MAIN_KEY", &new)
        .env("HOOKD_SECRETS__PREVIOUS_KEYS", &old)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "re-sealed the secrets of 1 endpoints"
    );
    rt.block_on(async {
        let with_new = open(Some((&new, &[])));
        let ep = with_new.get_endpoint(&app_id, &ep_id).await.unwrap().unwrap();
        assert_eq!(ep.secret, secret);
        drop(with_new);
        let with_old = open(Some((&old, &[])));
        let err = with_old.get_endpoint(&app_id, &ep_id).await.unwrap_err();
        assert!(
            err.to_string().contains("internal") || format!("{err:?}").contains("not among"),
            "{err:?}"
        );
        drop(with_old);
        let without = open(None);
        let err = without.get_endpoint(&app_id, &ep_id).await.unwrap_err();
        assert!(format!("{err:?}").contains("secrets.main_key is not set"), "{err:?}");
    });
}

#[test]
fn serve_without_a_key_warns_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .env_remove("HOOKD_SECRETS__MAIN_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let warned = lines
        .by_ref()
        .take(20)
        .map_while(Result::ok)
        .any(|l| l.contains("secrets.main_key is not set"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned);
}

#[tokio::test]
async fn a_rotation_answer_is_not_kept_for_replay() {
    let app = TestApp::spawn().await;
    app.create_app("ws_rot").await;
    let ep = app.create_endpoint("ws_rot", "/ok", json!({})).await;
    let path = format!(
        "{}/api/v1/app/ws_rot/endpoint/{}/secret/rotate",
        app.base,
        ep["id"].as_str().unwrap()
    );
    let mut keys = Vec::new();
    for _ in 0..2 {
        let resp = app
            .client
            .post(&path)
            .bearer_auth(&app.token)
            .header("idempotency-key", "rotate-once")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(!resp.headers().contains_key("idempotent-replayed"));
        let body: serde_json::Value = resp.json().await.unwrap();
        keys.push(body["key"].as_str().unwrap().to_string());
    }
    assert_ne!(
        keys[0], keys[1],
        "a repeat rotates again rather than replaying a stored key"
    );
}

/// A header value that merely looks sealed cannot make an application unreadable: the marker
/// is refused on input (422), and values are opened by field (only sensitive headers), so the
/// application keeps publishing and its endpoint can still be deleted.
#[tokio::test]
async fn a_header_value_with_the_sealed_marker_is_refused_and_cannot_break_reads() {
    let app = TestApp::spawn_with(|c| c.secrets.main_key = hookd_store::secrets::generate_key()).await;
    app.create_app("ws_marker").await;
    let (status, body) = app
        .post(
            "/api/v1/app/ws_marker/endpoint",
            json!({"url": app.receiver.url("/ok"), "headers": {"X-Note": "hkenc1:abc:def"}}),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "headers", "X-Note"]), "{body}");
    let ep = app
        .create_endpoint(
            "ws_marker",
            "/ok",
            json!({"uid": "fine", "headers": {"X-Note": "plain"}}),
        )
        .await;
    let m = app
        .send_message("ws_marker", json!({"eventType": "a.b", "payload": {"n": 1}}))
        .await;
    assert!(m["id"].is_string());
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/app/ws_marker/endpoint/{}", ep["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 204);
}
