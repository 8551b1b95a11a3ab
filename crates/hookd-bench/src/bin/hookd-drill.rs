//! hookd-drill: fault drills against real `hookd serve` processes, with figures.
//!
//! - `crash`: sustained load while `kill -9` hits a node at random moments (`--kills` times);
//!   each killed node is started again at once on the same data. At the end it waits for every
//!   acknowledged message and prints a ledger: acknowledged, delivered, lost (must be 0),
//!   duplicated (and whether a kill explains each), delivered although never acknowledged (a
//!   `POST` cut by a kill after its commit), and the **recovery time** per kill: from the kill to
//!   the first arrival of a message the dead node had acknowledged and not yet delivered.
//! - `soak`: a steady rate for `--duration-secs` across tenants: 20 applications with 5
//!   endpoints each, one of the 100 failing (`500`), one slow tenant (5 s per request) and one
//!   throttled tenant (endpoint `rateLimit` 1/s, fed bursts). Every `--sample-secs` it prints
//!   hookd's RSS, the steady tenants' latency and the slow and throttled backlogs; at the end a
//!   ledger (every acknowledged delivery arrived, or was attempted at the failing endpoint).
//!
//! Both print one JSON line per sample or event on stderr and the final report as one JSON line
//! on stdout, and exit non-zero when the ledger does not balance. Everything is on loopback: the
//! receiver listens on 127.0.0.1 and hookd may deliver only there.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use clap::{Args, Parser, Subcommand};
use hookd_bench::{
    create_token, percentile_ms, post, postgres_url, psql, round, rss_kib, schema_name, serve_on_loopback, start_node,
    wait_healthy, Backend,
};
use rand::Rng;
use serde_json::{json, Value};
use tokio::process::Child;

/// Fault drills against a hookd binary.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    drill: Drill,
}

#[derive(Debug, Subcommand)]
enum Drill {
    /// kill -9 under load, then restart; nothing acknowledged may be lost.
    Crash(CrashArgs),
    /// A steady mixed load for a long time: memory, lag, ledger.
    Soak(SoakArgs),
}

/// What every drill takes.
#[derive(Debug, Args)]
struct Target {
    /// The hookd binary to run (build it with `--release`).
    #[arg(long)]
    hookd: PathBuf,
    /// PostgreSQL database (`postgres://…`) to run hookd on, in a fresh schema dropped
    /// afterwards; needs `psql` (default: SQLite in a temp dir).
    #[arg(long, value_name = "URL", value_parser = postgres_url)]
    database: Option<String>,
    /// `hookd serve` nodes sharing the database (more than one needs `--database`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=16))]
    nodes: u64,
}

#[derive(Debug, Args)]
struct CrashArgs {
    #[command(flatten)]
    target: Target,
    /// How many times a node is killed.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    kills: u64,
    /// Offered load in messages per second, spread over the nodes.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Shortest and longest pause between kills, in milliseconds (uniformly random between).
    #[arg(long, default_value_t = 500)]
    min_gap_ms: u64,
    #[arg(long, default_value_t = 3000)]
    max_gap_ms: u64,
    /// Longest wait, after the load stops, for every acknowledged message to arrive.
    #[arg(long, default_value_t = 180)]
    settle_secs: u64,
    /// How long the receiver takes to answer each delivery, so requests are in flight at a kill.
    #[arg(long, default_value_t = 20)]
    receiver_delay_ms: u64,
}

#[derive(Debug, Args)]
struct SoakArgs {
    #[command(flatten)]
    target: Target,
    /// How long the load runs.
    #[arg(long, default_value_t = 3600)]
    duration_secs: u64,
    /// Messages per second to the 20 steady applications (each fans out to 5 endpoints).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Messages in each burst to the throttled tenant (one burst every 120 s; its endpoint
    /// takes 1 per second).
    #[arg(long, default_value_t = 60)]
    burst: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    sample_secs: u64,
    /// Longest wait, after the load stops, for the ledger to balance.
    #[arg(long, default_value_t = 300)]
    settle_secs: u64,
}

