//! hookd-bench: end-to-end throughput and latency of a real `hookd serve` process.
//!
//! Measured from outside, as a publisher and a consumer see it (nothing in hookd is instrumented):
//! - **ingest rate**: accepted messages / (first `POST …/msg` start → last `202` received);
//! - **delivered rate**: deliveries / (first `POST` start → last delivery arrival);
//! - **latency** per message: first arrival of its `webhook-id` at the receiver − the instant its
//!   `POST` started, i.e. publish + commit + dispatch + sign + send (p50, p99, max).
//!
//! How: a receiver (axum on `127.0.0.1:0`) answering `200` at once and recording, per
//! `webhook-id`, the arrivals and which endpoints were reached; `hookd serve` as a child process
//! (logs to `hookd-<node>.log` in a temp dir); `--apps` applications (default 1) with
//! `--endpoints` endpoints each at the receiver; `--messages` messages published by `--concurrency` workers, optionally paced to an
//! offered `--rate` (msgs/s). It waits (at most `--timeout-secs`) for every accepted message to
//! reach every endpoint, kills hookd and prints one JSON line. `HOOKD_*` variables reach hookd
//! (e.g. `HOOKD_STORAGE__SQLITE_SYNCHRONOUS=normal`).
//!
//! Backends: by default hookd runs on SQLite in a fresh data dir inside the temp dir and its admin
//! token is read from its stdout at first start. With `--database postgres://…` the harness creates
//! a fresh schema `hookd_bench_<random hex>` (with `psql`), gets a token from `hookd token create`,
//! starts `--nodes` `hookd serve` processes on that schema, creates the application on node 0,
//! publishes round-robin over the nodes, and drops the schema at the end, on error and on Ctrl-C
//! too.
//!
//! Caveats: publisher and receiver share the CPUs with hookd, so figures are a lower bound. Latency
//! starts when a `POST` really starts: time a message waited for a free worker is not counted, so
//! under saturation compare the ingest rate with the offered one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use clap::{CommandFactory, Parser};
use hookd_bench::{
    create_token, machine_probe, peak_rss_kib, percentile_ms, post, postgres_url, psql, round, rss_kib, schema_name,
    serve_on_loopback, start_node, wait_healthy, wal_position, Backend, CpuMeter, CpuShare, MachineProbe, ThreadCores,
    ThreadMeter,
};
use serde_json::{json, Value};
use tokio::process::Child;
use tokio::sync::watch;

// The harness shares the machine with hookd: it allocates as hookd does (mimalloc), so its own
// share of the CPU stays small (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// End-to-end benchmark of a hookd binary: prints one JSON line of results.
#[derive(Debug, Parser)]
struct Args {
    /// The hookd binary to run (build it with `--release`).
    #[arg(long)]
    hookd: PathBuf,
    /// Messages to publish.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Concurrent publishing workers.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    concurrency: u64,
    /// Offered load in messages per second across all workers (default: as fast as possible).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
    /// Approximate size of each message payload in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Endpoints subscribed to every message (1 to 1,000).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_ENDPOINTS as u64))]
    endpoints: u64,
    /// Applications, each with `--endpoints` endpoints; message `i` goes to application
    /// `i % apps` (so `--apps 1000 --endpoints 10` spreads 10,000 endpoints over 1,000
    /// applications).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    apps: u64,
    /// Bound on publishing (beyond the paced schedule) and, separately, on waiting for deliveries.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// PostgreSQL database to run hookd on (`postgres://…`), in a fresh schema dropped afterwards;
    /// needs `psql` on the PATH (default: SQLite in a temp dir).
    #[arg(long, value_name = "URL", value_parser = postgres_url)]
    database: Option<String>,
    /// `hookd serve` nodes sharing the database, published to round-robin (more than one needs
    /// `--database`: SQLite is one process's file).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    nodes: u64,
    /// Pin a node to these CPUs (a `taskset -c` list); give it once per node, in node order,
    /// e.g. `--nodes 2 --pin 0 --pin 1` runs each node on a core of its own.
    #[arg(long = "pin", value_name = "CPUS")]
    pin: Vec<String>,
    /// Publish this catalog event type (e.g. content.published) built from its example, with a
    /// new `id` and `timestamp` per message, instead of padded `bench.event` envelopes; with
    /// `HOOKD_CATALOG__VALIDATION=reject` or `off` this measures what payload validation costs.
    #[arg(long, value_name = "EVENT_TYPE")]
    catalog_event: Option<String>,
    /// Also measure the limit baseline: the same bodies posted straight to the receiver by the
    /// same number of workers (one HTTP hop, no storage), closed loop; hookd's delivered rate is
    /// reported as a ratio of it.
    #[arg(long)]
    baseline: bool,
    /// Also measure the relay ceiling: `hookd-relay` (built beside this harness) takes the same
    /// publishes from the same workers and forwards each body to the receiver once per endpoint,
    /// on hookd's HTTP stack but with no storage, signing or queue; hookd's delivered rate is
    /// reported as a share of the relay's. Runs after hookd has stopped.
    #[arg(long)]
    relay_ceiling: bool,
    /// Backlog drain: the endpoints are throttled to 1 delivery per second while every message
    /// is published, so the deliveries queue up in hookd; then the throttle is lifted and the
    /// drain is timed, with hookd's resident memory sampled while it drains.
    #[arg(long)]
    backlog: bool,
}

