//! Receiver chaos drill: endpoints that misbehave at the TCP and HTTP level, each beside a
//! healthy neighbour tenant whose latency is measured while the misbehaving one is being
//! delivered to.
//!
//! Everything stays on loopback. hookd may reach only `127.0.0.2/32`, where the chaos server
//! listens; `127.0.0.3` is the refused address (a listener there counts every connection, and
//! must count none). Each case ends as a recorded attempt with a clear error, within the
//! delivery timeout, and the neighbour's p99 is printed beside it (`--nocapture` shows the
//! table that `docs/reliability.md` quotes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{TestApp, WAIT};

/// The per-request timeout the drill configures (seconds).
const TIMEOUT_SECS: u64 = 3;
/// Chaos messages per case, and neighbour messages published meanwhile.
const CHAOS_MESSAGES: usize = 6;
const NEIGHBOUR_MESSAGES: usize = 50;
/// What `/huge` announces: 1 GiB.
const HUGE: u64 = 1 << 30;

/// The misbehaving server on 127.0.0.2 and what it saw.
struct Chaos {
    addr: SocketAddr,
    /// Bytes of the 1 GiB body written before hookd closed the connection.
    huge_written: Arc<AtomicU64>,
    /// `webhook-id` → arrival of the neighbour's deliveries (`/ok`).
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
}

/// Reads one request (head and `content-length` body) and returns its path and headers, names
/// lowercased.
async fn read_request(stream: &mut TcpStream) -> Option<(String, HashMap<String, String>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<HashMap<String, String>>();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buf.len() - (end + 4);
    while body < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body += n;
    }
    Some((path, headers))
}

async fn chaos_server(refused: SocketAddr) -> Chaos {
    let listener = TcpListener::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
    let chaos = Chaos {
        addr: listener.local_addr().unwrap(),
        huge_written: Arc::default(),
        arrivals: Arc::default(),
    };
    let (huge_written, arrivals) = (chaos.huge_written.clone(), chaos.arrivals.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (huge_written, arrivals) = (huge_written.clone(), arrivals.clone());
            tokio::spawn(async move {
                // Keep-alive: a healthy connection may carry several requests.
                while let Some((path, headers)) = read_request(&mut stream).await {
                    match path.as_str() {
                        "/ok" => {
                            if let Some(id) = headers.get("webhook-id") {
                                arrivals.lock().unwrap().insert(id.clone(), Instant::now());
                            }
                            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if stream.write_all(ok).await.is_err() {
                                return;
                            }
                        }
                        "/reset" => {
                            // SO_LINGER 0: closing sends a TCP reset instead of a FIN (and
                            // cannot block, since nothing is left to send).
                            #[allow(deprecated)]
                            let _ = stream.set_linger(Some(Duration::ZERO));
                            return;
                        }
                        "/stall" => {
                            tokio::time::sleep(Duration::from_secs(120)).await;
                            return;
                        }
                        "/trickle" => {
                            let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n";
                            if stream.write_all(head).await.is_err() {
                                return;
                            }
                            for _ in 0..1000 {
                                if stream.write_all(b"x").await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                            return;
                        }
                        "/huge" => {
                            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {HUGE}\r\n\r\n");
                            if stream.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            let chunk = vec![b'z'; 64 * 1024];
                            let mut sent = 0u64;
                            while sent < HUGE {
                                match stream.write(&chunk).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => sent += n as u64,
                                }
                            }
                            huge_written.fetch_max(sent, Ordering::Relaxed);
                            return;
                        }
                        "/invalid" => {
                            let _ = stream.write_all(b"\x00\x01 this is not HTTP\r\n\r\n").await;
                            return;
                        }
                        "/garbage" => {
                            let reply = b"HTTP/1.1 500 Internal Server Error\r\nx-odd: caf\xe9\xff\r\n\
                                          content-length: 9\r\n\r\nok\x00bad\xff\xfe!";
                            let _ = stream.write_all(reply).await;
                            return;
                        }
                        "/nul-header" => {
                            let reply = b"HTTP/1.1 200 OK\r\nx-nul: a\x00b\r\ncontent-length: 2\r\n\r\nok";
                            let _ = stream.write_all(reply).await;
                            return;
                        }
                        "/redirect" => {
                            let reply = format!(
                                "HTTP/1.1 302 Found\r\nlocation: http://{refused}/stolen\r\ncontent-length: 0\r\n\r\n"
                            );
                            let _ = stream.write_all(reply.as_bytes()).await;
                            return;
                        }
                        _ => return,
                    }
                }
            });
        }
    });
    chaos
}