// ---------------------------------------------------------------------------------------------
// The receiver

/// Every arrival, per (endpoint name, `webhook-id`).
#[derive(Default)]
struct Sink {
    arrivals: Mutex<HashMap<(String, String), Vec<Instant>>>,
    /// Total arrivals, for progress.
    count: AtomicUsize,
    /// How long `ok…` endpoints take to answer.
    delay: Duration,
}

/// The first arrival of `id` at `endpoint`.
fn first(arrivals: &HashMap<(String, String), Vec<Instant>>, endpoint: &str, id: &str) -> Option<Instant> {
    arrivals.get(&(endpoint.to_string(), id.to_string())).map(|a| a[0])
}

/// `POST /hook/{name}`: records the arrival; `fail…` answers 500, `slow…` waits 5 s, `ok…`
/// waits the sink's delay; then 200.
async fn receive(
    State(sink): State<Arc<Sink>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    _body: axum::body::Bytes,
) -> StatusCode {
    let now = Instant::now();
    let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) else {
        return StatusCode::BAD_REQUEST;
    };
    let failing = name.starts_with("fail");
    let pause = match name.split('-').next() {
        Some("slow") => Duration::from_secs(5),
        Some("ok") => sink.delay,
        _ => Duration::ZERO,
    };
    sink.arrivals
        .lock()
        .expect("sink lock")
        .entry((name, id.to_string()))
        .or_default()
        .push(now);
    sink.count.fetch_add(1, Ordering::Relaxed);
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    match failing {
        true => StatusCode::INTERNAL_SERVER_ERROR,
        false => StatusCode::OK,
    }
}

async fn start_sink(delay: Duration) -> anyhow::Result<(SocketAddr, Arc<Sink>)> {
    let sink = Arc::new(Sink {
        delay,
        ..Sink::default()
    });
    let app = axum::Router::new()
        .route("/hook/{name}", axum::routing::post(receive))
        .with_state(sink.clone());
    Ok((serve_on_loopback(app).await?, sink))
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// The running nodes; publishers read the current base URLs, the killer replaces them.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    children: tokio::sync::Mutex<Vec<Child>>,
    bases: RwLock<Vec<String>>,
    token: String,
}

impl Cluster {
    async fn start(bin: &Path, dir: &Path, backend: Backend<'_>, nodes: u64) -> anyhow::Result<Cluster> {
        let bin = std::fs::canonicalize(bin).with_context(|| format!("hookd binary {}", bin.display()))?;
        let (mut children, mut bases) = (Vec::new(), Vec::new());
        let token = match backend {
            Backend::Sqlite => {
                let (child, base, token) = start_node(&bin, dir, backend, 0, None).await?;
                children.push(child);
                bases.push(base);
                token.context("hookd printed no admin token at first start")?
            }
            Backend::Postgres { url, .. } => {
                let token = create_token(&bin, dir, backend, url).await?;
                for node in 0..nodes {
                    let (child, base, _) = start_node(&bin, dir, backend, node, None).await?;
                    children.push(child);
                    bases.push(base);
                }
                token
            }
        };
        Ok(Cluster {
            bin,
            dir: dir.to_path_buf(),
            children: tokio::sync::Mutex::new(children),
            bases: RwLock::new(bases),
            token,
        })
    }

    fn base(&self, node: usize) -> String {
        self.bases.read().expect("bases lock")[node].clone()
    }

    fn node_count(&self) -> usize {
        self.bases.read().expect("bases lock").len()
    }

    /// `kill -9` of `node`, reaped before this returns.
    async fn kill(&self, node: usize) -> anyhow::Result<()> {
        let mut children = self.children.lock().await;
        children[node].kill().await.context("kill -9")
    }