/// The JSON line printed on stdout; a struct so the fields keep this order.
#[derive(serde::Serialize)]
struct Report {
    backend: &'static str,
    nodes: u64,
    /// Each node's CPUs when pinned (`--pin`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pinned: Vec<String>,
    /// `bench.event`, or the catalog event type published.
    event_type: String,
    messages: usize,
    apps: usize,
    /// Endpoints per application.
    endpoints: usize,
    concurrency: u64,
    offered_rate: Option<u64>,
    payload_bytes: usize,
    ingest_msgs_per_s: Option<f64>,
    delivered_msgs_per_s: Option<f64>,
    /// Accept to delivery: from the start of a message's `POST` to its first arrival.
    latency_ms: Latency,
    /// From the instant a paced message was due to its first arrival, so time spent waiting
    /// for a free worker (coordinated omission) is counted; `null` without `--rate`.
    scheduled_latency_ms: Option<Latency>,
    /// How late paced `POST`s started after they were due; `null` without `--rate`.
    schedule_lag_ms: Option<Latency>,
    /// `POST` start to its `202`.
    api_latency_ms: Latency,
    /// CPU shares over the run (publishing start to the last delivery).
    cpu: CpuShare,
    /// The machine's speed before hookd started: a processor, memory and system-call probe
    /// that compares machines and hours without hookd, the network stack or the disk.
    probe: MachineProbe,
    /// hookd's CPU by thread name, in cores, over the same span: its mean and its busiest
    /// half-second. SQLite's writer (`hookd-sqlite-wr`) is a single thread: at 1.0 it can do
    /// no more work.
    threads: ThreadCores,
    /// The share of the same span SQLite's writer thread spent running batches, on the CPU or
    /// waiting for their `fsync` (`hookd_sqlite_write_batch_duration_seconds`): the one thread
    /// every write goes through. A group commit waits for the disk at every batch, so this
    /// nears 1.0 under any steady load; the writer's time on the CPU is in `threads`. `null`
    /// on PostgreSQL.
    sqlite_writer_busy: Option<f64>,
    /// hookd's work per unit over the same span. A VM's speed changes from hour to hour, and
    /// with it every rate; the bytes written per message do not, and the CPU per delivery
    /// much less than the rate.
    cost: Cost,
    /// Node 0's resident memory: after start, before any load, and the peak.
    rss_mib: Rss,
    /// hookd's own accounting of the deliveries against what was published.
    ledger: Ledger,
    /// How the deliveries reached hookd's engine, summed over the nodes
    /// (`hookd_deliveries_dispatched_total`); `null` if `/metrics` could not be read.
    dispatch: Option<Dispatch>,
    /// The limit baseline, with `--baseline`.
    baseline: Option<Baseline>,
    /// The relay ceiling, with `--relay-ceiling`.
    relay_ceiling: Option<RelayCeiling>,
    /// The backlog drain, with `--backlog`.
    drain: Option<Drain>,
    /// Failed or skipped publishes plus deliveries that never arrived.
    errors: usize,
    /// First `POST` start → last delivery (or giving up).
    duration_s: Option<f64>,
}

/// Work per unit of traffic.
#[derive(serde::Serialize)]
struct Cost {
    /// hookd's CPU time (every node's) per delivery that arrived, in microseconds.
    cpu_us_per_delivery: Option<f64>,
    /// Bytes hookd wrote to storage per accepted message, in KiB (`null` on PostgreSQL, whose
    /// server writes, or where `/proc` does not tell).
    written_kib_per_message: Option<f64>,
    /// On PostgreSQL, the write-ahead log the server wrote per accepted message over the same
    /// span, in KiB (`null` on SQLite, or when `psql` cannot tell): what a statement change
    /// costs the database, measured in bytes rather than in an hour's speed.
    wal_kib_per_message: Option<f64>,
}

/// Resident memory in MiB.
#[derive(serde::Serialize)]
struct Rss {
    idle: Option<f64>,
    peak: Option<f64>,
}

/// Published × endpoints against hookd's per-endpoint delivery counts after the run: every
/// delivery must be delivered, failed or still pending. A run whose ledger does not balance is
/// void (the harness exits with an error after printing it).
#[derive(serde::Serialize)]
struct Ledger {
    expected: usize,
    success: u64,
    fail: u64,
    pending: u64,
    balanced: bool,
}

/// Deliveries taken for sending, by path: straight from their publish, or claimed from the
/// database (a retry, or a delivery that found its share of memory full when published).
#[derive(serde::Serialize, Default, Debug, PartialEq)]
struct Dispatch {
    handed_over: u64,
    claimed: u64,
}

