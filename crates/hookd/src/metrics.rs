//! Prometheus counters and histograms, recorded as things happen through the `metrics` facade
//! (one recorder per process). `/metrics` itself, with the gauges read at scrape time, is
//! served by [`crate::api::metrics`]. Labels never carry
//! ids: routes are templates (`/api/v1/app/{app_id}/msg`), statuses are classes (`2xx`).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use hookd_core::retry::Outcome;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets, in seconds, for request and attempt durations.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program's); then the facade
        // reports there and this handle renders only the gauges below.
        let _ = metrics::set_global_recorder(recorder);
        // Histogram samples wait in a buffer until upkeep folds them into their buckets; a
        // scrape does that too, but a hookd nobody scrapes would otherwise keep every sample
        // (about 0.4 MiB a minute at a few hundred deliveries a second).
        let upkeep = handle.clone();
        let started = std::thread::Builder::new().name(UPKEEP_THREAD.into()).spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the metrics upkeep thread; histograms grow until /metrics is scraped");
        }
        handle
    })
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// The upkeep thread's name.
const UPKEEP_THREAD: &str = "hookd-metrics";

/// Middleware (after routing): counts API requests by route template, method and status class,
/// and records their duration.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let handles = route_handles(route, req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    handles.finished(response.status(), started.elapsed());
    response
}

/// The methods counted under their own name; any other is counted as `OTHER`, so a client
/// cannot add label values (and series) at will.
const METHODS: [axum::http::Method; 7] = [
    axum::http::Method::GET,
    axum::http::Method::POST,
    axum::http::Method::PUT,
    axum::http::Method::PATCH,
    axum::http::Method::DELETE,
    axum::http::Method::HEAD,
    axum::http::Method::OPTIONS,
];

/// One route and method's request counters (one per status class, each registered on its
/// first use so that classes never answered do not show) and duration histogram.
struct RouteHandles {
    route: String,
    method: &'static str,
    by_class: [OnceLock<metrics::Counter>; 5],
    duration: metrics::Histogram,
}

impl RouteHandles {
    fn finished(&self, status: axum::http::StatusCode, took: std::time::Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5);
        self.by_class[class - 1]
            .get_or_init(|| {
                metrics::counter!("hookd_api_requests_total", "route" => self.route.clone(),
                    "method" => self.method, "status" => format!("{class}xx"))
            })
            .increment(1);
        self.duration.record(took.as_secs_f64());
    }
}

/// Each route template's handles, by method (`METHODS`, then `OTHER`), looked up on every
/// request: registering the labels anew each time cost 1.4 % of hookd's CPU in the closed loop.
/// The routes are the router's templates and `unmatched`, so the table is as small as the API;
/// its entries live as long as the process.
type RouteTable = std::sync::RwLock<std::collections::HashMap<String, &'static ByMethod>>;

/// A route's handles for each of `METHODS`, then for `OTHER`.
type ByMethod = [OnceLock<RouteHandles>; METHODS.len() + 1];

fn route_handles(route: &str, method: &axum::http::Method) -> &'static RouteHandles {
    static ROUTES: OnceLock<RouteTable> = OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        handle();
        RouteTable::default()
    });
    let found = routes.read().unwrap_or_else(|e| e.into_inner()).get(route).copied();
    let by_method = found.unwrap_or_else(|| {
        let mut table = routes.write().unwrap_or_else(|e| e.into_inner());
        *table
            .entry(route.to_string())
            .or_insert_with(|| Box::leak(Box::default()))
    });
    let m = METHODS.iter().position(|m| m == method).unwrap_or(METHODS.len());
    by_method[m].get_or_init(|| {
        let method = METHODS.get(m).map_or("OTHER", axum::http::Method::as_str);
        RouteHandles {
            route: route.to_string(),
            method,
            by_class: Default::default(),
            duration: metrics::histogram!("hookd_api_request_duration_seconds",
                "route" => route.to_string(), "method" => method),
        }
    })
}

/// A published message.
pub fn message_ingested(env: hookd_core::model::Environment) {
    use hookd_core::model::Environment;
    static INGESTED: OnceLock<[metrics::Counter; 2]> = OnceLock::new();
    let by_env = INGESTED.get_or_init(|| {
        handle();
        [Environment::Live, Environment::Test]
            .map(|env| metrics::counter!("hookd_messages_ingested_total", "environment" => env.as_str()))
    });
    let i = match env {
        Environment::Live => 0,
        Environment::Test => 1,
    };
    by_env[i].increment(1);
}