    /// Starts `node` again on the same data; returns when it printed its address.
    async fn restart(&self, node: usize, backend: Backend<'_>) -> anyhow::Result<()> {
        let (child, base, _) = start_node(&self.bin, &self.dir, backend, node as u64, None).await?;
        self.children.lock().await[node] = child;
        self.bases.write().expect("bases lock")[node] = base;
        Ok(())
    }

    /// A client for the API once every node answers health; and node 0's base URL.
    async fn ready(&self) -> anyhow::Result<(reqwest::Client, String)> {
        let client = client()?;
        for node in 0..self.node_count() {
            wait_healthy(&client, &self.base(node)).await?;
        }
        Ok((client, self.base(0)))
    }

    async fn pids(&self) -> Vec<u32> {
        self.children.lock().await.iter().filter_map(Child::id).collect()
    }

    async fn stop(&self) {
        for child in self.children.lock().await.iter_mut() {
            let _ = child.kill().await;
        }
    }
}

/// One publish; the message id on `202`, else why not.
async fn publish(client: &reqwest::Client, url: &str, token: &str, event: &str, n: u64) -> Result<String, String> {
    let payload = json!({"id": format!("evt_{n:010}"), "type": event, "data": {"n": n, "pad": "x".repeat(900)}});
    let body = json!({"eventType": event, "payload": payload});
    let r = client.post(url).bearer_auth(token).json(&body).send().await;
    match r {
        Ok(r) if r.status().as_u16() == 202 => match r.json::<Value>().await {
            Ok(v) => v["id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("202 without id: {v}")),
            Err(e) => Err(format!("202 body unreadable: {e}")),
        },
        Ok(r) => Err(format!("{}", r.status())),
        Err(e) if e.is_connect() => Err("connection refused".into()),
        Err(_) => Err("cut off".into()),
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Counts of publish refusals by reason.
type Refusals = Mutex<HashMap<String, usize>>;

fn refused(refusals: &Refusals, why: String) {
    *refusals.lock().expect("refusals lock").entry(why).or_default() += 1;
}

fn emit(line: Value) {
    eprintln!("{line}");
}

// ---------------------------------------------------------------------------------------------
// Crash drill

/// One acknowledged message.
struct Ack {
    id: String,
    node: usize,
    at: Instant,
}

/// Waited after a kill before noting the dead node's pending work: a request it had fully sent
/// still reaches the receiver in this time, and is not pending.
const ON_THE_WIRE: Duration = Duration::from_millis(5);
/// A duplicate is explained by a kill that came between its first and last arrival, or at most
/// this long before the first (a request on the wire when its sender died, sent again later).
const WIRE_WINDOW: Duration = Duration::from_millis(100);

/// One kill and what the dead node left behind.
struct Kill {
    node: usize,
    at: Instant,
    /// Kill → the restarted node printed its address.
    restarted_ms: f64,
    /// Messages the dead node had acknowledged and not yet delivered (unsent, or sent and not
    /// yet answered) at the kill.
    pending: Vec<String>,
}

async fn crash(args: &CrashArgs, backend: Backend<'_>, dir: &Path) -> anyhow::Result<Value> {
    ensure!(args.min_gap_ms <= args.max_gap_ms, "--min-gap-ms is above --max-gap-ms");
    let (recv, sink) = start_sink(Duration::from_millis(args.receiver_delay_ms)).await?;
    let cluster = Arc::new(Cluster::start(&args.target.hookd, dir, backend, args.target.nodes).await?);
    let result = crash_run(args, backend, &cluster, recv, &sink).await;
    cluster.stop().await;
    result
}

async fn crash_run(
    args: &CrashArgs,
    backend: Backend<'_>,
    cluster: &Arc<Cluster>,
    recv: SocketAddr,
    sink: &Arc<Sink>,
) -> anyhow::Result<Value> {
    let (client, base) = cluster.ready().await?;
    let nodes = cluster.node_count();
    post(
        &client,
        &format!("{base}/app"),
        &cluster.token,
        json!({"name": "drill", "uid": "drill"}),
    )
    .await?;
    let endpoint = json!({"url": format!("http://{recv}/hook/ok")});
    post(&client, &format!("{base}/app/drill/endpoint"), &cluster.token, endpoint).await?;

    // The load: message n is due at t0 + n/rate on node n % nodes, whatever happened before.
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let refusals: Arc<Refusals> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let mut load = tokio::task::JoinSet::new();
    let workers = 64u64;
    for w in 0..workers {
        let (client, cluster, acks, refusals, stop) = (
            client.clone(),
            cluster.clone(),
            acks.clone(),
            refusals.clone(),
            stop.clone(),
        );
        let rate = args.rate;
        load.spawn(async move {
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                let due = t0 + Duration::from_secs_f64(n as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let node = (n as usize) % nodes;
                let url = format!("{}/app/drill/msg", cluster.base(node));
                match publish(&client, &url, &cluster.token, "drill.event", n).await {
                    Ok(id) => acks.lock().expect("acks lock").push(Ack {
                        id,
                        node,
                        at: Instant::now(),
                    }),
                    Err(why) => refused(&refusals, why),
                }
                n += workers;
            }
        });
    }

    // The killer.
    let mut kills = Vec::new();
    for k in 0..args.kills {
        let gap = rand::thread_rng().gen_range(args.min_gap_ms..=args.max_gap_ms);
        tokio::time::sleep(Duration::from_millis(gap)).await;
        let node = rand::thread_rng().gen_range(0..nodes);
        let at = Instant::now();
        cluster.kill(node).await?;
        // Requests already on the wire when it died still land; they are not pending work.
        tokio::time::sleep(ON_THE_WIRE).await;
        let pending: Vec<String> = {
            let acks = acks.lock().expect("acks lock");
            let arrivals = sink.arrivals.lock().expect("sink lock");
            // Not yet sent, or sent and still being answered (so not recorded) at the kill.
            let answered = |t: &Instant| *t + sink.delay < at;
            acks.iter()
                .filter(|a| a.node == node && a.at <= at)
                .filter(|a| {
                    !arrivals
                        .get(&("ok".to_string(), a.id.clone()))
                        .is_some_and(|v| v.iter().any(answered))
                })
                .map(|a| a.id.clone())
                .collect()
        };
        cluster.restart(node, backend).await?;
        let restarted_ms = round(at.elapsed().as_secs_f64() * 1000.0, 1);
        emit(json!({"kill": k + 1, "node": node, "pending": pending.len(), "restarted_ms": restarted_ms}));
        kills.push(Kill {
            node,
            at,
            restarted_ms,
            pending,
        });
    }
    // A little more load after the last restart, then stop and let everything arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    let load_secs = t0.elapsed().as_secs_f64();

    let acked: Vec<String> = acks.lock().expect("acks lock").iter().map(|a| a.id.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(args.settle_secs);
    let missing = loop {
        let missing = {
            let arrivals = sink.arrivals.lock().expect("sink lock");
            acked
                .iter()
                .filter(|id| !arrivals.contains_key(&("ok".to_string(), (*id).clone())))
                .count()
        };
        if missing == 0 || Instant::now() >= deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Late duplicates (a request in flight at a kill) arrive within a lease; wait that out.
    if missing == 0 {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let arrivals = sink.arrivals.lock().expect("sink lock");
    let acked_set: HashSet<&String> = acked.iter().collect();
    let mut duplicated_explained = 0;
    let mut duplicated_unexplained = 0;
    let mut extra_arrivals = 0;
    let mut unacknowledged_delivered = 0;
    for ((_, id), times) in arrivals.iter() {
        if !acked_set.contains(id) {
            unacknowledged_delivered += 1;
        }
        if times.len() > 1 {
            extra_arrivals += times.len() - 1;
            let (first, last) = (times[0], times[times.len() - 1]);
            match kills.iter().any(|k| k.at + WIRE_WINDOW >= first && k.at <= last) {
                true => duplicated_explained += 1,
                false => {
                    duplicated_unexplained += 1;
                    let ms = |t: Instant| round(t.saturating_duration_since(t0).as_secs_f64() * 1000.0, 1);
                    let kills_ms: Vec<f64> = kills.iter().map(|k| ms(k.at)).collect();
                    let arrivals_ms: Vec<f64> = times.iter().map(|t| ms(*t)).collect();
                    emit(json!({"unexplained_duplicate": id, "arrivals_ms": arrivals_ms, "kills_ms": kills_ms}));
                }
            }
        }
    }
    let mut recoveries = Vec::new();
    let mut drains = Vec::new();
    for kill in &kills {
        // Each one's first arrival sent by a live node after the kill.
        let after = kill.at + ON_THE_WIRE;
        let firsts: Vec<Instant> = (kill.pending.iter())
            .filter_map(|id| {
                arrivals
                    .get(&("ok".to_string(), id.clone()))?
                    .iter()
                    .copied()
                    .find(|t| *t > after)
            })
            .collect();
        if let (Some(first), Some(last)) = (firsts.iter().min(), firsts.iter().max()) {
            recoveries.push(first.saturating_duration_since(kill.at).as_micros() as u64);
            drains.push(last.saturating_duration_since(kill.at).as_micros() as u64);
        }
    }
    recoveries.sort_unstable();
    drains.sort_unstable();
    let mut restarts: Vec<u64> = kills.iter().map(|k| (k.restarted_ms * 1000.0) as u64).collect();
    restarts.sort_unstable();
    let per_node: Vec<usize> = (0..nodes)
        .map(|n| kills.iter().filter(|k| k.node == n).count())
        .collect();
    Ok(json!({
        "drill": "crash",
        "nodes": nodes,
        "kills": kills.len(),
        "kills_per_node": per_node,
        "offered_rate": args.rate,
        "load_secs": round(load_secs, 1),
        "acknowledged": acked.len(),
        "delivered": acked.len() - missing,
        "lost": missing,
        "duplicated": {
            "messages_explained_by_a_kill": duplicated_explained,
            "messages_unexplained": duplicated_unexplained,
            "extra_arrivals": extra_arrivals,
        },
        "delivered_although_unacknowledged": unacknowledged_delivered,
        "publishes_refused": *refusals.lock().expect("refusals lock"),
        "restart_ms": {"p50": percentile_ms(&restarts, 0.5), "max": percentile_ms(&restarts, 1.0)},
        "kills_with_pending_work": recoveries.len(),
        "recovery_ms": {"p50": percentile_ms(&recoveries, 0.5), "max": percentile_ms(&recoveries, 1.0)},
        "pending_drained_ms": {"p50": percentile_ms(&drains, 0.5), "max": percentile_ms(&drains, 1.0)},
        "balanced": missing == 0 && duplicated_unexplained == 0,
    }))
}

// ---------------------------------------------------------------------------------------------
// Soak drill

/// Steady applications and endpoints per application.
const STEADY_APPS: usize = 20;
const STEADY_ENDPOINTS: usize = 5;
/// Seconds between bursts to the throttled tenant.
const BURST_EVERY: u64 = 120;

/// A publishing stream's plan: message `n` is due at this offset from the start, for this tenant.
type Schedule = Box<dyn Fn(u64) -> (Duration, usize) + Send + Sync>;

/// A message acknowledged for a tenant, with the instant its `POST` started.
struct Sent {
    id: String,
    app: usize,
    started: Instant,
}

async fn soak(args: &SoakArgs, backend: Backend<'_>, dir: &Path) -> anyhow::Result<Value> {
    let (recv, sink) = start_sink(Duration::ZERO).await?;
    let cluster = Arc::new(Cluster::start(&args.target.hookd, dir, backend, args.target.nodes).await?);
    let result = soak_run(args, &cluster, recv, &sink).await;
    cluster.stop().await;
    result
}

/// The endpoint names of steady application `app`.
fn steady_endpoints(app: usize) -> Vec<String> {
    (0..STEADY_ENDPOINTS)
        .map(|e| match (app, e) {
            (0, 0) => "fail-0".to_string(),
            _ => format!("ok-{app}-{e}"),
        })
        .collect()
}

async fn soak_run(
    args: &SoakArgs,
    cluster: &Arc<Cluster>,
    recv: SocketAddr,
    sink: &Arc<Sink>,
) -> anyhow::Result<Value> {
    let (client, base) = cluster.ready().await?;
    let nodes = cluster.node_count();
    let token = &cluster.token;
    for app in 0..STEADY_APPS {
        post(
            &client,
            &format!("{base}/app"),
            token,
            json!({"name": format!("steady {app}"), "uid": format!("steady-{app}")}),
        )
        .await?;
        for name in steady_endpoints(app) {
            let endpoint = json!({"url": format!("http://{recv}/hook/{name}"), "uid": name});
            post(&client, &format!("{base}/app/steady-{app}/endpoint"), token, endpoint).await?;
        }
    }
    post(
        &client,
        &format!("{base}/app"),
        token,
        json!({"name": "slow", "uid": "slow"}),
    )
    .await?;
    let slow = json!({"url": format!("http://{recv}/hook/slow")});
    post(&client, &format!("{base}/app/slow/endpoint"), token, slow).await?;
    post(
        &client,
        &format!("{base}/app"),
        token,
        json!({"name": "throttled", "uid": "throttled"}),
    )
    .await?;
    let throttled = json!({"url": format!("http://{recv}/hook/throttled"), "rateLimit": 1});
    post(&client, &format!("{base}/app/throttled/endpoint"), token, throttled).await?;

    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let refusals: Arc<Refusals> = Arc::default();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(args.duration_secs);
    // Tenants: steady apps 0..20, slow = 20, throttled = 21.
    let (slow_app, throttled_app) = (STEADY_APPS, STEADY_APPS + 1);
    // (tenant schedule) → message n of a stream is due at t0 + offset(n).
    let streams: Vec<(usize, Schedule)> = vec![
        (16, {
            let rate = args.rate as f64;
            Box::new(move |n| (Duration::from_secs_f64(n as f64 / rate), (n as usize) % STEADY_APPS))
        }),
        (2, Box::new(move |n| (Duration::from_secs(n), slow_app))),
        (2, {
            let burst = args.burst.max(1);
            Box::new(move |n| (Duration::from_secs((n / burst) * BURST_EVERY), throttled_app))
        }),
    ];
    let mut load = tokio::task::JoinSet::new();
    for (workers, schedule) in streams {
        let schedule = Arc::new(schedule);
        for w in 0..workers as u64 {
            let (client, cluster, sent, refusals, schedule) = (
                client.clone(),
                cluster.clone(),
                sent.clone(),
                refusals.clone(),
                schedule.clone(),
            );
            load.spawn(async move {
                let mut n = w;
                loop {
                    let (offset, app) = schedule(n);
                    let due = t0 + offset;
                    if due >= end {
                        return;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    let uid = match app {
                        a if a == slow_app => "slow".to_string(),
                        a if a == throttled_app => "throttled".to_string(),
                        a => format!("steady-{a}"),
                    };
                    let url = format!("{}/app/{uid}/msg", cluster.base((n as usize) % nodes));
                    let started = Instant::now();
                    match publish(&client, &url, &cluster.token, "soak.event", n).await {
                        Ok(id) => sent.lock().expect("sent lock").push(Sent { id, app, started }),
                        Err(why) => refused(&refusals, why),
                    }
                    n += workers as u64;
                }
            });
        }
    }

    // Samples until the load ends.
    let mut samples = Vec::new();
    let mut seen = 0;
    let interval = Duration::from_secs(args.sample_secs);
    let mut tick = tokio::time::interval_at((t0 + interval).into(), interval);
    loop {
        tick.tick().await;
        let pids = cluster.pids().await;
        let sample = soak_sample(&pids, sink, &sent, &mut seen, t0, slow_app, throttled_app);
        emit(sample.clone());
        samples.push(sample);
        if Instant::now() >= end {
            break;
        }
    }
    while load.join_next().await.is_some() {}

    // Settle: every acknowledged delivery arrived (at the failing endpoint: was attempted).
    let deadline = Instant::now() + Duration::from_secs(args.settle_secs);
    let (expected, missing, duplicates) = loop {
        let ledger = soak_ledger(sink, &sent, slow_app, throttled_app);
        if ledger.1 == 0 || Instant::now() >= deadline {
            break ledger;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let failing = failing_ledger(&client, cluster, &sent).await?;
    let rss: Vec<u64> = samples.iter().filter_map(|s| s["rss_kib"].as_u64()).collect();
    let tenth = (rss.len() / 10).max(1);
    let mean = |s: &[u64]| (!s.is_empty()).then(|| s.iter().sum::<u64>() / s.len() as u64 / 1024);
    let steady_p99: Vec<f64> = samples.iter().filter_map(|s| s["steady_p99_ms"].as_f64()).collect();
    let worst_p99 = steady_p99
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let worst = |key: &str| samples.iter().filter_map(|s| s[key].as_u64()).max();
    let acknowledged = sent.lock().expect("sent lock").len();
    Ok(json!({
        "drill": "soak",
        "nodes": nodes,
        "duration_secs": args.duration_secs,
        "steady_rate": args.rate,
        "acknowledged_messages": acknowledged,
        "expected_deliveries": expected,
        "lost": missing,
        "duplicated_arrivals": duplicates,
        "failing_endpoint": failing,
        "publishes_refused": *refusals.lock().expect("refusals lock"),
        "rss_mib": {
            "first_tenth_mean": mean(&rss[..tenth.min(rss.len())]),
            "last_tenth_mean": mean(&rss[rss.len().saturating_sub(tenth)..]),
            "max": rss.iter().max().map(|k| k / 1024),
        },
        "steady_p99_ms_worst_sample": worst_p99,
        "slow_backlog_max": worst("slow_backlog"),
        "throttled_backlog_max": worst("throttled_backlog"),
        "balanced": missing == 0 && failing["balanced"] == json!(true),
    }))
}

/// The failing endpoint's ledger from hookd's own counts: every message of its application is
/// there as failed, pending a retry (its circuit may be open) or being sent.
async fn failing_ledger(client: &reqwest::Client, cluster: &Cluster, sent: &Mutex<Vec<Sent>>) -> anyhow::Result<Value> {
    let published = sent.lock().expect("sent lock").iter().filter(|s| s.app == 0).count() as u64;
    let url = format!("{}/app/steady-0/endpoint/fail-0/stats", cluster.base(0));
    let r = client.get(url).bearer_auth(&cluster.token).send().await?;
    let stats: Value = r.error_for_status()?.json().await?;
    let count = |k: &str| stats[k].as_u64().unwrap_or(0);
    let accounted = count("fail") + count("pending") + count("sending") + count("success");
    Ok(json!({
        "published": published,
        "failed": count("fail"),
        "pending_retry": count("pending"),
        "sending": count("sending"),
        "balanced": accounted == published && count("success") == 0,
    }))
}

/// One sample: RSS, the steady tenants' latency over the messages acknowledged since the last
/// sample that have arrived, and what the slow and throttled tenants still wait for.
fn soak_sample(
    pids: &[u32],
    sink: &Sink,
    sent: &Mutex<Vec<Sent>>,
    seen: &mut usize,
    t0: Instant,
    slow_app: usize,
    throttled_app: usize,
) -> Value {
    let sent = sent.lock().expect("sent lock");
    let arrivals = sink.arrivals.lock().expect("sink lock");
    let mut latencies = Vec::new();
    for s in sent[*seen..].iter().filter(|s| s.app < STEADY_APPS) {
        // The first healthy endpoint of its application.
        let name = format!("ok-{}-1", s.app);
        if let Some(first) = first(&arrivals, &name, &s.id) {
            latencies.push(first.saturating_duration_since(s.started).as_micros() as u64);
        }
    }
    latencies.sort_unstable();
    *seen = sent.len();
    let backlog = |app: usize, name: &str| {
        sent.iter()
            .filter(|s| s.app == app && first(&arrivals, name, &s.id).is_none())
            .count()
    };
    let rss: u64 = pids.iter().filter_map(|&pid| rss_kib(pid)).sum();
    json!({
        "t_s": t0.elapsed().as_secs(),
        "rss_kib": rss,
        "acknowledged": sent.len(),
        "arrivals": sink.count.load(Ordering::Relaxed),
        "steady_p50_ms": percentile_ms(&latencies, 0.5),
        "steady_p99_ms": percentile_ms(&latencies, 0.99),
        "slow_backlog": backlog(slow_app, "slow"),
        "throttled_backlog": backlog(throttled_app, "throttled"),
    })
}

/// (expected deliveries, missing, duplicated arrivals) at the endpoints that answer 200.
fn soak_ledger(sink: &Sink, sent: &Mutex<Vec<Sent>>, slow_app: usize, throttled_app: usize) -> (usize, usize, usize) {
    let sent = sent.lock().expect("sent lock");
    let arrivals = sink.arrivals.lock().expect("sink lock");
    let (mut expected, mut missing, mut duplicates) = (0, 0, 0);
    for s in sent.iter() {
        let names = match s.app {
            a if a == slow_app => vec!["slow".to_string()],
            a if a == throttled_app => vec!["throttled".to_string()],
            a => steady_endpoints(a),
        };
        for name in names {
            if name.starts_with("fail") {
                continue; // accounted for by hookd's own counts: see `failing_ledger`
            }
            expected += 1;
            match arrivals.get(&(name, s.id.clone())) {
                None => missing += 1,
                Some(t) => duplicates += t.len() - 1,
            }
        }
    }
    (expected, missing, duplicates)
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let target = match &cli.drill {
        Drill::Crash(a) => &a.target,
        Drill::Soak(a) => &a.target,
    };
    ensure!(
        target.nodes == 1 || target.database.is_some(),
        "--nodes above 1 needs --database: only PostgreSQL can be shared by several nodes"
    );
    // The drills measure hookd, not its per-token API limit.
    if std::env::var_os("HOOKD_API__RATE_LIMIT_PER_SEC").is_none() {
        std::env::set_var("HOOKD_API__RATE_LIMIT_PER_SEC", "0");
    }
    let dir = tempfile::Builder::new().prefix("hookd-drill-").tempdir()?;
    let schema = schema_name("hookd_drill");
    let backend = match &target.database {
        None => Backend::Sqlite,
        Some(url) => {
            psql(url, &format!("CREATE SCHEMA {schema}")).await?;
            Backend::Postgres { url, schema: &schema }
        }
    };
    let run = async {
        match &cli.drill {
            Drill::Crash(a) => crash(a, backend, dir.path()).await,
            Drill::Soak(a) => soak(a, backend, dir.path()).await,
        }
    };
    let result = tokio::select! {
        result = run => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    let cleanup = match backend {
        Backend::Sqlite => Ok(()),
        Backend::Postgres { url, schema } => psql(url, &format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .with_context(|| format!("schema {schema} is left behind")),
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let kept = dir.keep();
            return Err(anyhow!("{e:#}\n(hookd's logs are kept in {})", kept.display()));
        }
    };
    println!("{report}");
    cleanup?;
    ensure!(
        report["balanced"] == json!(true),
        "the ledger does not balance: {report}"
    );
    Ok(())
}
