//! Destinations (`/destination`) and polling endpoints (`/poller`): Svix shapes, the stream
//! each consumer reads, positions, filters, and the attempt log of polls.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

async fn event_types(app: &TestApp, names: &[&str]) {
    for name in names {
        let (status, body) = app
            .post("/api/v1/event-type", json!({"name": name, "description": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

async fn create_poller(app: &TestApp, app_uid: &str, extra: Value) -> Value {
    let mut body = json!({"type": "pollingEndpoint", "config": {}});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, created) = app.post(&format!("/api/v1/app/{app_uid}/destination"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// Waits (bounded) until a poller of its own sees at least `n` messages of `app_uid`: on
/// PostgreSQL the stream ends before the oldest transaction still running anywhere in the
/// cluster, which a neighbouring test may hold for a moment.
async fn settle(app: &TestApp, app_uid: &str, n: usize) {
    let probe = create_poller(app, app_uid, json!({})).await;
    let path = format!(
        "/api/v1/app/{app_uid}/poller/{}?limit=250&after=1970-01-01T00:00:00Z",
        probe["id"].as_str().unwrap()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if page["data"].as_array().unwrap().len() >= n {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream never showed {n} messages"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.call(
        "DELETE",
        &format!("/api/v1/app/{app_uid}/destination/{}", probe["id"].as_str().unwrap()),
        None,
    )
    .await;
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {page}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn destinations_are_managed_in_svix_shapes_and_kept_apart_from_endpoints() {
    let app = TestApp::spawn().await;
    app.create_app("shop").await;
    event_types(&app, &["order.paid"]).await;
    let created = create_poller(
        &app,
        "shop",
        json!({"uid": "warehouse", "metadata": {"team": "ops"}, "eventTypes": ["order.paid"], "channels": null}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("ep_"), "{created}");
    assert_eq!(created["uid"], "warehouse");
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["type"], "pollingEndpoint");
    assert_eq!(created["config"], json!({}));
    assert_eq!(created["batchSize"], 100);
    assert_eq!(created["maxWaitSecs"], 0);
    assert_eq!(created["metadata"], json!({"team": "ops"}));
    assert_eq!(created["eventTypes"], json!(["order.paid"]));
    assert!(created["currentIterator"].is_string(), "{created}");
    assert!(created["createdAt"].is_string() && created["updatedAt"].is_string());

    // By id and by uid; listed with the destinations, never with the endpoints.
    let (status, by_uid) = app.get("/api/v1/app/shop/destination/warehouse").await;
    assert_eq!((status, by_uid["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    let (_, list) = app.get("/api/v1/app/shop/destination").await;
    assert_eq!(ids(&list), vec![id.clone()]);
    assert!(list["iterator"].is_string() && list["done"] == true, "{list}");
    app.create_endpoint("shop", "/ok", json!({})).await;
    let (_, endpoints) = app.get("/api/v1/app/shop/endpoint").await;
    assert_eq!(endpoints["data"].as_array().unwrap().len(), 1);
    assert!(!ids(&endpoints).contains(&id));
    let (status, _) = app.get(&format!("/api/v1/app/shop/endpoint/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let endpoint_id = ids(&endpoints)[0].clone();
    let (status, _) = app.get(&format!("/api/v1/app/shop/destination/{endpoint_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // PATCH as the SDK sends it: the type, an empty config, the change.
    let (status, patched) = app
        .call(
            "PATCH",
            "/api/v1/app/shop/destination/warehouse",
            Some(json!({"status": "disabled", "type": "pollingEndpoint", "config": {}})),
        )
        .await;
    assert_eq!((status, patched["status"].as_str()), (StatusCode::OK, Some("disabled")));
    assert_eq!(
        patched["metadata"],
        json!({"team": "ops"}),
        "a patch keeps what it does not name"
    );
    let (status, err) = app
        .call(
            "PATCH",
            "/api/v1/app/shop/destination/warehouse",
            Some(json!({"type": "fifoEndpoint", "config": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["detail"][0]["loc"], json!(["body", "type"]), "{err}");

    // PUT: 200 for the existing one (its filters replaced), 201 for a new uid.
    let (status, replaced) = app
        .call(
            "PUT",
            "/api/v1/app/shop/destination/warehouse",
            Some(json!({"type": "pollingEndpoint", "batchSize": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        (replaced["batchSize"].as_u64(), replaced["status"].as_str()),
        (Some(10), Some("enabled"))
    );
    assert!(replaced["eventTypes"].is_null(), "{replaced}");
    let (status, _) = app
        .call(
            "PUT",
            "/api/v1/app/shop/destination/archive",
            Some(json!({"type": "pollingEndpoint"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, err) = app
        .call(
            "PUT",
            &format!("/api/v1/app/shop/destination/{endpoint_id}"),
            Some(json!({"type": "pollingEndpoint"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a plain endpoint is not replaced by a destination: {err}"
    );

    // Types hookd does not deliver to, unknown types and bad sizes: 422 that say why.
    for (body, says) in [
        (
            json!({"type": "sqs", "config": {"queueUrl": "q"}}),
            "not supported by hookd",
        ),
        (json!({"type": "carrierPigeon"}), "Unknown destination type"),
        (json!({"type": "pollingEndpoint", "batchSize": 0}), "batchSize"),
        (json!({"type": "pollingEndpoint", "maxWaitSecs": 100000}), "maxWaitSecs"),
        (json!({"config": {}}), "type"),
    ] {
        let (status, err) = app.post("/api/v1/app/shop/destination", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        assert!(err.to_string().contains(says), "{body}: {err}");
    }

    // A polling endpoint signs nothing; transformations are not run.
    let (status, err) = app
        .post("/api/v1/app/shop/destination/warehouse/secret/rotate", json!({}))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_supported"))
    );
    let (status, t) = app.get("/api/v1/app/shop/destination/warehouse/transformation").await;
    assert_eq!((status, t), (StatusCode::OK, json!({"code": null, "enabled": false})));
    let path = "/api/v1/app/shop/destination/warehouse/transformation";
    let (status, cleared) = app.call("PATCH", path, Some(json!({"code": null}))).await;
    assert_eq!((status, cleared), (StatusCode::OK, json!({})));
    let (status, err) = app.call("PATCH", path, Some(json!({"code": "x"}))).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_supported"))
    );

    let (status, _) = app.call("DELETE", "/api/v1/app/shop/destination/warehouse", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get("/api/v1/app/shop/destination/warehouse").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&format!("/api/v1/app/shop/endpoint/{endpoint_id}")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "deleting a destination leaves the endpoints alone"
    );
}

#[tokio::test]
async fn a_poller_reads_the_stream_in_order_with_its_filters_and_each_poll_is_logged() {
    let app = TestApp::spawn().await;
    app.create_app("shop").await;
    event_types(&app, &["order.paid", "order.shipped"]).await;
    let before = app
        .send_message("shop", json!({"eventType": "order.paid", "payload": {"n": -1}}))
        .await;
    app.advance(Duration::from_secs(1));
    let all = create_poller(&app, "shop", json!({"uid": "all"})).await;
    let paid = create_poller(&app, "shop", json!({"uid": "paid", "eventTypes": ["order.paid"]})).await;
    app.advance(Duration::from_secs(1));
    let mut sent = Vec::new();
    for n in 0..30 {
        let kind = if n % 3 == 0 { "order.shipped" } else { "order.paid" };
        let channels = if n % 5 == 0 { json!(["eu"]) } else { json!(["us"]) };
        let m = app
            .send_message(
                "shop",
                json!({"eventType": kind, "payload": {"n": n}, "channels": channels, "eventId": format!("evt-{n}")}),
            )
            .await;
        sent.push((m["id"].as_str().unwrap().to_string(), kind, n % 5 == 0));
    }
    let sent_ids: Vec<String> = sent.iter().map(|s| s.0.clone()).collect();
    settle(&app, "shop", 31).await;

    // Pages of 10 in publish order; the message published before the poller existed is not
    // in its stream unless asked for with `after`.
    let mut seen = Vec::new();
    let mut iterator: Option<String> = None;
    for page in 0..3 {
        let path = match &iterator {
            None => "/api/v1/app/shop/poller/all?limit=10".to_string(),
            Some(it) => format!("/api/v1/app/shop/poller/all?limit=10&iterator={it}"),
        };
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"].as_array().unwrap().len(), 10, "page {page}: {body}");
        assert_eq!(body["done"], page == 2, "page {page}: {body}");
        let first = &body["data"][0];
        assert_eq!(first["payload"]["n"], page * 10, "{first}");
        assert!(
            first["timestamp"].is_string() && first["eventId"].is_string(),
            "{first}"
        );
        seen.extend(ids(&body));
        iterator = Some(body["iterator"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, sent_ids);
    let (_, end) = app
        .get(&format!("/api/v1/app/shop/poller/all?iterator={}", iterator.unwrap()))
        .await;
    assert_eq!((end["data"].as_array().unwrap().len(), &end["done"]), (0, &json!(true)));
    assert!(end["iterator"].is_string(), "the iterator is never null: {end}");
    let since = (app.clock_now() - chrono::Duration::seconds(5)).to_rfc3339();
    let (_, from_time) = app
        .get(&format!(
            "/api/v1/app/shop/poller/all?limit=2&after={}",
            urlencode(&since)
        ))
        .await;
    assert_eq!(ids(&from_time)[0], before["id"].as_str().unwrap(), "{from_time}");

    // The destination's own filter, and the query's, narrow the stream.
    let (_, only_paid) = app.get("/api/v1/app/shop/poller/paid?limit=250").await;
    let want: Vec<String> = sent
        .iter()
        .filter(|s| s.1 == "order.paid")
        .map(|s| s.0.clone())
        .collect();
    assert_eq!(ids(&only_paid), want);
    let (_, eu) = app
        .get("/api/v1/app/shop/poller/all?channel=eu&event_type=order.shipped")
        .await;
    let want: Vec<String> = sent
        .iter()
        .filter(|s| s.2 && s.1 == "order.shipped")
        .map(|s| s.0.clone())
        .collect();
    assert_eq!(ids(&eu), want);

    // Each message handed out is a successful attempt of the destination, in its stats too;
    // nothing was pushed anywhere.
    let all_id = all["id"].as_str().unwrap();
    let (_, attempts) = app
        .get(&format!("/api/v1/app/shop/attempt/endpoint/{all_id}?limit=250"))
        .await;
    let attempts = attempts["data"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 30 + 2 + 2, "3 pages, 2 from `after`, 2 filtered");
    assert!(attempts
        .iter()
        .all(|a| a["status"] == 0 && a["responseStatusCode"] == 200));
    assert!(attempts.iter().any(|a| a["url"] == "poll:iterator"), "{attempts:?}");
    let (_, stats) = app.get(&format!("/api/v1/app/shop/endpoint/{all_id}/stats")).await;
    assert_eq!(stats["success"], 31, "one delivery per message handed out: {stats}");
    let (_, paid_attempts) = app
        .get(&format!(
            "/api/v1/app/shop/attempt/endpoint/{}",
            paid["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(paid_attempts["data"].as_array().unwrap().len(), 20);
    assert!(
        app.receiver.requests().is_empty(),
        "a polling endpoint gets no pushed delivery"
    );

    // Past retention there is nothing to hand out: an expunged payload is skipped.
    let expunged = &sent_ids[0];
    let (status, _) = app
        .call("DELETE", &format!("/api/v1/app/shop/msg/{expunged}/content"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, again) = app.get("/api/v1/app/shop/poller/all?limit=250").await;
    assert_eq!(ids(&again), sent_ids[1..].to_vec());

    // A bad iterator or limit is a 422, an unknown poller a 404.
    for query in ["iterator=bogus", "limit=0", "limit=251", "after=yesterday"] {
        let (status, err) = app.get(&format!("/api/v1/app/shop/poller/all?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {err}");
    }
    let (status, _) = app.get("/api/v1/app/shop/poller/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn consumers_keep_their_own_position_and_seek_moves_it() {
    let app = TestApp::spawn().await;
    app.create_app("shop").await;
    create_poller(&app, "shop", json!({"uid": "feed"})).await;
    let mut sent = Vec::new();
    for n in 0..12 {
        app.advance(Duration::from_secs(60));
        let m = app
            .send_message("shop", json!({"eventType": "tick", "payload": {"n": n}}))
            .await;
        sent.push(m["id"].as_str().unwrap().to_string());
    }
    settle(&app, "shop", 12).await;
    let consumer = "/api/v1/app/shop/poller/feed/consumer/worker-1";
    let (_, first) = app.get(&format!("{consumer}?limit=5")).await;
    assert_eq!(ids(&first), sent[0..5].to_vec());
    let (_, second) = app.get(&format!("{consumer}?limit=5")).await;
    assert_eq!(ids(&second), sent[5..10].to_vec(), "the position moved on");
    // Another consumer starts at the beginning.
    let (_, other) = app.get("/api/v1/app/shop/poller/feed/consumer/worker-2?limit=3").await;
    assert_eq!(ids(&other), sent[0..3].to_vec());
    // Handing back an iterator it saved goes back there (a consumer that crashed mid-batch).
    let saved = first["iterator"].as_str().unwrap();
    let (_, replayed) = app.get(&format!("{consumer}?limit=2&iterator={saved}")).await;
    assert_eq!(ids(&replayed), sent[5..7].to_vec());
    let (_, next) = app.get(consumer).await;
    assert_eq!(ids(&next), sent[7..].to_vec());
    assert_eq!(next["done"], true);

    // Seek to the time of the fourth message: the next poll starts there.
    let (_, fourth) = app.get(&format!("/api/v1/app/shop/msg/{}", sent[3])).await;
    let (status, seek) = app
        .post(&format!("{consumer}/seek"), json!({"after": fourth["timestamp"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{seek}");
    assert!(seek["iterator"].is_string(), "{seek}");
    let (_, after_seek) = app.get(&format!("{consumer}?limit=2")).await;
    assert_eq!(ids(&after_seek), sent[3..5].to_vec());
    // A naive time (no zone), as the SDK sends a naive datetime, is read as UTC.
    let naive = fourth["timestamp"].as_str().unwrap().trim_end_matches('Z').to_string();
    let (status, _) = app.post(&format!("{consumer}/seek"), json!({"after": naive})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = app.post(&format!("{consumer}/seek"), json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    // Consumers are bounded per polling endpoint.
    for n in 3..=100 {
        let (status, body) = app
            .get(&format!("/api/v1/app/shop/poller/feed/consumer/worker-{n}?limit=1"))
            .await;
        assert_eq!(status, StatusCode::OK, "consumer {n}: {body}");
    }
    let (status, err) = app.get("/api/v1/app/shop/poller/feed/consumer/worker-101").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit_reached")),
        "{err}"
    );
    let (status, _) = app.get(&format!("{consumer}?limit=1")).await;
    assert_eq!(status, StatusCode::OK, "a known consumer still polls");

    // A disabled polling endpoint refuses polls until enabled again.
    let path = "/api/v1/app/shop/destination/feed";
    app.call(
        "PATCH",
        path,
        Some(json!({"type": "pollingEndpoint", "status": "disabled"})),
    )
    .await;
    let (status, err) = app.get(consumer).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("destination_disabled")),
        "{err}"
    );
    app.call(
        "PATCH",
        path,
        Some(json!({"type": "pollingEndpoint", "status": "enabled"})),
    )
    .await;
    let (status, _) = app.get(consumer).await;
    assert_eq!(status, StatusCode::OK);

    // Deleting the polling endpoint forgets its consumers: a new one of the same uid starts
    // from its own creation.
    app.call("DELETE", path, None).await;
    app.advance(Duration::from_secs(60));
    create_poller(&app, "shop", json!({"uid": "feed"})).await;
    let (_, fresh) = app.get(consumer).await;
    assert!(ids(&fresh).is_empty(), "{fresh}");
}

#[tokio::test]
async fn a_consumer_polling_during_concurrent_publishes_sees_every_message_once() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    app.create_app("busy").await;
    create_poller(&app, "busy", json!({"uid": "feed"})).await;
    let publishers: Vec<_> = (0..8)
        .map(|p| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..50 {
                    let m = app
                        .send_message("busy", json!({"eventType": "tick", "payload": {"p": p, "n": n}}))
                        .await;
                    ids.push(m["id"].as_str().unwrap().to_string());
                }
                ids
            })
        })
        .collect();
    let mut seen = Vec::new();
    let consumer = "/api/v1/app/busy/poller/feed/consumer/c1?limit=7";
    while publishers.iter().any(|p| !p.is_finished()) {
        let (status, page) = app.get(consumer).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
    }
    let mut published = HashSet::new();
    for p in publishers {
        published.extend(p.await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < published.len() && tokio::time::Instant::now() < deadline {
        let (_, page) = app.get(consumer).await;
        seen.extend(ids(&page));
        if page["data"].as_array().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a message was handed out twice");
    let missing: Vec<_> = published.difference(&unique).collect();
    let unknown: Vec<_> = unique.difference(&published).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "every acknowledged message reaches the consumer, and nothing else: {} missing {missing:?}, {} unknown {unknown:?}",
        missing.len(),
        unknown.len()
    );
}

/// What the FIFO test's receiver saw: for each key, the ids in the order first seen.
#[derive(Default)]
struct FifoLog {
    requests: u64,
    failed: u64,
    largest_batch: usize,
    seen: HashSet<String>,
    by_key: std::collections::HashMap<String, Vec<String>>,
    signatures_ok: bool,
}

/// A receiver that handles each batch, deduplicating on the message ids, and then answers
/// `500` to every tenth request (as if it failed after doing the work), so hookd sends that
/// batch again.
async fn flaky_fifo_receiver(secret: &str) -> (String, std::sync::Arc<std::sync::Mutex<FifoLog>>) {
    use axum::routing::post;
    let log = std::sync::Arc::new(std::sync::Mutex::new(FifoLog {
        signatures_ok: true,
        ..FifoLog::default()
    }));
    let secret = hookd_signing::Secret::parse(secret).unwrap();
    let state = (log.clone(), std::sync::Arc::new(secret));
    let app = axum::Router::new()
        .route(
            "/fifo",
            post(
                |axum::extract::State((log, secret)): axum::extract::State<(
                    std::sync::Arc<std::sync::Mutex<FifoLog>>,
                    std::sync::Arc<hookd_signing::Secret>,
                )>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let pairs = [
                        ("webhook-id", header("webhook-id")),
                        ("webhook-timestamp", header("webhook-timestamp")),
                        ("webhook-signature", header("webhook-signature")),
                    ];
                    let verified =
                        hookd_signing::WebhookHeaders::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                            .ok()
                            .is_some_and(|h| {
                                let ts: i64 = h.timestamp.parse().unwrap_or(0);
                                hookd_signing::verify(&secret, &h, &body, ts, 300).is_ok()
                            });
                    let items: Vec<Value> = serde_json::from_slice(&body).expect("a batch is a JSON array");
                    let mut log = log.lock().unwrap();
                    log.signatures_ok &= verified;
                    log.requests += 1;
                    log.largest_batch = log.largest_batch.max(items.len());
                    for item in items {
                        let id = item["id"].as_str().unwrap().to_string();
                        if log.seen.insert(id.clone()) {
                            let key = item["payload"]["metadata"]["workspace_id"]
                                .as_str()
                                .unwrap()
                                .to_string();
                            log.by_key.entry(key).or_default().push(id);
                        }
                    }
                    if log.requests % 10 == 0 {
                        log.failed += 1;
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::NO_CONTENT
                    }
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/fifo", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

#[tokio::test]
async fn a_fifo_destination_delivers_each_keys_messages_in_order_once_despite_a_failing_receiver() {
    // Retries at once: the schedule's gaps are not what this test is about.
    let app = std::sync::Arc::new(TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![0; 7]).await);
    app.create_app("ledger").await;
    let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (url, log) = flaky_fifo_receiver(key).await;
    let (status, dest) = app
        .post(
            "/api/v1/app/ledger/destination",
            json!({"type": "fifoEndpoint", "uid": "books", "batchSize": 10,
                   "config": {"url": url, "key": key, "headers": {"X-Ledger": "1", "Authorization": "Bearer t"},
                              "orderingKey": "metadata.workspace_id"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dest}");
    assert_eq!(dest["config"]["url"], json!(url));
    assert_eq!(dest["config"]["orderingKey"], "metadata.workspace_id");
    assert_eq!(
        dest["config"]["headers"],
        json!({"headers": {"X-Ledger": "1"}, "sensitive": ["Authorization"]})
    );
    assert!(dest["config"].get("key").is_none(), "the key is never shown: {dest}");

    // 20 keys, 250 messages each; each key's publisher waits for each acknowledgement, which
    // is what makes its messages ordered.
    let publishers: Vec<_> = (0..20)
        .map(|k| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..250 {
                    let m = app
                        .send_message(
                            "ledger",
                            json!({"eventType": "ledger.entry", "payload": {"metadata": {"workspace_id": format!("ws_{k}")}, "n": n}}),
                        )
                        .await;
                    ids.push(m["id"].as_str().unwrap().to_string());
                }
                (format!("ws_{k}"), ids)
            })
        })
        .collect();
    let mut published = std::collections::HashMap::new();
    for p in publishers {
        let (key, ids) = p.await.unwrap();
        published.insert(key, ids);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while log.lock().unwrap().seen.len() < 5_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of 5,000 arrived in time",
            log.lock().unwrap().seen.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let log = log.lock().unwrap();
        for (key, ids) in &published {
            assert_eq!(
                log.by_key.get(key),
                Some(ids),
                "{key} arrived in publish order, each once"
            );
        }
        assert!(
            log.failed >= 50,
            "the receiver failed a tenth of {} requests",
            log.requests
        );
        assert!(
            log.largest_batch <= 10 && log.largest_batch > 1,
            "batches of up to 10: {}",
            log.largest_batch
        );
        assert!(log.signatures_ok, "every batch is signed with the destination's key");
    }
    // The attempt log has the failures and the successes (recorded once each answer is in).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, delivered) = app.get("/api/v1/app/ledger/endpoint/books/stats").await;
        if delivered["success"].as_i64() == Some(5_000) || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, stats) = app.get("/api/v1/app/ledger/endpoint/books/attempt-stats").await;
    assert!(
        stats["fail"].as_i64().unwrap() > 0 && stats["success"].as_i64().unwrap() >= 5_000,
        "{stats}"
    );
    let (_, delivered) = app.get("/api/v1/app/ledger/endpoint/books/stats").await;
    assert_eq!(
        (delivered["success"].as_i64(), delivered["pending"].as_i64()),
        (Some(5_000), Some(0)),
        "{delivered}"
    );
    // Every message went out through its lane, some more than once (the failed batches).
    let (_, text) = crate::metrics::scrape(&format!("{}/metrics", app.base)).await;
    let lane = crate::metrics::parse(&text)
        .get(r#"hookd_deliveries_dispatched_total{path="lane"}"#)
        .copied();
    assert!(lane.is_some_and(|n| n >= 5_000.0), "{lane:?}");
}

#[tokio::test]
async fn a_fifo_batch_waits_to_fill_a_disabled_lane_holds_and_an_exhausted_head_fails_and_lets_the_next_go() {
    let app = TestApp::spawn().await;
    app.create_app("shop").await;
    let (status, dest) = app
        .post(
            "/api/v1/app/shop/destination",
            json!({"type": "fifoEndpoint", "uid": "orders", "batchSize": 3, "maxWaitSecs": 60,
                   "config": {"url": app.receiver.url("/ok")}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dest}");
    let publish = |n: i64| {
        let app = &app;
        async move {
            app.send_message("shop", json!({"eventType": "order.placed", "payload": {"n": n}}))
                .await["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let quiet = |ms| tokio::time::sleep(Duration::from_millis(ms));
    let batches = |app: &TestApp| -> Vec<Vec<i64>> {
        app.receiver
            .requests()
            .iter()
            .filter(|r| r.path == "/ok")
            .map(|r| {
                let items: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
                items.iter().map(|i| i["payload"]["n"].as_i64().unwrap()).collect()
            })
            .collect()
    };
    // Two messages wait for a third (or for 60 s); the third completes the batch.
    publish(1).await;
    publish(2).await;
    quiet(300).await;
    assert!(batches(&app).is_empty(), "a batch waits to fill");
    publish(3).await;
    app.receiver.wait_for(1, |r| r.path == "/ok").await;
    assert_eq!(batches(&app), vec![vec![1, 2, 3]]);
    // A lone message goes once its oldest has waited maxWaitSecs.
    publish(4).await;
    quiet(300).await;
    assert_eq!(batches(&app).len(), 1);
    app.advance(Duration::from_secs(61));
    app.receiver.wait_for(2, |r| r.path == "/ok").await;
    assert_eq!(batches(&app)[1], vec![4]);

    // Disabled, the lane keeps what waits in it (and, like any disabled endpoint, gets no new
    // messages); enabled again, it goes on.
    publish(5).await;
    publish(6).await;
    let path = "/api/v1/app/shop/destination/orders";
    app.call(
        "PATCH",
        path,
        Some(json!({"type": "fifoEndpoint", "status": "disabled"})),
    )
    .await;
    publish(7).await;
    app.advance(Duration::from_secs(61));
    quiet(300).await;
    assert_eq!(batches(&app).len(), 2, "nothing goes to a disabled destination");
    app.call(
        "PATCH",
        path,
        Some(json!({"type": "fifoEndpoint", "status": "enabled"})),
    )
    .await;
    app.advance(Duration::from_secs(1));
    app.receiver.wait_for(3, |r| r.path == "/ok").await;
    assert_eq!(batches(&app)[2], vec![5, 6]);

    // A head that keeps failing holds its lane until its schedule is exhausted; then it fails
    // visibly and the next message goes.
    let (status, failing) = app
        .post(
            "/api/v1/app/shop/destination",
            json!({"type": "fifoEndpoint", "uid": "broken", "batchSize": 1, "eventTypes": null,
                   "config": {"url": app.receiver.url("/status/500")}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{failing}");
    let first = publish(8).await;
    let second = publish(9).await;
    let attempts_of = |msg: String| {
        let app = &app;
        async move {
            let (_, a) = app
                .get(&format!("/api/v1/app/shop/attempt/msg/{msg}?endpoint_id=broken"))
                .await;
            a["data"].as_array().unwrap().len()
        }
    };
    app.receiver.wait_for(1, |r| r.path == "/status/500").await;
    assert_eq!(
        attempts_of(second.clone()).await,
        0,
        "the next waits behind the failing head"
    );
    for _ in 0..20 {
        if attempts_of(first.clone()).await >= 8 {
            break;
        }
        app.advance(Duration::from_secs(24 * 3600));
        quiet(100).await;
    }
    assert_eq!(attempts_of(first.clone()).await, 8, "the whole schedule was tried");
    app.wait_delivery_status("shop", &first, "fail").await;
    app.advance(Duration::from_secs(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while attempts_of(second.clone()).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the next message never went");
        quiet(20).await;
    }
}

#[tokio::test]
async fn a_tenants_hanging_fifo_lanes_do_not_hold_up_another_tenants() {
    let app = TestApp::spawn().await;
    for uid in ["noisy", "quiet"] {
        app.create_app(uid).await;
    }
    // The noisy tenant's receiver takes 3 s per request, across 40 keys (many lanes).
    let (status, _) = app
        .post(
            "/api/v1/app/noisy/destination",
            json!({"type": "fifoEndpoint", "config": {"url": app.receiver.url("/slow/3000"), "orderingKey": "k"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            "/api/v1/app/quiet/destination",
            json!({"type": "fifoEndpoint", "config": {"url": app.receiver.url("/ok")}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for k in 0..40 {
        app.send_message(
            "noisy",
            json!({"eventType": "tick", "payload": {"k": format!("key-{k}")}}),
        )
        .await;
    }
    app.receiver.wait_for(1, |r| r.path == "/slow/3000").await;
    let started = std::time::Instant::now();
    app.send_message("quiet", json!({"eventType": "tick", "payload": {"n": 1}}))
        .await;
    app.receiver.wait_for(1, |r| r.path == "/ok").await;
    let took = started.elapsed();
    let slow_done = app
        .receiver
        .requests()
        .iter()
        .filter(|r| r.path == "/slow/3000")
        .count();
    assert!(
        took < Duration::from_millis(2_500),
        "the quiet tenant's message waited {took:?} behind the noisy tenant's hanging lanes"
    );
    assert!(
        slow_done <= 8,
        "one tenant works on at most 8 lanes at once on a node: {slow_done}"
    );
}
