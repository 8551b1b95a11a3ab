//! How fast the dashboard's and the portal's pages render on a big embedded database.
//!
//! Seeds a SQLite database through the store (applications, endpoints, messages over the last
//! seven days, two attempts per message, a week of per-minute traffic), starts hookd on it in
//! this process, signs in like a browser and times every page a few times over loopback.
//!
//! ```sh
//! cargo bench -p hookd --bench pages                 # 1,000,000 attempts
//! cargo bench -p hookd --bench pages -- --attempts 200000 --requests 10
//! ```
//!
//! Prints one row per page (p50 and slowest of the timed requests) and fails if a page answers
//! anything but 200.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use hookd_core::id::IdKind;
use hookd_core::model::{Application, Attempt, Endpoint, Environment, Message, MessageStatus, TriggerType};
use hookd_store::{AttemptRecord, NewDelivery, Store, TrafficMinute};

struct Args {
    attempts: u64,
    apps: usize,
    requests: usize,
}

fn args() -> Args {
    let mut args = Args {
        attempts: 1_000_000,
        apps: 20,
        requests: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match flag.as_str() {
            "--attempts" => args.attempts = value().max(2),
            "--apps" => args.apps = value().max(1) as usize,
            "--requests" => args.requests = value().max(1) as usize,
            _ => {} // cargo bench passes `--bench`
        }
    }
    args
}

fn id(kind: IdKind, at: DateTime<Utc>) -> String {
    kind.generate(at, &mut rand::thread_rng())
}