/// Messages handed out by polls of polling endpoints.
pub fn messages_polled(env: hookd_core::model::Environment, count: usize) {
    metrics::counter!("hookd_messages_polled_total", "environment" => env.as_str()).increment(count as u64);
}

/// One attempt's outcome class and duration.
pub fn attempt(outcome: &Outcome, status_code: u16, seconds: f64) {
    let class = match outcome {
        _ if (200..300).contains(&status_code) => AttemptClass::Success,
        Outcome::Timeout => AttemptClass::Timeout,
        Outcome::Transport => AttemptClass::ConnectionError,
        _ if (300..400).contains(&status_code) => AttemptClass::Http3xx,
        _ if (400..500).contains(&status_code) => AttemptClass::Http4xx,
        _ => AttemptClass::Http5xx,
    };
    let handles = delivery_handles();
    handles.attempts[class as usize].increment(1);
    handles.attempt_duration.record(seconds);
}

/// `count` deliveries reached the engine for sending by `path`.
pub fn deliveries_dispatched(path: Dispatched, count: usize) {
    delivery_handles().dispatched[path as usize].increment(count as u64);
}

/// How deliveries reach the engine, the `path` label of `hookd_deliveries_dispatched_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatched {
    /// Handed over by the publish that created them, leased already: no claim, no read.
    HandedOver,
    /// Claimed from the database by the poller: due retries and resends, and deliveries that
    /// found no room in memory when they were published (a backlog).
    Claimed,
    /// Sent in order by a FIFO endpoint's lane, a batch at a time (counted per delivery).
    Lane,
}

impl Dispatched {
    /// Every path, in the order of their handles (`path as usize` indexes this).
    const ALL: [Dispatched; 3] = [Dispatched::HandedOver, Dispatched::Claimed, Dispatched::Lane];

    fn label(self) -> &'static str {
        match self {
            Dispatched::HandedOver => "handed_over",
            Dispatched::Claimed => "claimed",
            Dispatched::Lane => "lane",
        }
    }
}

/// A delivery reached a final state.
pub fn delivery_finished(status: Finished) {
    delivery_handles().finished[status as usize].increment(1);
}

/// The final states a delivery is counted in, the `status` label of
/// `hookd_deliveries_finished_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    Success,
    Fail,
}

impl Finished {
    /// Both states, in the order of their handles (`status as usize` indexes this).
    const ALL: [Finished; 2] = [Finished::Success, Finished::Fail];

    fn label(self) -> &'static str {
        match self {
            Finished::Success => "success",
            Finished::Fail => "fail",
        }
    }
}

/// Attempt outcome classes, the `outcome` label of `hookd_attempts_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AttemptClass {
    Success,
    Timeout,
    ConnectionError,
    Http3xx,
    Http4xx,
    Http5xx,
}

impl AttemptClass {
    /// Every class, in the order of their handles (`class as usize` indexes this).
    const ALL: [AttemptClass; 6] = [
        AttemptClass::Success,
        AttemptClass::Timeout,
        AttemptClass::ConnectionError,
        AttemptClass::Http3xx,
        AttemptClass::Http4xx,
        AttemptClass::Http5xx,
    ];

    fn label(self) -> &'static str {
        match self {
            AttemptClass::Success => "success",
            AttemptClass::Timeout => "timeout",
            AttemptClass::ConnectionError => "connection_error",
            AttemptClass::Http3xx => "http_3xx",
            AttemptClass::Http4xx => "http_4xx",
            AttemptClass::Http5xx => "http_5xx",
        }
    }
}

/// The delivery engine's series, registered once: every attempt records through them instead
/// of building its key and finding it in the registry again.
struct DeliveryHandles {
    attempts: [metrics::Counter; 6],
    attempt_duration: metrics::Histogram,
    finished: [metrics::Counter; 2],
    dispatched: [metrics::Counter; 3],
}

