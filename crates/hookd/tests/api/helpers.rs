//! `TestApp`: a running hookd with typed helpers, a manual clock and a recording receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use futures::StreamExt;
use hookd::clock::ManualClock;
use hookd::dispatch::Dispatcher;
use hookd::Config;
use hookd_core::model::Environment;
use hookd_store::Store;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long any wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running hookd.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Admin token of the live environment.
    pub token: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The recording receiver endpoints point at.
    pub receiver: Receiver,
    /// The clock hookd reads.
    pub clock: Arc<ManualClock>,
    /// Delivery engine handle.
    pub dispatcher: Dispatcher,
    server: Option<hookd::Server>,
    /// The database, for setting up what the API cannot (tokens).
    pub store: Arc<dyn Store>,
    _schema: Option<hookd_store_postgres::testing::TestSchema>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// Default test configuration: the real retry schedule, fast polling.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// With configuration changes.
    pub async fn spawn_with(change: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::spawn_with_receiver(|config, _| change(config)).await
    }

    /// On PostgreSQL, in `schema` (which the caller keeps and drops).
    pub async fn spawn_on_postgres(
        schema: &hookd_store_postgres::testing::TestSchema,
        change: impl FnOnce(&mut Config),
    ) -> TestApp {
        let (url, name) = (schema.store_url(), schema.name().to_string());
        TestApp::spawn_with(|c| {
            c.database = url;
            c.storage.postgres_schema = name;
            change(c);
        })
        .await
    }

    /// With configuration changes that need the receiver's address.
    pub async fn spawn_with_receiver(change: impl FnOnce(&mut Config, &Receiver)) -> TestApp {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.delivery.poll_interval_ms = 20;
        // Tests jump the manual clock by hours while attempts may be in flight; a jump past a
        // lease would hand the delivery to a new claim (and fence the first attempt's record
        // out), which real time never does between two renewals. Lease tests set their own.
        config.delivery.lease_secs = 7 * 24 * 3600;
        // The recording receiver listens on plain http on loopback, which live refuses by default.
        config.delivery.allow_http = true;
        config.delivery.allowed_subnets = vec!["127.0.0.0/8".into()];
        // Most tests define their own event types; the catalog tests turn the built-in one on.
        config.catalog.builtin = false;
        // Off unless a test is about it: load tests publish faster than the default rate.
        config.api.rate_limit_per_sec = 0;
        change(&mut config, &receiver);
        config.validate().expect("valid test config");
        // HOOKD_TEST_BACKEND=postgres runs the whole API suite on PostgreSQL, each test in a
        // fresh schema of HOOKD_TEST_POSTGRES_URL's database.
        let schema = match std::env::var("HOOKD_TEST_BACKEND").as_deref() {
            Ok("postgres") if config.database.is_empty() => {
                let url =
                    std::env::var("HOOKD_TEST_POSTGRES_URL").expect("HOOKD_TEST_POSTGRES_URL for the postgres backend");
                let schema = hookd_store_postgres::testing::TestSchema::create(&url).await;
                config.database = schema.store_url();
                config.storage.postgres_schema = schema.name().to_string();
                Some(schema)
            }
            _ => None,
        };
        let store = hookd::cli::open_store(&config).await.expect("open store");
        // Frozen at the real time, so signatures also verify with libraries that read the clock.
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let token = hookd::auth::create_admin_token(store.as_ref(), Environment::Live, "test", Utc::now())
            .await
            .expect("token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = hookd::start(listener, config, store.clone(), clock.clone(), shutdown.clone())
            .await
            .expect("start");
        TestApp {
            base,
            token,
            client: reqwest::Client::new(),
            receiver,
            clock,
            dispatcher: server.dispatcher.clone(),
            server: Some(server),
            store,
            _schema: schema,
            shutdown,
            _dir: dir,
        }
    }

    /// Sends a request with the admin token; returns status and JSON body (`Null` if none).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(&self.token.clone(), method, path, body).await
    }

    /// Sends a request with `token`.
    pub async fn call_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Shuts hookd down as SIGTERM does and waits until it has stopped.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.wait().await.expect("clean shutdown");
        }
    }

    /// Like [`TestApp::stop`], but the database (directory or schema) lives on until the
    /// returned guard is dropped, so a test can inspect what the shutdown left.
    pub async fn stop_keeping_data(mut self) -> impl Sized {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.wait().await.expect("clean shutdown");
        }
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        (self._schema.take(), dir)
    }

    /// The data directory (the embedded database lives there).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The time hookd sees now.
    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        hookd::clock::Clock::now(self.clock.as_ref())
    }

    /// A further admin token for the live environment.
    pub async fn new_token(&self) -> String {
        hookd::auth::create_admin_token(self.store.as_ref(), Environment::Live, "another", Utc::now())
            .await
            .expect("token")
    }

    /// An admin token for the sandbox (test) environment.
    pub async fn test_token(&self) -> String {
        hookd::auth::create_admin_token(self.store.as_ref(), Environment::Test, "sandbox", Utc::now())
            .await
            .expect("token")
    }

    /// GET.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, None).await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(body)).await
    }

    /// Creates an application with `uid`.
    pub async fn create_app(&self, uid: &str) -> Value {
        let (status, body) = self
            .post("/api/v1/app", json!({"name": format!("App {uid}"), "uid": uid}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates an endpoint on the receiver at `path` (e.g. `/ok`, `/status/500`).
    pub async fn create_endpoint(&self, app: &str, path: &str, extra: Value) -> Value {
        let mut body = json!({"url": self.receiver.url(path)});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, body) = self.post(&format!("/api/v1/app/{app}/endpoint"), body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Publishes a message; asserts 202.
    pub async fn send_message(&self, app: &str, body: Value) -> Value {
        let (status, body) = self.post(&format!("/api/v1/app/{app}/msg"), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    /// Waits until at least `n` attempts have been recorded in the database.
    pub async fn wait_recorded(&self, n: u64) {
        let mut rx = self.dispatcher.recorded();
        tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("fewer than {n} attempts recorded in time"))
            .expect("dispatcher stopped");
    }

    /// Waits (bounded) until the delivery of `msg_id` shows `status_text` (e.g. `fail`); for
    /// tests where other deliveries (operational webhooks) make attempt counts ambiguous.
    pub async fn wait_delivery_status(&self, app_uid: &str, msg_id: &str, status_text: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, dest) = self.get(&format!("/api/v1/app/{app_uid}/msg/{msg_id}/endpoint")).await;
            if dest["data"]
                .as_array()
                .is_some_and(|d| d.iter().any(|e| e["statusText"] == status_text))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "delivery of {msg_id} never became {status_text}: {dest}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Moves the clock forward and lets the dispatcher look for newly due work.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.dispatcher.wake();
        self.dispatcher.wake_fifo();
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Path.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Recorded {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Recorded>>,
    changed: Notify,
}

/// A local HTTP server that records every request and answers according to its path:
/// `/ok` → 200, `/status/CODE` → CODE, `/slow/MS` → 200 after MS milliseconds, `/big/N` → 200
/// with an N-byte body, `/retry-after/CODE/VALUE` → CODE with that `Retry-After`, `/endless` → 200
/// with a 1 GiB body streamed lazily, `/garbage` → 200 with NUL and invalid UTF-8 in the body
/// and a Latin-1 header value.
#[derive(Clone)]
pub struct Receiver {
    base: String,
    log: Arc<Log>,
}

impl Receiver {
    /// Starts on 127.0.0.1:0.
    pub async fn start() -> Receiver {
        let log = Arc::new(Log::default());
        let app = Router::new()
            .route("/ok", post(|s, h, b| record(s, "/ok".into(), h, b, StatusCode::OK, 0)))
            .route(
                "/status/{code}",
                post(|s, Path(code): Path<u16>, h, b| async move {
                    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
                    record(s, format!("/status/{code}"), h, b, status, 0).await
                }),
            )
            .route(
                "/slow/{ms}",
                post(|s, Path(ms): Path<u64>, h, b| async move {
                    record(s, format!("/slow/{ms}"), h, b, StatusCode::OK, ms).await
                }),
            )
            .route(
                "/big/{bytes}",
                post(|s, Path(bytes): Path<usize>, h, b| async move {
                    record(s, format!("/big/{bytes}"), h, b, StatusCode::OK, 0).await;
                    "x".repeat(bytes)
                }),
            )
            .route(
                "/retry-after/{code}/{value}",
                post(|s, Path((code, value)): Path<(u16, String)>, h, b| async move {
                    record(s, format!("/retry-after/{code}/{value}"), h, b, StatusCode::OK, 0).await;
                    (
                        StatusCode::from_u16(code).unwrap(),
                        [("retry-after", value)],
                        "slow down",
                    )
                }),
            )
            .route(
                "/garbage",
                post(|s, h, b| async move {
                    record(s, "/garbage".into(), h, b, StatusCode::OK, 0).await;
                    // A NUL, a byte that is not UTF-8, and a header value in Latin-1.
                    let odd = axum::http::HeaderValue::from_bytes(b"caf\xe9").unwrap();
                    ([("x-odd", odd)], b"ok\0bad\xff".to_vec())
                }),
            )
            .route(
                "/endless",
                post(|s, h, b| async move {
                    record(s, "/endless".into(), h, b, StatusCode::OK, 0).await;
                    // 1 GiB, produced lazily: a sender that buffered it all would take seconds and a
                    // gigabyte of memory.
                    let chunk = Bytes::from(vec![b'z'; 64 * 1024]);
                    let stream =
                        futures::stream::iter(std::iter::repeat_n(chunk, 16 * 1024)).map(Ok::<_, std::io::Error>);
                    axum::body::Body::from_stream(stream)
                }),
            )
            .with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, log }
    }

    /// Full URL of a receiver path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.requests.lock().unwrap().clone()
    }

    /// The distinct `webhook-id`s received so far.
    pub fn webhook_ids(&self) -> std::collections::HashSet<String> {
        self.requests()
            .iter()
            .filter_map(|r| r.header("webhook-id").map(String::from))
            .collect()
    }

    /// Waits up to `max` until every id in `expected` has arrived; returns how many have not.
    pub async fn wait_for_webhook_ids(&self, expected: &std::collections::HashSet<String>, max: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let seen = self.webhook_ids();
            let missing = expected.iter().filter(|id| !seen.contains(*id)).count();
            if missing == 0 || tokio::time::Instant::now() > deadline {
                return missing;
            }
            self.changed(Duration::from_millis(500)).await;
        }
    }

    /// Waits until a new request arrives or `max` passes, whichever is first.
    pub async fn changed(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.log.changed.notified()).await;
    }

    /// Waits until `n` requests matching `filter` arrived; returns them.
    pub async fn wait_for(&self, n: usize, filter: impl Fn(&Recorded) -> bool) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.log.changed.notified();
            let matching: Vec<Recorded> = self.requests().into_iter().filter(&filter).collect();
            if matching.len() >= n {
                return matching;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("receiver got {} matching requests, expected {n}", matching.len());
            }
        }
    }
}

