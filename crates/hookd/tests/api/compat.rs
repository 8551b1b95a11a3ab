//! Compatibility with real clients: the official Svix Python SDK drives hookd unchanged, and
//! the Standard Webhooks reference library verifies hookd's deliveries.
//!
//! Needs `python3` with the PyPI packages `svix` and `standardwebhooks` (`scripts/test.sh` and
//! `.ci/run` install them). A missing package fails the test: compatibility is never skipped.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::helpers::TestApp;

fn script(name: &str) -> String {
    format!("{}/tests/compat/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    std::env::var("HOOKD_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[tokio::test]
async fn official_svix_python_sdk_runs_unchanged_against_hookd() {
    let app = TestApp::spawn().await;
    let base = app.base.clone();
    let token = app.token.clone();
    let receiver = app.receiver.url("/ok");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script("svix_sdk_flow.py"))
            .env("HOOKD_URL", base)
            .env("HOOKD_TOKEN", token)
            .env("RECEIVER_URL", receiver)
            .output()
            .expect("run python3 (is it installed?)")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "Svix SDK flow failed (pip install svix standardwebhooks):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(output.stdout.trim_ascii()).expect("one JSON line");
    // The scheduled delivery and the SDK's manual resend both arrive with the message id.
    let msg_id = result["msg_id"].as_str().unwrap().to_string();
    let got = app
        .receiver
        .wait_for(2, |r| {
            r.path == "/ok" && r.header("webhook-id") == Some(msg_id.as_str())
        })
        .await;
    for r in &got {
        assert_eq!(r.header("x-workspace"), Some("ws_sdk"));
        assert_eq!(r.header("authorization"), Some("Bearer s3cret"));
    }
    let (_, list) = app
        .get(&format!(
            "/api/v1/app/ws_sdk/attempt/msg/{}",
            result["msg_id"].as_str().unwrap()
        ))
        .await;
    let triggers: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["triggerType"].as_i64().unwrap())
        .collect();
    assert!(
        triggers.contains(&0) && triggers.contains(&1),
        "a scheduled and a manual attempt: {list}"
    );
    // The endpoint filters on content.published, so send-example's svix.ping was stored but,
    // as in Svix, not delivered to it.
    let (_, pings) = app.get("/api/v1/app/ws_sdk/msg?event_types=svix.ping").await;
    assert_eq!(pings["data"].as_array().unwrap().len(), 1);
}

