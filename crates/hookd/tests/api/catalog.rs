//! The built-in event catalog, payload validation, precheck, OpenAPI import and the served spec.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

const CATALOG: [&str; 16] = [
    "analytics.ready",
    "content.deleted",
    "content.failed",
    "content.published",
    "content.scheduled",
    "payment.failed",
    "payment.succeeded",
    "subscription.canceled",
    "subscription.created",
    "subscription.updated",
    "team.member_added",
    "team.member_removed",
    "user.created",
    "user.updated",
    "workspace.created",
    "workspace.deleted",
];

async fn with_catalog() -> TestApp {
    TestApp::spawn_with(|c| c.catalog.builtin = true).await
}

async fn example(app: &TestApp, token: &str, name: &str) -> Value {
    let (status, et) = app
        .call_as(token, "GET", &format!("/api/v1/event-type/{name}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{et}");
    et["schemas"]["1"]["examples"][0].clone()
}

#[tokio::test]
async fn both_environments_start_with_the_sixteen_catalog_events_and_their_schemas() {
    let app = with_catalog().await;
    let test_token = app.test_token().await;
    for token in [app.token.clone(), test_token] {
        let (status, list) = app
            .call_as(&token, "GET", "/api/v1/event-type?with_content=true&limit=50", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let names: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, CATALOG);
        for et in list["data"].as_array().unwrap() {
            assert!(et["groupName"].is_string(), "{et}");
            assert!(!et["description"].as_str().unwrap().is_empty());
            let schema = &et["schemas"]["1"];
            assert_eq!(schema["$schema"], json!("https://json-schema.org/draft/2020-12/schema"));
            assert_eq!(schema["examples"][0]["type"], et["name"]);
        }
    }
    // A change the operator makes survives: the catalog is loaded only into an empty environment.
    let (status, _) = app.call("DELETE", "/api/v1/event-type/analytics.ready", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let store = app.store.clone();
    let loaded = hookd::catalog::seed(store.as_ref(), hookd_core::model::Environment::Live, app.clock_now())
        .await
        .unwrap();
    assert_eq!(loaded, 0);
    let (_, et) = app.get("/api/v1/event-type/analytics.ready").await;
    assert_eq!(et["archived"], json!(true));
}

#[tokio::test]
async fn the_sandbox_rejects_a_payload_that_breaks_its_schema_with_loc_into_the_payload() {
    let app = with_catalog().await;
    let token = app.test_token().await;
    let (status, _) = app
        .call_as(
            &token,
            "POST",
            "/api/v1/app",
            Some(json!({"name": "Sandbox", "uid": "ws_sb"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let good = example(&app, &token, "payment.failed").await;

    let mut bad = good.clone();
    bad["data"]["amount"] = json!(-5);
    bad["data"].as_object_mut().unwrap().remove("currency");
    let (status, body) = app
        .call_as(
            &token,
            "POST",
            "/api/v1/app/ws_sb/msg",
            Some(json!({"eventType": "payment.failed", "payload": bad})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let locs: Vec<Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert!(locs.contains(&json!(["body", "payload", "data", "amount"])), "{body}");
    assert!(locs.contains(&json!(["body", "payload", "data"])), "{body}");
    assert!(body["detail"][0]["msg"].is_string());

    let (status, body) = app
        .call_as(
            &token,
            "POST",
            "/api/v1/app/ws_sb/msg",
            Some(json!({"eventType": "payment.failed", "payload": good})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // Event types outside the catalog, or archived ones, are not validated.
    let (status, _) = app
        .call_as(
            &token,
            "POST",
            "/api/v1/app/ws_sb/msg",
            Some(json!({"eventType": "custom.thing", "payload": {"anything": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = app
        .call_as(&token, "DELETE", "/api/v1/event-type/payment.failed", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call_as(
            &token,
            "POST",
            "/api/v1/app/ws_sb/msg",
            Some(json!({"eventType": "payment.failed", "payload": {"not": "an envelope"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "archived types validate nothing: {body}");
}

#[tokio::test]
async fn live_warns_by_default_and_rejects_or_skips_as_configured() {
    let bad = json!({"eventType": "user.created", "payload": {"id": "evt_1", "type": "user.created"}});
    let app = with_catalog().await;
    app.create_app("ws_live").await;
    let (status, body) = app.post("/api/v1/app/ws_live/msg", bad.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "live warns and accepts: {body}");

    let strict = TestApp::spawn_with(|c| {
        c.catalog.builtin = true;
        c.catalog.validation = Some(hookd::config::Validation::Reject);
    })
    .await;
    strict.create_app("ws_live").await;
    let (status, body) = strict.post("/api/v1/app/ws_live/msg", bad.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"][0], json!("body"));
    assert_eq!(body["detail"][0]["loc"][1], json!("payload"));

    let off = TestApp::spawn_with(|c| {
        c.catalog.builtin = true;
        c.catalog.validation = Some(hookd::config::Validation::Off);
    })
    .await;
    let token = off.test_token().await;
    off.call_as(&token, "POST", "/api/v1/app", Some(json!({"name": "S", "uid": "ws_t"})))
        .await;
    let (status, body) = off.call_as(&token, "POST", "/api/v1/app/ws_t/msg", Some(bad)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "validation off: {body}");
}

#[tokio::test]
async fn a_schema_change_takes_effect_for_the_next_message() {
    let app = TestApp::spawn_with(|c| c.catalog.validation = Some(hookd::config::Validation::Reject)).await;
    app.create_app("ws_s").await;
    let (status, _) = app
        .post(
            "/api/v1/event-type",
            json!({"name": "order.placed", "description": "An order", "schemas": {"1": {"type": "object", "required": ["order_id"]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let msg = json!({"eventType": "order.placed", "payload": {"total": 5}});
    let (status, body) = app.post("/api/v1/app/ws_s/msg", msg.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "payload"]));
    let (status, _) = app
        .call(
            "PATCH",
            "/api/v1/event-type/order.placed",
            Some(json!({"schemas": {"1": {"type": "object", "required": ["total"]}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.post("/api/v1/app/ws_s/msg", msg).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // A schema that is not JSON Schema is refused when it is stored.
    let (status, body) = app
        .post(
            "/api/v1/event-type",
            json!({"name": "order.broken", "description": "x", "schemas": {"1": {"type": 7}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "schemas", "1"]));
}

#[tokio::test]
async fn precheck_says_whether_any_enabled_endpoint_would_receive_the_event() {
    let app = with_catalog().await;
    app.create_app("ws_pre").await;
    let pre = |body: Value| {
        let app = &app;
        async move {
            let (status, out) = app.post("/api/v1/app/ws_pre/msg/precheck/active", body).await;
            assert_eq!(status, StatusCode::OK, "{out}");
            out["active"].as_bool().unwrap()
        }
    };
    assert!(!pre(json!({"eventType": "content.published"})).await, "no endpoints");
    let ep = app
        .create_endpoint(
            "ws_pre",
            "/ok",
            json!({"filterTypes": ["content.published"], "channels": ["blog"]}),
        )
        .await;
    assert!(pre(json!({"eventType": "content.published", "channels": ["blog"]})).await);
    assert!(!pre(json!({"eventType": "content.published", "channels": ["video"]})).await);
    assert!(!pre(json!({"eventType": "content.deleted", "channels": ["blog"]})).await);
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/app/ws_pre/endpoint/{}", ep["id"].as_str().unwrap()),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !pre(json!({"eventType": "content.published", "channels": ["blog"]})).await,
        "disabled"
    );

    let (status, body) = app
        .post(
            "/api/v1/app/ws_pre/msg/precheck/active",
            json!({"eventType": "bad name!"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .post("/api/v1/app/nope/msg/precheck/active", json!({"eventType": "a.b"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn import_openapi_creates_updates_and_archives_event_types() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/v1/event-type",
        json!({"name": "legacy.event", "description": "old"}),
    )
    .await;
    let spec = json!({
        "openapi": "3.1.0",
        "info": {"title": "Shop", "version": "1"},
        "webhooks": {
            "order.placed": {"post": {
                "description": "An order was placed.",
                "tags": ["orders"],
                "requestBody": {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Order"},
                    "example": {"order_id": "o_1", "total": 1200}
                }}}
            }}
        },
        "components": {"schemas": {"Order": {
            "type": "object", "required": ["order_id", "total"],
            "properties": {"order_id": {"type": "string"}, "total": {"type": "integer"}}
        }}}
    });

    let (status, out) = app
        .post(
            "/api/v1/event-type/import/openapi",
            json!({"spec": spec, "dryRun": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["data"]["modified"], json!([]));
    assert_eq!(out["data"]["to_modify"][0]["name"], json!("order.placed"));
    assert_eq!(out["data"]["to_modify"][0]["groupName"], json!("orders"));
    let (status, _) = app.get("/api/v1/event-type/order.placed").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a dry run changes nothing");

    let (status, out) = app
        .post(
            "/api/v1/event-type/import/openapi",
            json!({"spec": spec, "replaceAll": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let mut modified: Vec<String> = serde_json::from_value(out["data"]["modified"].clone()).unwrap();
    modified.sort();
    assert_eq!(modified, ["legacy.event", "order.placed"]);
    let (_, et) = app.get("/api/v1/event-type/order.placed").await;
    assert_eq!(et["description"], json!("An order was placed."));
    assert_eq!(et["groupName"], json!("orders"));
    assert_eq!(et["schemas"]["1"]["examples"][0]["order_id"], json!("o_1"));
    let (_, legacy) = app.get("/api/v1/event-type/legacy.event").await;
    assert_eq!(legacy["archived"], json!(true));

    // The imported schema validates payloads: a test-environment message needs a `total`.
    let strict = app.test_token().await;
    app.call_as(
        &strict,
        "POST",
        "/api/v1/event-type/import/openapi",
        Some(json!({"spec": spec})),
    )
    .await;
    app.call_as(
        &strict,
        "POST",
        "/api/v1/app",
        Some(json!({"name": "S", "uid": "ws_i"})),
    )
    .await;
    let (status, body) = app
        .call_as(
            &strict,
            "POST",
            "/api/v1/app/ws_i/msg",
            Some(json!({"eventType": "order.placed", "payload": {"order_id": "o_2"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Importing the same document again changes nothing; YAML text works too.
    let yaml = "openapi: 3.1.0\nwebhooks:\n  order.placed:\n    post:\n      description: An order was placed.\n      tags: [orders]\n      requestBody:\n        content:\n          application/json:\n            schema:\n              $ref: '#/components/schemas/Order'\n            example: {order_id: o_1, total: 1200}\ncomponents:\n  schemas:\n    Order:\n      type: object\n      required: [order_id, total]\n      properties:\n        order_id: {type: string}\n        total: {type: integer}\n";
    let (status, out) = app
        .post("/api/v1/event-type/import/openapi", json!({"specRaw": yaml}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["data"]["modified"], json!([]));

    for (body, code) in [
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"spec": spec, "specRaw": "{}"}), StatusCode::BAD_REQUEST),
        (json!({"specRaw": "{ not: [valid"}), StatusCode::BAD_REQUEST),
        (json!({"spec": {"openapi": "3.1.0"}}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"spec": {"webhooks": {"bad name!": {"post": {}}}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, out) = app.post("/api/v1/event-type/import/openapi", body).await;
        assert_eq!(status, code, "{out}");
        assert!(out["code"].is_string() || out["detail"].is_array(), "{out}");
    }
}

#[tokio::test]
async fn send_example_sends_the_catalog_example_with_a_fresh_envelope_each_time() {
    let app = with_catalog().await;
    app.create_app("ws_ex").await;
    let ep = app.create_endpoint("ws_ex", "/ok", json!({})).await;
    let path = format!("/api/v1/app/ws_ex/endpoint/{}/send-example", ep["id"].as_str().unwrap());
    let example = example(&app, &app.token, "content.published").await;
    for _ in 0..2 {
        let (status, body) = app.post(&path, json!({"eventType": "content.published"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let got = app.receiver.wait_for(2, |_| true).await;
    let payloads: Vec<Value> = got.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert_ne!(payloads[0]["id"], payloads[1]["id"], "each test event has its own id");
    for p in &payloads {
        assert_ne!(p["id"], example["id"]);
        assert_eq!(p["data"], example["data"]);
        assert_eq!(p["type"], json!("content.published"));
        let ts = chrono::DateTime::parse_from_rfc3339(p["timestamp"].as_str().unwrap()).unwrap();
        assert!((ts.timestamp() - app.clock_now().timestamp()).abs() <= 1, "{p}");
    }
}

#[tokio::test]
async fn the_served_openapi_document_lists_every_catalog_event_as_a_webhook() {
    let app = with_catalog().await;
    let resp = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "no token needed");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    let hooks = doc["webhooks"].as_object().unwrap();
    assert_eq!(hooks.keys().map(String::as_str).collect::<Vec<_>>(), CATALOG);
    let body = &hooks["content.published"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["properties"]["type"]["const"], json!("content.published"));
    for path in [
        "/api/v1/app",
        "/api/v1/app/{app_id}/msg",
        "/api/v1/app/{app_id}/msg/precheck/active",
        "/api/v1/event-type/import/openapi",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is described");
    }

    // The sandbox's catalog is its own.
    let token = app.test_token().await;
    app.call_as(&token, "DELETE", "/api/v1/event-type/analytics.ready", None)
        .await;
    let (_, test_doc) = app.get("/api/v1/openapi.json?environment=test").await;
    assert_eq!(test_doc["webhooks"].as_object().unwrap().len(), 15);
    let (status, _) = app.get("/api/v1/openapi.json?environment=staging").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Every `.route(PATH, METHOD(…)…)` in the API's source, as (method, "/api/v1" + path).
fn routes_in_source() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut from = 0;
        while let Some(i) = text[from..].find(".route(") {
            let start = from + i + ".route(".len();
            // The call's extent: up to its matching parenthesis.
            let mut depth = 1;
            let mut end = start;
            for (j, c) in text[start..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = start + j;
                    break;
                }
            }
            let call = &text[start..end];
            let path = call.split('"').nth(1).expect("a route path literal").to_string();
            from = end;
            if path == "/metrics" {
                continue; // served beside the API, not under /api/v1
            }
            for method in ["get", "post", "put", "patch", "delete"] {
                let needle = format!("{method}(");
                let found = call.match_indices(&needle).any(|(k, _)| {
                    k == 0 || !call.as_bytes()[k - 1].is_ascii_alphanumeric() && call.as_bytes()[k - 1] != b'_'
                });
                if found {
                    out.push((method.to_string(), format!("/api/v1{path}")));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_openapi_document_describes_every_route_the_server_serves() {
    let routes = routes_in_source();
    assert!(routes.len() > 50, "the scan finds the routes: {routes:?}");
    assert!(routes.contains(&("post".into(), "/api/v1/app/{app_id}/msg".into())));
    let doc = hookd::openapi::spec(&[]);
    let mut missing = Vec::new();
    for (method, path) in &routes {
        if !doc["paths"][path.as_str()][method.as_str()].is_object() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from openapi/hookd-api.json: {missing:#?}"
    );
    // And the other way: every documented operation is served.
    let mut unserved = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            // `/metrics` is served beside the API (the scan leaves it out).
            if !routes.contains(&(method.clone(), path.clone())) && path != "/metrics" {
                unserved.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(unserved.is_empty(), "described but not served: {unserved:#?}");
    // And every documented operation has a unique operationId.
    let mut ids = std::collections::HashSet::new();
    for (_, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            }
        }
    }
}

/// The document a fresh hookd serves at `/api/v1/openapi.json` (live environment, built-in
/// catalog) is committed as `docs/openapi.json`.
#[tokio::test]
async fn the_committed_openapi_document_is_what_the_server_serves() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let mut text = serde_json::to_string_pretty(&doc).unwrap();
    text.push('\n');
    crate::helpers::generated_doc("docs/openapi.json", None, &text);
}

/// A route's path with its parameters' names blanked, for comparing paths written with other
/// parameter names.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// The route tables of `docs/api.md` (rows `| `METHOD` | `/path` | …`, paths below `/api/v1`)
/// list every route hookd serves, and nothing else.
#[test]
fn the_api_reference_lists_every_route_and_only_those() {
    let doc = include_str!("../../../../docs/api.md");
    let mut listed: Vec<(String, String)> = doc
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim);
            cells.next()?;
            let method = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let path = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let known = ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) && path.starts_with('/');
            known.then(|| (method.to_lowercase(), shape(&format!("/api/v1{path}"))))
        })
        .collect();
    listed.sort();
    listed.dedup();
    let mut served: Vec<(String, String)> = routes_in_source().into_iter().map(|(m, p)| (m, shape(&p))).collect();
    served.sort();
    let undocumented: Vec<_> = served.iter().filter(|r| !listed.contains(r)).collect();
    let unserved: Vec<_> = listed.iter().filter(|r| !served.contains(r)).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/api.md: {undocumented:#?}"
    );
    assert!(
        unserved.is_empty(),
        "docs/api.md lists routes hookd does not serve: {unserved:#?}"
    );
}

/// The compatibility table in `docs/api.md`: for each resource of the official Svix SDK, how
/// many of its routes hookd serves and which it does not; then hookd's routes the SDK lacks.
/// Generated from the router and the SDK's route list (`tests/data/svix-sdk-routes.json`,
/// every route the Python SDK 2.9.1 calls).
#[test]
fn the_svix_compatibility_table_is_generated_from_the_router() {
    let sdk: Value = serde_json::from_str(include_str!("../data/svix-sdk-routes.json")).unwrap();
    let served: Vec<(String, String)> = routes_in_source()
        .into_iter()
        .map(|(m, p)| (m.to_uppercase(), shape(&p)))
        .collect();
    let mut resources: std::collections::BTreeMap<&str, (usize, Vec<String>)> = Default::default();
    let mut in_sdk = std::collections::HashSet::new();
    for route in sdk["routes"].as_array().unwrap() {
        let (method, path) = (route["method"].as_str().unwrap(), route["path"].as_str().unwrap());
        let entry = resources.entry(route["resource"].as_str().unwrap()).or_default();
        let key = (method.to_string(), shape(path));
        if served.contains(&key) {
            entry.0 += 1;
        } else {
            entry.1.push(format!("`{method} {path}`"));
        }
        in_sdk.insert(key);
    }
    let mut table =
        String::from("| SDK resource | routes | served by hookd | not served (`404`) |\n|---|---|---|---|\n");
    for (resource, (served, missing)) in &resources {
        let total = served + missing.len();
        table.push_str(&format!(
            "| `{resource}` | {total} | {served} | {} |\n",
            missing.join(", ")
        ));
    }
    let mut own: Vec<String> = routes_in_source()
        .into_iter()
        .filter(|(m, p)| !in_sdk.contains(&(m.to_uppercase(), shape(p))))
        .map(|(m, p)| format!("`{} {p}`", m.to_uppercase()))
        .collect();
    own.sort();
    table.push_str(&format!(
        "\nhookd's own routes, which the Svix SDK does not call: {}.\n",
        own.join(", ")
    ));
    crate::helpers::generated_doc("docs/api.md", Some("svix compatibility"), &table);
}