fn endpoint(app_id: &str, url: &str, at: DateTime<Utc>) -> Endpoint {
    Endpoint {
        id: id(IdKind::Endpoint, at),
        app_id: app_id.to_string(),
        uid: None,
        url: url.to_string(),
        description: String::new(),
        disabled: false,
        event_types: None,
        channels: None,
        throttle_rate: None,
        metadata: BTreeMap::new(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        headers: BTreeMap::new(),
        old_secrets: Vec::new(),
        failing_since: None,
        created_at: at,
        updated_at: at,
        destination: None,
    }
}

fn attempt(d: &NewDelivery, when: DateTime<Utc>, code: i64, status: MessageStatus, number: i64) -> AttemptRecord {
    let ok = (200..300).contains(&code);
    AttemptRecord {
        delivery_id: d.id.clone(),
        attempt: Attempt {
            id: id(IdKind::Attempt, when),
            msg_id: d.msg_id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            url: "https://receiver.example/hooks".to_string(),
            response: if ok { "ok".into() } else { "upstream unavailable".into() },
            response_status_code: code,
            response_duration_ms: 20 + number * 15,
            status: if ok {
                MessageStatus::Success
            } else {
                MessageStatus::Fail
            },
            trigger_type: TriggerType::Scheduled,
            attempt_number: number,
            request_headers: hookd_core::model::SentHeaders::from_pairs([("webhook-id", d.msg_id.as_str())]),
            response_headers: vec![("content-type".to_string(), "text/plain".to_string())],
            created_at: when,
        },
        delivery_status: status,
        next_attempt_at: None,
        scheduled_attempts: number,
        park: false,
        lease_token: 0,
        row: None,
        events: Vec::new(),
    }
}

/// What the pages are timed on.
struct Seeded {
    app: Application,
    ok: Endpoint,
    failing: Endpoint,
    message: String,
}

async fn seed(store: Arc<dyn Store>, args: &Args, now: DateTime<Utc>) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let week = chrono::Duration::days(7);
    let mut apps = Vec::new();
    for i in 0..args.apps {
        let at = now - week - chrono::Duration::minutes(i as i64);
        let app = Application {
            id: id(IdKind::Application, at),
            env: Environment::Live,
            uid: Some(format!("tenant-{i}")),
            name: format!("Tenant {i}"),
            metadata: BTreeMap::new(),
            throttle_rate: None,
            created_at: at,
            updated_at: at,
        };
        store.create_application(&app).await?;
        let ok = endpoint(&app.id, &format!("https://tenant-{i}.example/hooks"), at);
        let failing = endpoint(&app.id, &format!("https://tenant-{i}.example/broken"), at);
        store.create_endpoint(&ok).await?;
        store.create_endpoint(&failing).await?;
        apps.push((app, ok, failing));
    }
    // Two attempts per message; the first application (the big tenant) gets half of them.
    let messages = args.attempts / 2;
    let span = week.num_milliseconds() as u64;
    let plan: Vec<(Message, NewDelivery, bool)> = (0..messages)
        .map(|n| {
            let tenant = if n % 2 == 0 { 0 } else { (n as usize / 2) % apps.len() };
            let (app, ok, failing) = &apps[tenant];
            let fails = n % 5 == 0;
            let at = now - week + chrono::Duration::milliseconds((n * span / messages) as i64);
            let message = Message {
                id: id(IdKind::Message, at),
                app_id: app.id.clone(),
                event_id: Some(format!("evt-{n}")),
                event_type: ["invoice.paid", "user.created", "order.shipped"][n as usize % 3].to_string(),
                channels: None,
                payload: Some(format!(r#"{{"n":{n},"note":"{}"}}"#, "x".repeat(900))),
                created_at: at,
                expires_at: at + chrono::Duration::days(90),
            };
            let delivery = NewDelivery {
                id: id(IdKind::Delivery, at),
                msg_id: message.id.clone(),
                endpoint_id: if fails { failing.id.clone() } else { ok.id.clone() },
                app_id: app.id.clone(),
                due_at: at,
                leased_until: None,
                lease_token: 0,
                lane: None,
            };
            (message, delivery, fails)
        })
        .collect();
    futures::stream::iter(plan.iter())
        .map(|(m, d, _)| {
            let store = store.clone();
            async move { store.create_message(m, std::slice::from_ref(d)).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
    eprintln!("seeded {messages} messages in {:.1} s", started.elapsed().as_secs_f64());
    for second in [false, true] {
        let records: Vec<AttemptRecord> = plan
            .iter()
            .map(|(m, d, fails)| {
                let when = m.created_at + chrono::Duration::seconds(if second { 5 } else { 0 });
                match (second, fails) {
                    (false, _) => attempt(d, when, 500, MessageStatus::Sending, 1),
                    (true, false) => attempt(d, when, 200, MessageStatus::Success, 2),
                    (true, true) => attempt(d, when, 503, MessageStatus::Fail, 2),
                }
            })
            .collect();
        for batch in records.chunks(512) {
            store.record_attempts(batch).await?;
        }
    }
    eprintln!(
        "seeded {} attempts in {:.1} s",
        messages * 2,
        started.elapsed().as_secs_f64()
    );
    // A week of traffic, as the running service would have counted it.
    let last = hookd::traffic::minute_of(now);
    let per_minute = (messages as i64 / (7 * 24 * 60)).max(1);
    let minutes: Vec<TrafficMinute> = (last - 7 * 24 * 60..=last)
        .map(|minute| {
            let mut t = TrafficMinute::new(Environment::Live, minute);
            t.messages = per_minute;
            t.deliveries = per_minute;
            t.attempts = 2 * per_minute;
            t.succeeded = per_minute * 4 / 5;
            t.failed = per_minute / 5;
            t.latency[TrafficMinute::bucket(5_020)] = t.succeeded;
            t
        })
        .collect();
    for chunk in minutes.chunks(500) {
        store.add_traffic(chunk).await?;
    }
    let (app, ok, failing) = apps.swap_remove(0);
    let message = plan
        .iter()
        .rev()
        .find(|(m, _, _)| m.app_id == app.id)
        .map(|(m, _, _)| m.id.clone())
        .unwrap_or_default();
    Ok(Seeded {
        app,
        ok,
        failing,
        message,
    })
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `name=value` pairs a response sets.
fn cookies(r: &reqwest::Response) -> String {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Times `requests` loads of `path` (after two untimed ones); returns (p50, slowest) in ms.
async fn time(base: &str, path: &str, cookie: &str, requests: usize) -> anyhow::Result<(f64, f64)> {
    let client = browser();
    let mut took = Vec::new();
    for i in 0..requests + 2 {
        let start = Instant::now();
        let r = client
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await?;
        let status = r.status();
        let body = r.bytes().await?;
        if status != reqwest::StatusCode::OK {
            anyhow::bail!("{path} answered {status}: {}", String::from_utf8_lossy(&body));
        }
        if i >= 2 {
            took.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    took.sort_by(f64::total_cmp);
    Ok((took[took.len() / 2], took[took.len() - 1]))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let dir = tempfile::tempdir()?;
    let mut config = hookd::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        ..hookd::Config::default()
    };
    config.api.rate_limit_per_sec = 0;
    config.storage.sqlite_synchronous = "normal".into();
    let store = hookd::cli::open_store(&config).await?;
    let now = Utc::now();
    let seeded = seed(store.clone(), &args, now).await?;
    let token = hookd::auth::create_admin_token(store.as_ref(), Environment::Live, "pages bench", now).await?;

    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let clock: Arc<dyn hookd::clock::Clock> = Arc::new(hookd::clock::SystemClock);
    let server = hookd::start(listener, config, store.clone(), clock, shutdown.clone()).await?;

    let signed_in = browser()
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form(&[("token", token.as_str())])
        .send()
        .await?;
    let operator = cookies(&signed_in);
    let link: serde_json::Value = browser()
        .post(format!("{base}/api/v1/auth/app-portal-access/{}", seeded.app.id))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await?
        .json()
        .await?;
    let code = link["url"]
        .as_str()
        .and_then(|u| u.split("code=").nth(1))
        .unwrap_or_default()
        .to_string();
    let opened = browser()
        .post(format!("{base}/portal/open"))
        .header("origin", &base)
        .form(&[("code", code.as_str()), ("theme", "")])
        .send()
        .await?;
    let portal = cookies(&opened);

    let (app, ok, failing, msg) = (&seeded.app.id, &seeded.ok.id, &seeded.failing.id, &seeded.message);
    let day_ago = (now - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M");
    let pages: Vec<(String, &str)> = vec![
        ("/".to_string(), &operator),
        ("/?range=7d".to_string(), &operator),
        ("/apps".to_string(), &operator),
        ("/apps?q=Tenant%201".to_string(), &operator),
        (format!("/apps/{app}"), &operator),
        (format!("/apps/{app}/endpoints/{ok}"), &operator),
        (format!("/apps/{app}/endpoints/{ok}/edit"), &operator),
        (format!("/apps/{app}/endpoints/new"), &operator),
        (format!("/apps/{app}/messages"), &operator),
        (format!("/apps/{app}/messages?event_type=order.shipped"), &operator),
        (format!("/apps/{app}/messages?status=fail"), &operator),
        (format!("/apps/{app}/messages?since={day_ago}"), &operator),
        (format!("/apps/{app}/messages?event_id=evt-10"), &operator),
        (format!("/apps/{app}/messages/{msg}"), &operator),
        (format!("/apps/{app}/endpoints/{failing}/failed"), &operator),
        (
            format!("/apps/{app}/endpoints/{failing}/failed?cause=endpoint&show=all"),
            &operator,
        ),
        ("/catalog".to_string(), &operator),
        ("/tokens".to_string(), &operator),
        (format!("/portal/apps/{app}"), &portal),
        (format!("/portal/apps/{app}/endpoints/{ok}"), &portal),
        (format!("/portal/apps/{app}/messages"), &portal),
        (format!("/portal/apps/{app}/messages/{msg}"), &portal),
        ("/portal/catalog".to_string(), &portal),
    ];
    println!(
        "\n{} attempts, {} messages, {} applications (half the messages in one), SQLite\n",
        args.attempts,
        args.attempts / 2,
        args.apps
    );
    println!("| page | p50 ms | slowest ms |");
    println!("|---|---:|---:|");
    let mut slowest: f64 = 0.0;
    for (path, cookie) in &pages {
        let (p50, max) = time(&base, path, cookie, args.requests).await?;
        slowest = slowest.max(max);
        let shown = path
            .replace(app, "{app}")
            .replace(ok, "{ep}")
            .replace(failing, "{ep}")
            .replace(msg, "{msg}");
        println!("| `{shown}` | {p50:.1} | {max:.1} |");
    }
    println!(
        "\nslowest page load: {slowest:.1} ms over {} loads of each page",
        args.requests
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), server.wait()).await??;
    Ok(())
}