/// Runs the Standard Webhooks reference library on one delivery (`secret`, `headers`, `body`).
async fn standardwebhooks_verify(case: Value) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python())
            .arg(script("verify_delivery.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(case.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn deliveries_verify_with_the_standard_webhooks_reference_library() {
    let app = TestApp::spawn().await;
    app.create_app("ws_std").await;
    let ep = app.create_endpoint("ws_std", "/ok", json!({})).await;
    let (_, secret) = app
        .get(&format!(
            "/api/v1/app/ws_std/endpoint/{}/secret",
            ep["id"].as_str().unwrap()
        ))
        .await;
    app.send_message(
        "ws_std",
        json!({"eventType": "user.created", "payload": {"id": "evt_1", "data": {"name": "Zoë"}}}),
    )
    .await;
    let r = app.receiver.wait_for(1, |r| r.path == "/ok").await.remove(0);
    let case = json!({
        "secret": secret["key"],
        "headers": {
            "webhook-id": r.header("webhook-id"),
            "webhook-timestamp": r.header("webhook-timestamp"),
            "webhook-signature": r.header("webhook-signature"),
        },
        "body": String::from_utf8(r.body.to_vec()).unwrap(),
    });
    let output = standardwebhooks_verify(case).await;
    assert!(
        output.status.success(),
        "standardwebhooks rejected the delivery:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
}

#[tokio::test]
async fn official_svix_sdk_drives_destinations_and_polling() {
    let app = TestApp::spawn().await;
    let (base, token) = (app.base.clone(), app.token.clone());
    let receiver = app.receiver.url("/ok");
    // The machine's broker and database back the RabbitMQ and PostgreSQL destinations.
    let queue = format!("hookd-sdk-{:016x}", rand::random::<u64>());
    let (_conn, channel) = crate::sinks::queue(&queue).await;
    // The PostgreSQL table is driven when a server is named (HOOKD_TEST_POSTGRES_URL).
    let pg_url = crate::sinks::postgres_url();
    let schema = match &pg_url {
        Some(url) => Some(hookd_store_postgres::testing::TestSchema::create(url).await),
        None => None,
    };
    let mut env = vec![
        ("RABBIT_URI", crate::sinks::BROKER.to_string()),
        ("RABBIT_QUEUE", queue.clone()),
    ];
    if let (Some(url), Some(schema)) = (&pg_url, &schema) {
        env.push(("PG_URL", url.clone()));
        env.push(("PG_TABLE", format!("{}.voided", schema.name())));
    }
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script("svix_sdk_destinations.py"))
            .env("HOOKD_URL", base)
            .env("HOOKD_TOKEN", token)
            .env("RECEIVER_URL", receiver)
            .envs(env)
            .output()
            .expect("run python3 (is it installed?)")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "Svix SDK destinations flow failed (pip install svix):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(output.stdout.trim_ascii()).expect("one JSON line");
    // What the SDK polled is in the attempt log: the plain polls and the consumer's, each
    // message at least once as a success.
    let (_, attempts) = app
        .get(&format!(
            "/api/v1/app/ledger/attempt/endpoint/{}?limit=250",
            result["destination_id"].as_str().unwrap()
        ))
        .await;
    let attempts = attempts["data"].as_array().unwrap();
    for id in result["paid"].as_array().unwrap() {
        assert!(
            attempts
                .iter()
                .any(|a| a["msgId"] == *id && a["url"] == "poll:consumer/books"),
            "{id} polled by the consumer: {attempts:?}"
        );
    }
    assert!(attempts.iter().all(|a| a["status"] == 0));
    // The FIFO destination delivered the three messages in order, in signed batches the
    // Standard Webhooks library verifies with the key the SDK rotated to.
    let want: Vec<String> = result["fifo_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let (batch, ids) = loop {
        let batches: Vec<_> = app
            .receiver
            .requests()
            .into_iter()
            .filter(|r| r.path == "/ok")
            .collect();
        let ids: Vec<String> = batches
            .iter()
            .flat_map(|b| serde_json::from_slice::<Vec<Value>>(&b.body).unwrap())
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        if ids.len() >= want.len() || tokio::time::Instant::now() > deadline {
            break (batches[0].clone(), ids);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(ids, want);
    assert_eq!(batch.header("x-ledger"), Some("1"));
    let case = json!({
        "secret": result["fifo_key"],
        "headers": {
            "webhook-id": batch.header("webhook-id"),
            "webhook-timestamp": batch.header("webhook-timestamp"),
            "webhook-signature": batch.header("webhook-signature"),
        },
        "body": String::from_utf8(batch.body.to_vec()).unwrap(),
    });
    let verified = standardwebhooks_verify(case).await;
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout).trim(),
        "ok",
        "standardwebhooks verifies the batch: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // The voided invoices reached the queue, in order, each verifying with the key the SDK
    // rotated to...
    let voided: Vec<&str> = result["voided"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let got = crate::sinks::take(&channel, &queue, 2).await;
    for (g, id) in got.iter().zip(&voided) {
        assert_eq!(g.headers["webhook-id"], *id);
        let case = json!({
            "secret": result["bus_key"],
            "headers": {
                "webhook-id": g.headers["webhook-id"],
                "webhook-timestamp": g.headers["webhook-timestamp"],
                "webhook-signature": g.headers["webhook-signature"],
            },
            "body": String::from_utf8(g.body.clone()).unwrap(),
        });
        let verified = standardwebhooks_verify(case).await;
        assert_eq!(
            String::from_utf8_lossy(&verified.stdout).trim(),
            "ok",
            "{id} from the queue"
        );
    }
    // ...and the table, as rows whose signature verifies over the stored payload.
    let (Some(url), Some(schema)) = (pg_url, schema) else {
        return;
    };
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let query = format!(
        "SELECT id, payload::text, signature, extract(epoch FROM timestamp)::bigint::text FROM \"{}\".\"voided\" ORDER BY id",
        schema.name()
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let rows: Vec<(String, String, String, String)> = loop {
        let rows = sqlx::query_as(&query).fetch_all(&mut db).await.unwrap_or_default();
        if rows.len() >= 2 || tokio::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut want: Vec<&str> = voided.clone();
    want.sort();
    assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), want);
    for (id, body, signature, timestamp) in rows {
        let case = json!({
            "secret": result["table_key"],
            "headers": {"webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature},
            "body": body,
        });
        let verified = standardwebhooks_verify(case).await;
        assert_eq!(
            String::from_utf8_lossy(&verified.stdout).trim(),
            "ok",
            "{id} from the table"
        );
    }
}