impl Dispatch {
    /// Adds one node's counts from its `/metrics` text.
    fn add(&mut self, metrics: &str) {
        let count = |series| series_value(metrics, series).unwrap_or(0.0) as u64;
        self.handed_over += count(r#"hookd_deliveries_dispatched_total{path="handed_over"}"#);
        self.claimed += count(r#"hookd_deliveries_dispatched_total{path="claimed"}"#);
    }
}

/// The value of `series` (a name with its labels, as printed) in a `/metrics` text.
fn series_value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// Every node's `/metrics` text; `None` when a node does not answer. `bases` are the nodes'
/// API bases (`http://…/api/v1`); `/metrics` is served beside them.
async fn scrape(client: &reqwest::Client, bases: &[String]) -> Option<Vec<String>> {
    let mut texts = Vec::with_capacity(bases.len());
    for base in bases {
        let root = base.strip_suffix("/api/v1").unwrap_or(base);
        let response = client.get(format!("{root}/metrics")).send().await.ok()?;
        texts.push(response.error_for_status().ok()?.text().await.ok()?);
    }
    Some(texts)
}

/// Every node's dispatch counts, summed; `None` when a node's `/metrics` does not answer.
async fn dispatch(client: &reqwest::Client, bases: &[String]) -> Option<Dispatch> {
    let mut total = Dispatch::default();
    for text in scrape(client, bases).await? {
        total.add(&text);
    }
    Some(total)
}

/// The seconds SQLite's writer thread has spent in its batches so far (every node's, on
/// SQLite one); `None` on PostgreSQL or when `/metrics` does not answer.
async fn writer_busy_secs(client: &reqwest::Client, bases: &[String]) -> Option<f64> {
    let texts = scrape(client, bases).await?;
    let sums = texts
        .iter()
        .map(|t| series_value(t, "hookd_sqlite_write_batch_duration_seconds_sum"));
    sums.sum()
}

/// A backlog drained: from lifting the throttle to the last delivery.
#[derive(serde::Serialize)]
struct Drain {
    /// Deliveries queued when the throttle was lifted.
    queued: usize,
    drain_s: Option<f64>,
    deliveries_per_s: Option<f64>,
    /// Node 0's largest resident memory sampled (every 200 ms) while draining, in MiB.
    rss_peak_mib: Option<f64>,
}

/// The same bodies posted straight to the receiver.
#[derive(serde::Serialize)]
struct Baseline {
    msgs_per_s: Option<f64>,
    /// hookd's delivered rate (deliveries per second) ÷ the baseline's (posts per second): both
    /// count HTTP requests reaching the receiver.
    hookd_ratio: Option<f64>,
}

/// What a relay with no storage did with the same publishes.
#[derive(serde::Serialize)]
struct RelayCeiling {
    msgs_per_s: Option<f64>,
    /// Requests that reached the receiver per second (messages × endpoints).
    deliveries_per_s: Option<f64>,
    /// The relay's deliveries per second ÷ the baseline's posts per second (with `--baseline`).
    baseline_ratio: Option<f64>,
    /// hookd's delivered rate ÷ the relay's (deliveries per second both).
    hookd_ratio: Option<f64>,
    /// `hookd` here is the relay process.
    cpu: CpuShare,
    /// The relay's CPU time per delivery, in microseconds.
    cpu_us_per_delivery: Option<f64>,
}

/// Latency percentiles in milliseconds (`null` when nothing arrived).
#[derive(serde::Serialize)]
struct Latency {
    p50: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

/// Words of the per-message bitset of endpoints reached: room for [`MAX_ENDPOINTS`].
const REACHED_WORDS: usize = MAX_ENDPOINTS.div_ceil(64);
/// One bit per endpoint.
type Reached = [u64; REACHED_WORDS];
/// Most endpoints a run may create.
const MAX_ENDPOINTS: usize = 1000;

/// The fake webhook consumer shared by its handlers.
struct Receiver {
    /// Per message id: first and latest arrival, and which endpoints it reached (one bit per
    /// endpoint).
    by_id: Mutex<HashMap<String, (Instant, Instant, Reached)>>,
    /// (message, endpoint) pairs that arrived again: redeliveries, which should not happen here.
    duplicates: AtomicUsize,
    /// Distinct (message, endpoint) deliveries; a watch, so `run` can await a count, not poll.
    delivered: watch::Sender<usize>,
}

/// `POST /hook/{endpoint}`: record the arrival and answer 200 at once.
async fn receive(
    State(rx): State<Arc<Receiver>>,
    UrlPath(endpoint): UrlPath<u32>,
    headers: HeaderMap,
    _body: axum::body::Bytes, // read in full so the connection stays alive, as a real consumer's
) -> StatusCode {
    let now = Instant::now();
    let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) else {
        return StatusCode::BAD_REQUEST;
    };
    let Some(word) = usize::try_from(endpoint / 64).ok().filter(|w| *w < REACHED_WORDS) else {
        return StatusCode::NOT_FOUND;
    };
    let bit = 1u64 << (endpoint % 64);
    let mut by_id = rx.by_id.lock().expect("receiver lock poisoned");
    let entry = by_id.entry(id.to_string()).or_insert((now, now, [0; REACHED_WORDS]));
    if entry.2[word] & bit == 0 {
        entry.1 = entry.1.max(now);
        entry.2[word] |= bit;
        rx.delivered.send_modify(|n| *n += 1);
    } else {
        rx.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::OK
}

/// Serves the receiver on a free loopback port.
async fn start_receiver() -> anyhow::Result<(SocketAddr, Arc<Receiver>)> {
    let rx = Arc::new(Receiver {
        by_id: Mutex::default(),
        duplicates: AtomicUsize::new(0),
        delivered: watch::channel(0).0,
    });
    let app = axum::Router::new()
        .route("/hook/{endpoint}", axum::routing::post(receive))
        // The limit baseline: the same work a consumer does for a delivery, read and answer.
        .route(
            "/baseline",
            axum::routing::post(|_: HeaderMap, _: axum::body::Bytes| async { StatusCode::OK }),
        )
        .with_state(rx.clone());
    Ok((serve_on_loopback(app).await?, rx))
}

/// Shared by the publishing workers.
struct Publisher {
    client: reqwest::Client,
    /// Where message `i` is published: `urls[i % nodes][i % apps]`, the publish URL of
    /// application `bench{i % apps}` on node `i % nodes`, parsed once.
    urls: Vec<Vec<reqwest::Url>>,
    token: String,
    pad: String,
    /// With `--catalog-event`: the event type and its example payload.
    template: Option<(String, Value)>,
    messages: usize,
    rate: Option<u64>,
    /// Next message index; workers take indices from it, so exactly `messages` are attempted.
    next: AtomicUsize,
    t0: Instant,
    deadline: Instant,
    first_start: OnceLock<Instant>,
}

/// The one field of a publish's answer the harness reads.
#[derive(serde::Deserialize)]
struct PublishedId {
    id: String,
}

/// One accepted message.
struct Accepted {
    id: String,
    /// When it was due (paced runs only).
    due: Option<Instant>,
    /// When its `POST` started.
    started: Instant,
    /// When its `202` arrived.
    answered: Instant,
}

/// What a worker recorded.
#[derive(Default)]
struct Published {
    accepted: Vec<Accepted>,
    last_accept: Option<Instant>,
    errors: Vec<String>,
}

/// The event envelope published as payload; `pad` brings it to the requested size.
fn envelope(i: usize, timestamp: &str, pad: &str) -> String {
    format!(r#"{{"id":"evt_{i:010}","type":"bench.event","timestamp":"{timestamp}","data":{{"pad":"{pad}"}}}}"#)
}

/// Now in RFC 3339 with fixed width (milliseconds, `Z`), so every envelope has the same size.
fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One publishing worker: takes message indices until none are left.
async fn publish_worker(p: Arc<Publisher>) -> Published {
    let mut out = Published::default();
    loop {
        let i = p.next.fetch_add(1, Ordering::Relaxed);
        if i >= p.messages {
            return out;
        }
        // Open-loop schedule shared by all workers: message i is due at t0 + i/R whatever
        // happened before, so a slow response delays only its worker, not the offered rate.
        let due = p
            .rate
            .map(|rate| p.t0 + Duration::from_secs_f64(i as f64 / rate as f64));
        if let Some(due) = due {
            tokio::time::sleep_until(due.into()).await;
        }
        if Instant::now() >= p.deadline {
            out.errors.push("not published: the deadline passed".into());
            continue;
        }
        let body = match &p.template {
            Some((event_type, example)) => {
                let mut payload = example.clone();
                payload["id"] = json!(format!("evt_{i:010}"));
                payload["timestamp"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                json!({"eventType": event_type, "payload": payload}).to_string()
            }
            None => {
                let payload = envelope(i, &now_rfc3339(), &p.pad);
                format!(r#"{{"eventType":"bench.event","payload":{payload}}}"#)
            }
        };
        let started = Instant::now();
        p.first_start.get_or_init(|| started);
        let node = &p.urls[i % p.urls.len()];
        let url = node[i % node.len()].clone();
        let request = p.client.post(url).bearer_auth(&p.token).body(body);
        let request = request.header("content-type", "application/json");
        let error = match request.send().await {
            Ok(r) if r.status().as_u16() == 202 => {
                // The message's id alone: the rest of the answer (its payload among it) is
                // skipped, not built into a value.
                let body = r.json::<PublishedId>().await.map(|m| m.id);
                if let Ok(id) = body {
                    let answered = Instant::now();
                    out.last_accept = out.last_accept.max(Some(answered));
                    out.accepted.push(Accepted {
                        id,
                        due,
                        started,
                        answered,
                    });
                    continue;
                }
                format!("unexpected 202 body: {body:?}")
            }
            Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => format!("request failed: {e}"),
        };
        out.errors.push(error);
    }
}

/// Lifts the 1-per-second throttle of every endpoint; returns when the last one was lifted.
async fn lift_throttles(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    endpoints: &[String],
) -> anyhow::Result<Instant> {
    for endpoint in endpoints {
        let url = format!("{base}/app/{endpoint}");
        let r = client
            .patch(&url)
            .bearer_auth(token)
            .json(&json!({"throttleRate": null}));
        r.send()
            .await?
            .error_for_status()
            .with_context(|| format!("PATCH {url}"))?;
    }
    Ok(Instant::now())
}

/// Percentiles of `durations`.
fn latency(durations: impl Iterator<Item = Duration>) -> Latency {
    let mut micros: Vec<u64> = durations.map(|d| d.as_micros() as u64).collect();
    micros.sort_unstable();
    Latency {
        p50: percentile_ms(&micros, 0.50),
        p99: percentile_ms(&micros, 0.99),
        max: percentile_ms(&micros, 1.0),
    }
}

/// hookd's delivery counts over every endpoint (`bench{a}/endpoint/ep{i}` paths), against
/// `published` × the endpoints each message goes to. Attempts are
/// recorded just after they are sent, so a delivery counted "sending" a moment ago may be a
/// success now: counts are read until two readings agree (at most 10 s).
async fn ledger(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    endpoints: &[String],
    published: usize,
    per_message: usize,
) -> anyhow::Result<Ledger> {
    let read = || async {
        let (mut success, mut fail, mut pending) = (0, 0, 0);
        for endpoint in endpoints {
            let stats: Value = (client.get(format!("{base}/app/{endpoint}/stats")))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let count = |k: &str| stats[k].as_u64().unwrap_or(0);
            success += count("success");
            fail += count("fail");
            pending += count("pending") + count("sending");
        }
        anyhow::Ok((success, fail, pending))
    };
    let mut last = read().await?;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = read().await?;
        if now == last && now.2 == 0 {
            break;
        }
        last = now;
    }
    let (success, fail, pending) = last;
    let expected = published * per_message;
    Ok(Ledger {
        expected,
        success,
        fail,
        pending,
        balanced: (success + fail + pending) as usize == expected,
    })
}

/// The limit baseline: `messages` bodies like the benchmark's posted straight to the receiver
/// by `concurrency` workers, as fast as they are answered. Returns messages per second.
async fn baseline(args: &Args, recv_addr: SocketAddr) -> anyhow::Result<Option<f64>> {
    closed_loop(args, &format!("http://{recv_addr}/baseline")).await
}

/// `messages` publish bodies like the benchmark's posted to `url` by `concurrency` workers, each
/// posting its next as soon as the last is answered with a success. Returns messages per
/// second; any other answer fails the run.
async fn closed_loop(args: &Args, url: &str) -> anyhow::Result<Option<f64>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()?;
    let overhead = envelope(0, &now_rfc3339(), "").len();
    let pad = Arc::new("x".repeat(args.payload_bytes.saturating_sub(overhead)));
    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(url.to_string());
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, pad, next, url) = (client.clone(), pad.clone(), next.clone(), url.clone());
        let messages = args.messages as usize;
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= messages {
                    break;
                }
                let body = format!(
                    r#"{{"eventType":"bench.event","payload":{}}}"#,
                    envelope(i, &now_rfc3339(), &pad)
                );
                let r = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .body(body);
                r.send().await?.error_for_status()?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(per_second(args.messages as usize, Some(started), Some(Instant::now())))
}

/// The relay ceiling: `hookd-relay`, from this harness's directory, forwarding each of the
/// benchmark's bodies to the receiver once per endpoint, published to in a closed loop. Returns
/// its rate and its CPU; `baseline` and `hookd` (deliveries per second) give the ratios.
async fn relay_ceiling(
    args: &Args,
    recv_addr: SocketAddr,
    baseline: Option<f64>,
    hookd: Option<f64>,
) -> anyhow::Result<RelayCeiling> {
    use tokio::io::AsyncBufReadExt;
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("hookd-relay");
    let mut child = tokio::process::Command::new(&bin)
        .arg("--target")
        .arg(format!("http://{recv_addr}/baseline"))
        .arg("--fan-out")
        .arg(args.endpoints.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "{} (build it with `cargo build --release -p hookd-bench`)",
                bin.display()
            )
        })?;
    let pid = child.id().context("hookd-relay exited at once")?;
    let stdout = child.stdout.take().context("hookd-relay's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .context("hookd-relay did not start within 10 s")??
        .context("hookd-relay exited before listening")?;
    let addr = line
        .strip_prefix("listening on ")
        .with_context(|| format!("hookd-relay printed {line:?}"))?;
    let meter = CpuMeter::start(&[pid]);
    let rate = closed_loop(args, &format!("http://{addr}/msg")).await;
    let (cpu, work) = meter.stop();
    child.kill().await?;
    let msgs_per_s = rate?;
    let deliveries = args.messages as f64 * args.endpoints as f64;
    let deliveries_per_s = msgs_per_s.map(|r| round(r * args.endpoints as f64, 1));
    Ok(RelayCeiling {
        msgs_per_s,
        deliveries_per_s,
        baseline_ratio: deliveries_per_s.zip(baseline).map(|(r, b)| round(r / b, 3)),
        hookd_ratio: hookd.zip(deliveries_per_s).map(|(h, r)| round(h / r, 3)),
        cpu,
        cpu_us_per_delivery: Some(round(work.cpu_s * 1e6 / deliveries, 1)),
    })
}

/// `bytes` per message in KiB, or `None` without bytes or messages.
fn kib_per(bytes: Option<u64>, messages: usize) -> Option<f64> {
    bytes
        .filter(|_| messages > 0)
        .map(|b| round(b as f64 / 1024.0 / messages as f64, 2))
}

fn per_second(count: usize, from: Option<Instant>, to: Option<Instant>) -> Option<f64> {
    let secs = to?.checked_duration_since(from?)?.as_secs_f64();
    (secs > 0.0).then(|| round(count as f64 / secs, 1))
}

/// The whole benchmark; every hookd node is killed before this returns (or is dropped), whatever
/// the outcome.
async fn run(args: &Args, backend: Backend<'_>, dir: &Path) -> anyhow::Result<Report> {
    let (messages, endpoints) = (args.messages as usize, args.endpoints as usize);
    let timeout = Duration::from_secs(args.timeout_secs);
    // Absolute, because hookd runs in the temp dir where a relative path would mean otherwise.
    let bin = std::fs::canonicalize(&args.hookd).with_context(|| format!("hookd binary {}", args.hookd.display()))?;
    // Before hookd and the receiver start, so that neither competes with the probe.
    let probe = tokio::task::spawn_blocking(machine_probe).await?;
    let (recv_addr, receiver) = start_receiver().await?;
    let mut nodes = Vec::new();
    let token = match backend {
        Backend::Sqlite => {
            let (child, base, token) = start_node(&bin, dir, backend, 0, args.pin.first().map(String::as_str)).await?;
            nodes.push((child, base));
            token.context("hookd printed no admin token at first start")?
        }
        Backend::Postgres { url, .. } => {
            // First, so the schema is migrated once before the nodes open it.
            let token = create_token(&bin, dir, backend, url).await?;
            for node in 0..args.nodes {
                let (child, base, _) = start_node(
                    &bin,
                    dir,
                    backend,
                    node,
                    args.pin.get(node as usize).map(String::as_str),
                )
                .await?;
                nodes.push((child, base));
            }
            token
        }
    };
    let (mut children, bases): (Vec<Child>, Vec<String>) = nodes.into_iter().unzip();
    let client = reqwest::Client::builder()
        .no_proxy() // all traffic is to 127.0.0.1
        .pool_max_idle_per_host(args.concurrency as usize)
        .timeout(Duration::from_secs(30))
        .build()?;
    // hookd prints its address once bound, so this normally succeeds at once; bounded: 10 s.
    for base in &bases {
        wait_healthy(&client, base).await?;
    }
    // All on node 0 and before any publish, so no node has cached the application or its
    // endpoints yet: every node reads them from the shared database on its first message.
    let base = &bases[0];
    let template = match &args.catalog_event {
        None => None,
        Some(name) => {
            let et: Value = client
                .get(format!("{base}/event-type/{name}"))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()
                .with_context(|| format!("event type {name}"))?
                .json()
                .await?;
            let example = et
                .pointer("/schemas/1/examples/0")
                .cloned()
                .with_context(|| format!("{name} has no example"))?;
            Some((name.clone(), example))
        }
    };
    let apps = args.apps as usize;
    let mut endpoint_paths = Vec::with_capacity(apps * endpoints);
    for a in 0..apps {
        let app = json!({"name": format!("bench {a}"), "uid": format!("bench{a}")});
        post(&client, &format!("{base}/app"), &token, app).await?;
        for i in 0..endpoints {
            endpoint_paths.push(format!("bench{a}/endpoint/ep{i}"));
        }
    }
    for (n, path) in endpoint_paths.iter().enumerate() {
        let i = n % endpoints;
        let endpoint_url = format!("{base}/app/{}", path.rsplit_once('/').expect("a path").0);
        let mut endpoint = json!({ "url": format!("http://{recv_addr}/hook/{i}"), "uid": format!("ep{i}") });
        if args.backlog {
            endpoint["throttleRate"] = json!(1);
        }
        post(&client, &endpoint_url, &token, endpoint).await?;
    }
    let pids: Vec<u32> = children.iter().filter_map(Child::id).collect();
    let idle_rss = pids.first().and_then(|&p| rss_kib(p));

    let overhead = envelope(0, &now_rfc3339(), "").len();
    let schedule = Duration::from_secs_f64(args.rate.map_or(0.0, |r| messages as f64 / r as f64));
    let t0 = Instant::now();
    let urls = bases
        .iter()
        .map(|base| (0..apps).map(|a| format!("{base}/app/bench{a}/msg").parse()).collect())
        .collect::<Result<Vec<Vec<reqwest::Url>>, _>>()?;
    let publisher = Arc::new(Publisher {
        client,
        urls,
        token,
        pad: "x".repeat(args.payload_bytes.saturating_sub(overhead)),
        template: template.clone(),
        messages,
        rate: args.rate,
        next: AtomicUsize::new(0),
        t0,
        deadline: t0 + schedule + timeout,
        first_start: OnceLock::new(),
    });
    // The server's log position as publishing starts, on PostgreSQL.
    let wal_start = match backend {
        Backend::Postgres { url, .. } => wal_position(url).await.map(|at| (url, at)),
        Backend::Sqlite => None,
    };
    let writer_start = writer_busy_secs(&publisher.client, &bases).await;
    let cpu = CpuMeter::start(&pids);
    let threads = ThreadMeter::start(&pids);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        workers.spawn(publish_worker(publisher.clone()));
    }
    let mut published = Published::default();
    while let Some(done) = workers.join_next().await {
        let done = done?;
        published.accepted.extend(done.accepted);
        published.last_accept = published.last_accept.max(done.last_accept);
        published.errors.extend(done.errors);
    }
    if let Some(e) = published.errors.first() {
        let n = published.errors.len();
        eprintln!("hookd-bench: {n} publish errors; first: {e}");
    }

    let expected = published.accepted.len() * endpoints;
    let mut delivered = receiver.delivered.subscribe();
    let drain_start = match args.backlog {
        false => None,
        true => Some(lift_throttles(&publisher.client, base, &publisher.token, &endpoint_paths).await?),
    };
    let queued = expected.saturating_sub(*delivered.borrow());
    let rss_peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = (drain_start.is_some())
        .then_some(pids.first().copied())
        .flatten()
        .map(|pid| {
            let peak = rss_peak.clone();
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss_kib(pid).unwrap_or(0), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        });
    let wait = tokio::time::timeout(timeout, delivered.wait_for(|&n| n >= expected));
    let complete = wait.await.is_ok();
    let ended = Instant::now();
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    let (cpu, work) = cpu.stop();
    let threads = threads.stop();
    let writer_busy = match (writer_start, writer_busy_secs(&publisher.client, &bases).await) {
        (Some(start), Some(end)) => Some(round((end - start) / cpu.wall_s.max(1e-9), 3)),
        _ => None,
    };
    let wal_written = match wal_start {
        Some((url, start)) => wal_position(url).await.map(|end| end.saturating_sub(start)),
        None => None,
    };
    let peak_rss = pids.first().and_then(|&p| peak_rss_kib(p));
    let ledger = ledger(
        &publisher.client,
        base,
        &publisher.token,
        &endpoint_paths,
        published.accepted.len(),
        endpoints,
    )
    .await?;
    let dispatch = dispatch(&publisher.client, &bases).await;
    for child in &mut children {
        child.kill().await.context("stopping hookd")?;
    }

    let delivered = *delivered.borrow();
    let dup = receiver.duplicates.load(Ordering::Relaxed);
    if !complete || dup > 0 {
        eprintln!("hookd-bench: {delivered} of {expected} deliveries arrived; {dup} duplicates");
    }
    let (latencies, scheduled, lag, last) = {
        let by_id = receiver.by_id.lock().expect("receiver lock poisoned");
        let arrival = |a: &Accepted| by_id.get(&a.id).map(|r| r.0);
        let accepted = &published.accepted;
        let latencies = latency(accepted.iter().filter_map(|a| Some(arrival(a)? - a.started)));
        let scheduled = args.rate.map(|_| {
            latency(
                accepted
                    .iter()
                    .filter_map(|a| Some(arrival(a)?.saturating_duration_since(a.due?))),
            )
        });
        let lag = args.rate.map(|_| {
            latency(
                accepted
                    .iter()
                    .filter_map(|a| Some(a.started.saturating_duration_since(a.due?))),
            )
        });
        (latencies, scheduled, lag, by_id.values().map(|a| a.1).max())
    };
    let api = latency(published.accepted.iter().map(|a| a.answered - a.started));
    let start = publisher.first_start.get().copied();
    let end = if complete { last } else { Some(ended) };
    let delivered_rate = per_second(delivered, start, last);
    let drain = drain_start.map(|from| Drain {
        queued,
        drain_s: last.map(|l| round(l.saturating_duration_since(from).as_secs_f64(), 3)),
        deliveries_per_s: per_second(queued, Some(from), last),
        rss_peak_mib: Some(round(rss_peak.load(Ordering::Relaxed) as f64 / 1024.0, 1)),
    });
    // With hookd stopped, so the baseline has the machine to itself as hookd had.
    let baseline = match args.baseline {
        false => None,
        true => {
            let rate = baseline(args, recv_addr).await?;
            Some(Baseline {
                msgs_per_s: rate,
                hookd_ratio: rate.zip(delivered_rate).map(|(b, h)| round(h / b, 3)),
            })
        }
    };
    let relay_ceiling = match args.relay_ceiling {
        false => None,
        true => Some(
            relay_ceiling(
                args,
                recv_addr,
                baseline.as_ref().and_then(|b| b.msgs_per_s),
                delivered_rate,
            )
            .await?,
        ),
    };
    Ok(Report {
        backend: match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        },
        nodes: bases.len() as u64,
        pinned: args.pin.clone(),
        messages,
        apps,
        endpoints,
        concurrency: args.concurrency,
        offered_rate: args.rate,
        payload_bytes: match &template {
            Some((_, example)) => example.to_string().len(),
            None => args.payload_bytes,
        },
        event_type: args.catalog_event.clone().unwrap_or_else(|| "bench.event".into()),
        ingest_msgs_per_s: per_second(published.accepted.len(), start, published.last_accept),
        delivered_msgs_per_s: delivered_rate,
        latency_ms: latencies,
        scheduled_latency_ms: scheduled,
        schedule_lag_ms: lag,
        api_latency_ms: api,
        cpu,
        probe,
        threads,
        sqlite_writer_busy: writer_busy,
        cost: Cost {
            cpu_us_per_delivery: (delivered > 0).then(|| round(work.cpu_s * 1e6 / delivered as f64, 1)),
            written_kib_per_message: match backend {
                Backend::Postgres { .. } => None,
                Backend::Sqlite => kib_per(work.written, published.accepted.len()),
            },
            wal_kib_per_message: kib_per(wal_written, published.accepted.len()),
        },
        rss_mib: Rss {
            idle: idle_rss.map(|k| round(k as f64 / 1024.0, 1)),
            peak: peak_rss.map(|k| round(k as f64 / 1024.0, 1)),
        },
        ledger,
        dispatch,
        baseline,
        relay_ceiling,
        drain,
        errors: published.errors.len() + expected.saturating_sub(delivered),
        duration_s: (start.zip(end)).map(|(s, e)| round(e.saturating_duration_since(s).as_secs_f64(), 3)),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.pin.is_empty() && args.pin.len() as u64 != args.nodes {
        let message = format!(
            "--pin is given once per node: {} for {} nodes",
            args.pin.len(),
            args.nodes
        );
        Args::command()
            .error(clap::error::ErrorKind::WrongNumberOfValues, message)
            .exit();
    }
    if args.nodes > 1 && args.database.is_none() {
        let message = "--nodes above 1 needs --database: only PostgreSQL can be shared by several nodes";
        Args::command()
            .error(clap::error::ErrorKind::MissingRequiredArgument, message)
            .exit();
    }
    let dir = tempfile::Builder::new().prefix("hookd-bench-").tempdir()?;
    let schema = schema_name("hookd_bench");
    let backend = match &args.database {
        None => Backend::Sqlite,
        Some(url) => {
            psql(url, &format!("CREATE SCHEMA {schema}")).await?;
            Backend::Postgres { url, schema: &schema }
        }
    };
    // On Ctrl-C, `run` is dropped (which kills the nodes) and the cleanup below still runs.
    let result = tokio::select! {
        result = run(&args, backend, dir.path()) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    // No node is left to use the schema: `run` killed them all, or its drop did.
    let cleanup = match backend {
        Backend::Sqlite => Ok(()),
        Backend::Postgres { url, schema } => psql(url, &format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .with_context(|| format!("schema {schema} is left behind")),
    };
    let outcome = match result {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report)?);
            let l = &report.ledger;
            match l.balanced {
                true => Ok(()),
                false => Err(anyhow!(
                    "void run: the ledger does not balance ({} expected, {} delivered + {} failed + {} pending)",
                    l.expected,
                    l.success,
                    l.fail,
                    l.pending
                )),
            }
        }
        Err(e) => {
            // Keep the data dir and hookd's logs for a post-mortem.
            let kept = dir.keep();
            Err(anyhow!("{e:#}\n(hookd's logs are kept in {})", kept.display()))
        }
    };
    // A failed run's error comes first; a leftover schema is reported either way.
    if let (Err(_), Err(e)) = (&outcome, &cleanup) {
        eprintln!("hookd-bench: {e:#}");
    }
    outcome.and(cleanup)
}

#[cfg(test)]
mod tests {
    use super::{series_value, Dispatch};