/// A listener on the refused address that counts every connection made to it.
async fn refused_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.3:0").await.expect("bind 127.0.0.3");
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    (addr, hits)
}

/// How a case must end.
struct Case {
    path: &'static str,
    /// What the attempt's status code must be (0: no response).
    status: i64,
    /// Text the recorded response must contain (lowercased comparison).
    says: &'static [&'static str],
    /// Whether the attempt counts as a success.
    success: bool,
}

/// The neighbour's p99 accept-to-delivery while the chaos messages are out.
async fn neighbour_p99(app: &TestApp, chaos: &Chaos) -> Duration {
    let mut accepted = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..NEIGHBOUR_MESSAGES {
        tick.tick().await;
        let started = Instant::now();
        let m = app
            .send_message("neighbour", json!({"eventType": "a.b", "payload": {"i": i}}))
            .await;
        accepted.insert(m["id"].as_str().unwrap().to_string(), started);
    }
    let deadline = Instant::now() + WAIT;
    let mut latencies = loop {
        let got: Vec<Duration> = {
            let arrivals = chaos.arrivals.lock().unwrap();
            (accepted.iter())
                .filter_map(|(id, at)| Some(arrivals.get(id)?.saturating_duration_since(*at)))
                .collect()
        };
        if got.len() == accepted.len() {
            break got;
        }
        if Instant::now() >= deadline {
            let id = accepted.keys().next().unwrap();
            let (_, attempts) = app.get(&format!("/api/v1/app/neighbour/attempt/msg/{id}")).await;
            panic!("the neighbour's deliveries did not all arrive: {attempts}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    latencies.sort();
    latencies[(latencies.len() * 99).div_ceil(100) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misbehaving_receivers_end_as_clear_failed_attempts_and_never_slow_a_neighbour() {
    let (refused, refused_hits) = refused_listener().await;
    let chaos = chaos_server(refused).await;
    let app = TestApp::spawn_with(|c| {
        c.delivery.allowed_subnets = vec!["127.0.0.2/32".into()];
        c.delivery.timeout_secs = TIMEOUT_SECS;
        c.delivery.circuit_breaker_threshold = 0;
    })
    .await;
    app.create_app("neighbour").await;
    let url = |path: &str| format!("http://{}{path}", chaos.addr);
    let (status, _) = app
        .post("/api/v1/app/neighbour/endpoint", json!({"url": url("/ok")}))
        .await;
    assert_eq!(status, 201);
    let baseline = neighbour_p99(&app, &chaos).await;
    println!("| case | attempts | status | recorded | longest attempt | neighbour p99 |");
    println!("|---|---|---|---|---|---|");
    println!("| (none: baseline) | | | | | {:.1} ms |", baseline.as_secs_f64() * 1e3);

    let cases = [
        Case {
            path: "/reset",
            status: 0,
            says: &["connection"],
            success: false,
        },
        Case {
            path: "/stall",
            status: 0,
            says: &["timed out"],
            success: false,
        },
        // The consumer answered 200, so it has the message; the body then stalled, and the
        // record says so.
        Case {
            path: "/trickle",
            status: 200,
            says: &["body was cut off", "timed out"],
            success: true,
        },
        Case {
            path: "/huge",
            status: 200,
            says: &["zzzz"],
            success: true,
        },
        Case {
            path: "/invalid",
            status: 0,
            says: &["invalid"],
            success: false,
        },
        Case {
            path: "/garbage",
            status: 500,
            says: &["ok\\x00bad\\xff\\xfe!"],
            success: false,
        },
        Case {
            path: "/nul-header",
            status: 0,
            says: &["invalid"],
            success: false,
        },
        Case {
            path: "/redirect",
            status: 302,
            says: &["redirects are not followed", "127.0.0.3"],
            success: false,
        },
    ];
    for case in &cases {
        let uid = format!("chaos{}", case.path.replace(['/', '-'], "_"));
        app.create_app(&uid).await;
        let (status, _) = app
            .post(&format!("/api/v1/app/{uid}/endpoint"), json!({"url": url(case.path)}))
            .await;
        assert_eq!(status, 201);
        let mut ids = Vec::new();
        for i in 0..CHAOS_MESSAGES {
            let m = app
                .send_message(&uid, json!({"eventType": "a.b", "payload": {"i": i}}))
                .await;
            ids.push(m["id"].as_str().unwrap().to_string());
        }
        let p99 = neighbour_p99(&app, &chaos).await;
        // Stalls and trickles take the whole timeout: wait with room for it.
        let deadline = Instant::now() + WAIT + Duration::from_secs(2 * TIMEOUT_SECS);
        let mut attempts = Vec::new();
        for id in &ids {
            let attempt = loop {
                let (_, list) = app.get(&format!("/api/v1/app/{uid}/attempt/msg/{id}")).await;
                if list["data"][0].is_object() {
                    break list["data"][0].clone();
                }
                assert!(
                    Instant::now() < deadline,
                    "{}: no attempt recorded for {id} in time",
                    case.path
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            attempts.push(attempt);
        }
        let mut longest = 0;
        let mut shown = String::new();
        for attempt in &attempts {
            let response = attempt["response"].as_str().unwrap().to_string();
            assert_eq!(attempt["responseStatusCode"], case.status, "{}: {attempt}", case.path);
            let lower = response.to_lowercase();
            for says in case.says {
                assert!(lower.contains(says), "{}: {response:?} lacks {says:?}", case.path);
            }
            if case.status == 0 {
                assert!(
                    !response.trim().is_empty(),
                    "{}: a transport failure names its cause",
                    case.path
                );
            }
            let expected = if case.success { "success" } else { "fail" };
            assert_eq!(attempt["statusText"], expected, "{}: {attempt}", case.path);
            let took = attempt["responseDurationMs"].as_u64().unwrap();
            assert!(
                took <= TIMEOUT_SECS * 1000 + 500,
                "{}: the attempt took {took} ms, past the {TIMEOUT_SECS} s timeout",
                case.path
            );
            longest = longest.max(took);
            // The end of the text names the cause (an error's source chain ends there).
            let chars: Vec<char> = response.chars().collect();
            shown = chars[chars.len().saturating_sub(70)..]
                .iter()
                .collect::<String>()
                .replace('|', "\\|");
        }
        println!(
            "| `{}` | {} | {} | {} | {longest} ms | {:.1} ms |",
            case.path,
            ids.len(),
            case.status,
            shown.replace('\n', " "),
            p99.as_secs_f64() * 1e3
        );
        // A neighbour is not held up behind the case: its p99 stays far below the timeout
        // the misbehaving endpoint spends on each request.
        assert!(
            p99 < Duration::from_secs(1),
            "{}: the neighbour's p99 rose to {p99:?} (baseline {baseline:?})",
            case.path
        );
    }
    // hookd stopped reading the 1 GiB body at its cap: the server could not push more than
    // the cap plus the socket buffers before the connection closed.
    let written = chaos.huge_written.load(Ordering::Relaxed);
    println!(
        "1 GiB body: {} KiB written before hookd closed the connection",
        written / 1024
    );
    assert!(
        written < 64 << 20,
        "hookd kept reading the 1 GiB body: {written} bytes written"
    );
    // The redirect was recorded, never followed to the refused address.
    assert_eq!(
        refused_hits.load(Ordering::Relaxed),
        0,
        "a connection reached 127.0.0.3"
    );
}
