//! Hostile bodies: deeply nested, not UTF-8, not JSON, not an object, with NUL bytes, or sent
//! as another content type. Each gets a 4xx in the Svix error shape, nothing is stored, and
//! hookd keeps answering.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// Posts raw `bytes` as `content_type` to `path` with the admin token.
async fn raw(app: &TestApp, path: &str, content_type: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Svix's two error shapes: `{"code", "detail"}`, or a validation error's
/// `{"detail": [{"loc", "msg", "type"}]}`.
fn svix_error(body: &Value) -> bool {
    (body["code"].is_string() && body["detail"].is_string())
        || body["detail"]
            .as_array()
            .is_some_and(|d| !d.is_empty() && d.iter().all(|e| e["loc"].is_array() && e["msg"].is_string()))
}

#[tokio::test]
async fn hostile_bodies_get_a_4xx_in_svix_shape_and_store_nothing() {
    let app = TestApp::spawn().await;
    app.create_app("ws_bad").await;
    let depth = 100_000;
    let nested_payload = format!(
        r#"{{"eventType": "a.b", "payload": {{"x": {}1{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let mut not_utf8 = br#"{"eventType": "a.b", "payload": {"x": ""#.to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    not_utf8.extend_from_slice(br#""}}"#);
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("nested 100,000 deep", "application/json", nested_payload.into_bytes()),
        ("invalid UTF-8", "application/json", not_utf8),
        ("not JSON", "application/json", b"{\"eventType\": ".to_vec()),
        ("an array", "application/json", b"[1, 2, 3]".to_vec()),
        (
            "a payload that is not an object",
            "application/json",
            br#"{"eventType": "a.b", "payload": 7}"#.to_vec(),
        ),
        (
            "a NUL in the event type",
            "application/json",
            b"{\"eventType\": \"a\\u0000b\", \"payload\": {}}".to_vec(),
        ),
        (
            "form-encoded",
            "application/x-www-form-urlencoded",
            b"eventType=a.b".to_vec(),
        ),
        ("no body", "application/json", Vec::new()),
    ];
    for (what, content_type, bytes) in cases {
        let (status, body) = raw(&app, "/api/v1/app/ws_bad/msg", content_type, bytes).await;
        assert!(status.is_client_error(), "{what}: {status} {body}");
        assert!(svix_error(&body), "{what}: the Svix error shape: {body}");
    }
    // Other routes that take a body refuse the same way.
    for path in ["/api/v1/app", "/api/v1/event-type", "/api/v1/app/ws_bad/endpoint"] {
        let (status, body) = raw(&app, path, "application/json", vec![0xff, 0x00, 0x7b]).await;
        assert!(status.is_client_error(), "{path}: {status} {body}");
        assert!(svix_error(&body), "{path}: {body}");
    }
    // A number no float can hold is still JSON: accepted and kept byte for byte (a 500 here
    // once came from re-reading the payload to build the answer, after it was stored).
    let digits = format!("1{}", "0".repeat(5000));
    let huge = format!(r#"{{"eventType": "a.b", "payload": {{"n": {digits}}}}}"#);
    let (status, body) = raw(&app, "/api/v1/app/ws_bad/msg", "application/json", huge.into_bytes()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let text = body.as_str().expect("an answer serde_json cannot hold as numbers");
    assert!(
        text.contains(&format!(r#""payload":{{"n": {digits}}}"#)),
        "as published"
    );

    // Nesting up to the limit is fine; one level more is refused.
    let nested = |levels: usize| {
        json!({"eventType": "a.b", "payload": serde_json::from_str::<Value>(&format!(
            "{{\"x\": {}1{}}}",
            "[".repeat(levels - 1),
            "]".repeat(levels - 1)
        ))
        .unwrap()})
    };
    let (status, body) = app.post("/api/v1/app/ws_bad/msg", nested(101)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "payload"]));
    let (status, body) = app.post("/api/v1/app/ws_bad/msg", nested(100)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, list) = app.get("/api/v1/app/ws_bad/msg?with_content=false").await;
    assert_eq!(status, StatusCode::OK, "hookd still answers");
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        2,
        "only the huge number and the message within the depth limit were stored"
    );
}

/// What a client might send to message create: well-formed bodies with any value in any field
/// (including the schema-checked event type), and raw bytes.
fn message_bodies() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let text = prop_oneof![".{0,40}", "[a-z.]{1,20}", Just("x".repeat(300))];
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        text.clone().prop_map(Value::String),
    ];
    let json = scalar.clone().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z$.\\\\ ]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let typed_payload = prop_oneof![
        3 => (0i64..1_000).prop_map(|n| json!({"n": n})),
        1 => any::<i64>().prop_map(|n| json!({"n": n})),
        1 => text.clone().prop_map(|s| json!({"n": s})),
        1 => Just(json!({})),
    ];
    // Each field is usually present (the required ones) or left out half the time (the others);
    // when present, usually valid, sometimes hostile.
    let field = |name: &'static str, valid: BoxedStrategy<Value>, hostile: BoxedStrategy<Value>| {
        let present = if matches!(name, "eventType" | "payload") {
            0.9
        } else {
            0.5
        };
        proptest::option::weighted(present, prop_oneof![3 => valid, 1 => hostile])
            .prop_map(move |v| v.map(|v| (name, v)))
    };
    let object = proptest::collection::btree_map("[a-z$.\\\\ ]{0,6}", json.clone(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    let words = |n| {
        proptest::collection::vec("[a-z][a-z0-9._-]{0,9}", 1..n)
            .prop_map(|v| json!(v))
            .boxed()
    };
    let structured = (
        field(
            "eventType",
            prop_oneof![Just(json!("a.b")), Just(json!("typed.event"))].boxed(),
            scalar.clone().boxed(),
        ),
        field(
            "payload",
            prop_oneof![object, typed_payload].boxed(),
            json.clone().boxed(),
        ),
        field(
            "channels",
            words(6),
            prop_oneof![
                proptest::collection::vec(text.clone(), 0..12).prop_map(|v| json!(v)),
                scalar.clone()
            ]
            .boxed(),
        ),
        field(
            "eventId",
            "[a-zA-Z0-9_-]{1,30}".prop_map(Value::String).boxed(),
            prop_oneof![text.clone().prop_map(Value::String), scalar.clone()].boxed(),
        ),
        field(
            "payloadRetentionPeriod",
            (1i64..=90).prop_map(Value::from).boxed(),
            any::<i64>().prop_map(Value::from).boxed(),
        ),
        field(
            "tags",
            words(3),
            proptest::collection::vec(text, 0..4).prop_map(|v| json!(v)).boxed(),
        ),
        field("application", Just(json!({"name": "ignored"})).boxed(), json.boxed()),
    )
        .prop_map(|fields| {
            let (a, b, c, d, e, f, g) = fields;
            let object: serde_json::Map<String, Value> = [a, b, c, d, e, f, g]
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            serde_json::to_vec(&Value::Object(object)).unwrap()
        });
    prop_oneof![5 => structured, 1 => proptest::collection::vec(any::<u8>(), 0..200)]
}

/// Message create, fed generated bodies: every answer is a 202 or a 4xx in the Svix shape
/// (never a 5xx), a message of the schema-checked type is accepted only when its payload fits
/// the schema, and an accepted payload reads back as sent.
#[test]
fn message_create_answers_any_body_with_a_202_or_a_4xx() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(async {
        let app = TestApp::spawn_with(|c| c.catalog.validation = Some(hookd::config::Validation::Reject)).await;
        app.create_app("ws_prop").await;
        let schema =
            json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]});
        let (status, body) = app
            .post(
                "/api/v1/event-type",
                json!({"name": "typed.event", "description": "checked", "schemas": {"1": schema}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        app
    });
    let mut runner = TestRunner::new(Config::with_cases(600));
    // How far the generated bodies reached: accepted, and checked against the schema.
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let typed = [(); 2].map(|_| std::sync::atomic::AtomicUsize::new(0));
    let outcome = runner.run(&message_bodies(), |bytes| {
        rt.block_on(async {
            let sent: Option<Value> = serde_json::from_slice(&bytes).ok();
            let (status, body) = raw(&app, "/api/v1/app/ws_prop/msg", "application/json", bytes.clone()).await;
            let shown = String::from_utf8_lossy(&bytes).into_owned();
            let is_typed = sent.as_ref().is_some_and(|s| s["eventType"] == "typed.event");
            if is_typed && status == StatusCode::UNPROCESSABLE_ENTITY && body.to_string().contains("payload") {
                typed[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if status != StatusCode::ACCEPTED {
                if !status.is_client_error() || !svix_error(&body) {
                    return Err(TestCaseError::fail(format!("{shown} → {status} {body}")));
                }
                return Ok(());
            }
            let sent = sent.ok_or_else(|| TestCaseError::fail(format!("{shown} accepted but not JSON")))?;
            if is_typed && sent["payload"]["n"].as_i64().is_none_or(|n| n < 0) {
                return Err(TestCaseError::fail(format!("{shown} accepted against its schema")));
            }
            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if is_typed {
                typed[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let id = body["id"]
                .as_str()
                .ok_or_else(|| TestCaseError::fail(format!("no id: {body}")))?;
            let (status, stored) = app.get(&format!("/api/v1/app/ws_prop/msg/{id}")).await;
            if status != StatusCode::OK || stored["payload"] != sent["payload"] {
                return Err(TestCaseError::fail(format!("{shown} reads back as {status} {stored}")));
            }
            Ok(())
        })
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let [refused_by_schema, accepted_typed] = typed.map(|n| n.into_inner());
    let accepted = accepted.into_inner();
    eprintln!("message create: {accepted} of 600 accepted; typed.event {accepted_typed} accepted, {refused_by_schema} refused by its schema");
    assert!(
        accepted >= 50 && accepted_typed >= 5 && refused_by_schema >= 20,
        "the generated bodies reach every outcome"
    );
    rt.block_on(async {
        let (status, _) = app.get("/api/v1/app/ws_prop/msg?limit=1").await;
        assert_eq!(status, StatusCode::OK, "hookd still answers");
        app.stop().await;
    });
}