async fn record(
    State(log): State<Arc<Log>>,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    status: StatusCode,
    delay_ms: u64,
) -> impl IntoResponse {
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    log.requests.lock().unwrap().push(Recorded {
        at: std::time::Instant::now(),
        path,
        headers,
        body,
    });
    log.changed.notify_waiters();
    (status, "{\"received\":true}")
}

/// Everything logged in this process, at every level, while a capture is alive: for tests that
/// check what hookd's logs hold. The first capture installs the process's log subscriber.
pub struct LogCapture;

static CAPTURING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static LOGGED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Appends to [`LOGGED`].
struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGGED.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Starts capturing (every level of every crate).
    pub fn start() -> LogCapture {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(|| LogSink)
                .with_ansi(false)
                .with_filter(tracing_subscriber::filter::filter_fn(|_| {
                    CAPTURING.load(std::sync::atomic::Ordering::Relaxed) > 0
                }))
                .with_filter(tracing_subscriber::filter::LevelFilter::TRACE);
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .expect("no other log subscriber in the API tests");
        });
        CAPTURING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LogCapture
    }

    /// What has been logged so far (by every test running meanwhile, too).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&LOGGED.lock().unwrap()).into_owned()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Checks that the part of the repository file `path` between the lines `<!-- generated: NAME -->`
/// and `<!-- end: NAME -->` (or the whole file, for `None`) is `content`; with `HOOKD_BLESS=1`,
/// writes `content` there instead.
pub fn generated_doc(path: &str, name: Option<&str>, content: &str) {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(&full).unwrap_or_default();
    let (from, to) = match name {
        None => (0, doc.len()),
        Some(name) => {
            let start = format!("<!-- generated: {name} -->\n");
            let from = doc.find(&start).unwrap_or_else(|| panic!("{path} has no {start}")) + start.len();
            let to = doc
                .find(&format!("<!-- end: {name} -->"))
                .unwrap_or_else(|| panic!("{path} has no end marker"));
            (from, to)
        }
    };
    if std::env::var_os("HOOKD_BLESS").is_some() {
        std::fs::write(&full, format!("{}{content}{}", &doc[..from], &doc[to..])).unwrap();
        return;
    }
    assert!(
        doc[from..to] == *content,
        "{path} is out of date; run the test with HOOKD_BLESS=1 and commit the file"
    );
}