fn delivery_handles() -> &'static DeliveryHandles {
    static HANDLES: OnceLock<DeliveryHandles> = OnceLock::new();
    HANDLES.get_or_init(|| {
        // Registered with the process's recorder, so it must be installed first.
        handle();
        DeliveryHandles {
            attempts: AttemptClass::ALL
                .map(|class| metrics::counter!("hookd_attempts_total", "outcome" => class.label())),
            attempt_duration: metrics::histogram!("hookd_attempt_duration_seconds"),
            finished: Finished::ALL
                .map(|status| metrics::counter!("hookd_deliveries_finished_total", "status" => status.label())),
            dispatched: Dispatched::ALL
                .map(|path| metrics::counter!("hookd_deliveries_dispatched_total", "path" => path.label())),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each class records through its own handle: the handles are indexed by the class (and
    /// the finished-delivery handles by their status).
    #[test]
    fn every_attempt_class_is_counted_under_its_own_label() {
        for (i, class) in AttemptClass::ALL.into_iter().enumerate() {
            assert_eq!(class as usize, i, "{class:?}");
        }
        for (i, status) in Finished::ALL.into_iter().enumerate() {
            assert_eq!(status as usize, i, "{status:?}");
        }
        for (i, path) in Dispatched::ALL.into_iter().enumerate() {
            assert_eq!(path as usize, i, "{path:?}");
        }
        let count = |label: &str| -> f64 {
            let text = handle().render();
            let series = format!("hookd_attempts_total{{outcome=\"{label}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .map_or(0.0, |v| v.trim().parse().unwrap())
        };
        let cases = [
            (Outcome::Success, 204, "success"),
            (Outcome::Timeout, 0, "timeout"),
            (Outcome::Transport, 0, "connection_error"),
            (Outcome::from_status(302, None), 302, "http_3xx"),
            (Outcome::from_status(429, None), 429, "http_4xx"),
            (Outcome::from_status(503, None), 503, "http_5xx"),
        ];
        for (outcome, code, label) in cases {
            let before = count(label);
            attempt(&outcome, code, 0.001);
            assert!(count(label) > before, "{label}");
        }
    }

    /// A route's requests count under its template, their method and their status class,
    /// through handles kept per route and method; a method outside the standard ones is
    /// counted as `OTHER`, so clients cannot mint label values.
    #[test]
    fn requests_count_by_route_method_and_class_and_odd_methods_share_one_label() {
        use axum::http::{Method, StatusCode};
        let route = "/test/{route_handles}";
        let count = |method: &str, class: &str| -> f64 {
            let series =
                format!("hookd_api_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{class}\"}} ");
            handle()
                .render()
                .lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .map_or(0.0, |v| v.trim().parse().unwrap())
        };
        let took = std::time::Duration::from_millis(1);
        route_handles(route, &Method::POST).finished(StatusCode::ACCEPTED, took);
        route_handles(route, &Method::POST).finished(StatusCode::ACCEPTED, took);
        route_handles(route, &Method::POST).finished(StatusCode::NOT_FOUND, took);
        route_handles(route, &Method::GET).finished(StatusCode::OK, took);
        assert_eq!(count("POST", "2xx"), 2.0);
        assert_eq!(count("POST", "4xx"), 1.0);
        assert_eq!(count("GET", "2xx"), 1.0);
        assert_eq!(count("GET", "4xx"), 0.0, "a class never answered has no series");
        assert!(std::ptr::eq(
            route_handles(route, &Method::POST),
            route_handles(route, &Method::POST)
        ));

        let odd = |name: &str| Method::from_bytes(name.as_bytes()).unwrap();
        route_handles(route, &odd("FROB")).finished(StatusCode::METHOD_NOT_ALLOWED, took);
        route_handles(route, &odd("TWIDDLE")).finished(StatusCode::METHOD_NOT_ALLOWED, took);
        assert_eq!(count("OTHER", "4xx"), 2.0);
        assert!(std::ptr::eq(
            route_handles(route, &odd("FROB")),
            route_handles(route, &odd("TWIDDLE"))
        ));
        assert!(!handle().render().contains("FROB"));
    }

    /// Without a scrape, histogram samples are still folded away: the upkeep thread runs.
    #[test]
    fn the_recorder_keeps_its_histograms_folded_without_a_scrape() {
        handle();
        // A new thread names itself once it runs: look for a while.
        let names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .collect()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !names().iter().any(|n| n == UPKEEP_THREAD) {
            assert!(std::time::Instant::now() < deadline, "threads: {:?}", names());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        metrics::histogram!("hookd_attempt_duration_seconds").record(0.002);
        let text = handle().render();
        assert!(text.contains("hookd_attempt_duration_seconds_bucket"), "{text}");
    }
}