    /// A series is found by its whole name and labels, never by a prefix of them.
    #[test]
    fn a_series_is_read_by_its_exact_name_and_labels() {
        let text = "# TYPE hookd_sqlite_write_batch_duration_seconds histogram\n\
                    hookd_sqlite_write_batch_duration_seconds_bucket{le=\"+Inf\"} 12\n\
                    hookd_sqlite_write_batch_duration_seconds_sum 0.75\n\
                    hookd_sqlite_write_batch_duration_seconds_count 12\n";
        assert_eq!(
            series_value(text, "hookd_sqlite_write_batch_duration_seconds_sum"),
            Some(0.75)
        );
        assert_eq!(series_value(text, "hookd_sqlite_write_batch_duration_seconds"), None);
        assert_eq!(
            series_value(text, r#"hookd_sqlite_write_batch_duration_seconds_bucket{le="+Inf"}"#),
            Some(12.0)
        );
        assert_eq!(series_value("", "hookd_sqlite_write_batch_duration_seconds_sum"), None);
    }

    #[test]
    fn dispatch_counts_add_up_over_nodes_and_ignore_other_series() {
        let node = "# TYPE hookd_deliveries_dispatched_total counter\n\
                    hookd_deliveries_dispatched_total{path=\"handed_over\"} 120\n\
                    hookd_deliveries_dispatched_total{path=\"claimed\"} 7\n\
                    hookd_deliveries_dispatched_total{path=\"lane\"} 3\n\
                    hookd_attempts_total{outcome=\"success\"} 127\n";
        let mut total = Dispatch::default();
        total.add(node);
        total.add(node);
        assert_eq!(
            total,
            Dispatch {
                handed_over: 240,
                claimed: 14
            }
        );
    }
}
