//! Egress control: deliveries through a configured proxy, or from a configured source address,
//! for consumers that allow-list the addresses webhooks come from. Loopback only.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::helpers::TestApp;

/// Creates application `uid` with one endpoint at `url` (asserting 201 for both).
async fn app_with_endpoint(app: &TestApp, uid: &str, url: &str) {
    app.create_app(uid).await;
    let (status, body) = app
        .post(&format!("/api/v1/app/{uid}/endpoint"), json!({"url": url}))
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
}

/// Publishes one message to application `uid`; returns its id.
async fn publish(app: &TestApp, uid: &str) -> String {
    let msg = app.send_message(uid, json!({"eventType": "a.b", "payload": {}})).await;
    msg["id"].as_str().unwrap().to_string()
}

/// The next value a test server reported, within 10 s.
async fn next_seen<T>(seen: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the server reported within 10 s")
        .expect("the server is still running")
}

/// Reads one request's head (through its blank line) from `conn`; `None` when the connection
/// ends first.
async fn read_head(conn: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// A TCP server on 127.0.0.1 that runs `handle` on each connection it accepts, with the peer's
/// address and a sender for what the test should see; returns its address and what was sent.
async fn tcp_server<T, F, Fut>(handle: F) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<T>)
where
    T: Send + 'static,
    F: Fn(tokio::net::TcpStream, std::net::SocketAddr, mpsc::UnboundedSender<T>) -> Fut + Send + 'static,
    Fut: std::future::Future + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((conn, peer)) = listener.accept().await {
            let connection = handle(conn, peer, tx.clone());
            tokio::spawn(async move {
                connection.await;
            });
        }
    });
    (addr, rx)
}

/// A one-line HTTP server on 127.0.0.1 that reports each request's peer address and request
/// line, and answers 200.
async fn raw_server() -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<(std::net::SocketAddr, String)>,
) {
    tcp_server(|mut conn, peer, tx| async move {
        let Some(head) = read_head(&mut conn).await else {
            return;
        };
        let _ = tx.send((peer, head.lines().next().unwrap_or_default().to_string()));
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
    })
    .await
}

#[tokio::test]
async fn deliveries_go_through_the_configured_proxy() {
    let (proxy, mut seen) = raw_server().await;
    let app = TestApp::spawn_with(move |c| c.delivery.proxy = format!("http://{proxy}")).await;
    // Nothing listens on port 9: only the proxy can have answered.
    app_with_endpoint(&app, "ws_px", "http://127.0.0.1:9/hooks").await;
    let msg = publish(&app, "ws_px").await;
    let (_, line) = next_seen(&mut seen).await;
    assert_eq!(
        line, "POST http://127.0.0.1:9/hooks HTTP/1.1",
        "the proxy got the request for the target"
    );
    app.wait_delivery_status("ws_px", &msg, "success").await;
}

#[tokio::test]
async fn the_address_policy_still_applies_through_a_proxy() {
    let (proxy, mut seen) = raw_server().await;
    let app = TestApp::spawn_with(move |c| {
        c.delivery.proxy = format!("http://{proxy}");
        c.delivery.allowed_subnets = vec!["127.0.0.2/32".into()];
    })
    .await;
    app_with_endpoint(&app, "ws_pol", "http://localhost:9/hooks").await;
    let msg = publish(&app, "ws_pol").await;
    app.wait_recorded(1).await;
    let (_, attempts) = app.get(&format!("/api/v1/app/ws_pol/attempt/msg/{msg}")).await;
    let response = attempts["data"][0]["response"].as_str().unwrap();
    assert!(response.contains("refused"), "{response}");
    assert!(seen.try_recv().is_err(), "nothing reached the proxy");
}

#[tokio::test]
async fn deliveries_leave_from_the_configured_source_address() {
    let (server, mut seen) = raw_server().await;
    let app = TestApp::spawn_with(|c| c.delivery.source_address = "127.0.0.2".into()).await;
    app_with_endpoint(&app, "ws_src", &format!("http://{server}/hooks")).await;
    publish(&app, "ws_src").await;
    let (peer, line) = next_seen(&mut seen).await;
    assert_eq!(line, "POST /hooks HTTP/1.1");
    assert_eq!(peer.ip().to_string(), "127.0.0.2");
}

#[test]
fn bad_egress_settings_are_refused_at_start() {
    let mut c = hookd::Config::default();
    c.delivery.proxy = "ftp://proxy".into();
    assert!(c.validate().is_err());
    c.delivery.proxy = "socks5://127.0.0.1:1080".into();
    assert!(c.validate().is_ok());
    c.delivery.source_address = "not-an-ip".into();
    assert!(c.validate().is_err());
}

#[tokio::test]
async fn https_targets_are_tunnelled_with_connect() {
    let (proxy, mut seen) = raw_server().await;
    let app = TestApp::spawn_with(move |c| c.delivery.proxy = format!("http://{proxy}")).await;
    app_with_endpoint(&app, "ws_tun", "https://127.0.0.1:9/hooks").await;
    publish(&app, "ws_tun").await;
    let (_, line) = next_seen(&mut seen).await;
    assert_eq!(
        line, "CONNECT 127.0.0.1:9 HTTP/1.1",
        "the target is reached through a CONNECT tunnel"
    );
}

/// A SOCKS5 proxy (no authentication) that reports the target it was asked for and then answers
/// the tunnelled HTTP request itself with 200.
async fn socks5_server() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<String>) {
    tcp_server(|mut conn, _, tx| async move {
        let mut greeting = [0u8; 2];
        conn.read_exact(&mut greeting).await.ok()?;
        let mut methods = vec![0u8; greeting[1] as usize];
        conn.read_exact(&mut methods).await.ok()?;
        conn.write_all(&[5, 0]).await.ok()?;
        let mut head = [0u8; 4];
        conn.read_exact(&mut head).await.ok()?;
        let target = match head[3] {
            1 => {
                let mut ip = [0u8; 4];
                conn.read_exact(&mut ip).await.ok()?;
                std::net::Ipv4Addr::from(ip).to_string()
            }
            3 => {
                let mut len = [0u8; 1];
                conn.read_exact(&mut len).await.ok()?;
                let mut name = vec![0u8; len[0] as usize];
                conn.read_exact(&mut name).await.ok()?;
                String::from_utf8_lossy(&name).to_string()
            }
            _ => return None,
        };
        let mut port = [0u8; 2];
        conn.read_exact(&mut port).await.ok()?;
        let _ = tx.send(format!("{target}:{}", u16::from_be_bytes(port)));
        conn.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await.ok()?;
        let mut buf = vec![0u8; 16 * 1024];
        let _ = conn.read(&mut buf).await;
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await
            .ok()
    })
    .await
}

#[tokio::test]
async fn deliveries_go_through_a_socks5_proxy() {
    let (proxy, mut targets) = socks5_server().await;
    let app = TestApp::spawn_with(move |c| c.delivery.proxy = format!("socks5://{proxy}")).await;
    app_with_endpoint(&app, "ws_socks", "http://127.0.0.1:9/hooks").await;
    let msg = publish(&app, "ws_socks").await;
    assert_eq!(next_seen(&mut targets).await, "127.0.0.1:9");
    app.wait_delivery_status("ws_socks", &msg, "success").await;
}

/// A receiver on 127.0.0.1 that answers 200 after `hold`, and counts the connections it was
/// sent over (distinct client ports), the requests, and the most requests open at once.
#[derive(Default)]
struct ConnectionCount {
    peers: std::sync::Mutex<std::collections::HashSet<std::net::SocketAddr>>,
    requests: std::sync::atomic::AtomicUsize,
    open: std::sync::atomic::AtomicUsize,
    most_open: std::sync::atomic::AtomicUsize,
}

async fn counting_server(hold: Duration) -> (std::net::SocketAddr, std::sync::Arc<ConnectionCount>) {
    use axum::extract::{ConnectInfo, State};
    use std::sync::atomic::Ordering::SeqCst;
    let count = std::sync::Arc::new(ConnectionCount::default());
    let handler = move |State(c): State<std::sync::Arc<ConnectionCount>>,
                        ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
        c.peers.lock().unwrap().insert(peer);
        let open = c.open.fetch_add(1, SeqCst) + 1;
        c.most_open.fetch_max(open, SeqCst);
        tokio::time::sleep(hold).await;
        c.open.fetch_sub(1, SeqCst);
        c.requests.fetch_add(1, SeqCst);
        "ok"
    };
    let app = axum::Router::new()
        .route("/hooks/{n}", axum::routing::post(handler))
        .with_state(count.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    (addr, count)
}

/// Connections to a busy host are kept between bursts, as many as can be in flight: a host
/// that had more sends open than the pool kept would have the extra connections closed after
/// each burst and opened again for the next (one send in twelve, at fan-out 10 to one host).
///
/// Each burst is exactly as many sends as can be in flight, held open together by the
/// receiver, so no send of a burst can start after another has ended: every connection a
/// later burst opens is one the pool did not keep. (With more sends than slots, a send could
/// start in the instant between another's end and its connection's return to the pool, and
/// open a connection that says nothing about the pool.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_a_busy_host_are_kept_between_bursts() {
    use std::sync::atomic::Ordering::SeqCst;
    let in_flight = 96;
    let (server, count) = counting_server(Duration::from_millis(500)).await;
    let app = TestApp::spawn_with(move |c| {
        c.delivery.max_concurrency = in_flight;
        c.delivery.app_concurrency = in_flight;
        c.delivery.endpoint_concurrency = in_flight / 2;
    })
    .await;
    app.create_app("ws_pool").await;
    for n in 0..2 {
        let (status, _) = app
            .post(
                "/api/v1/app/ws_pool/endpoint",
                json!({"url": format!("http://{server}/hooks/{n}")}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED);
    }
    let mut after_first = 0;
    for burst in 1..=3 {
        // Two endpoints, so half as many messages as sends.
        let sends = (0..in_flight / 2).map(|_| app.send_message("ws_pool", json!({"eventType": "a.b", "payload": {}})));
        futures::future::join_all(sends).await;
        let want = burst * in_flight;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while count.requests.load(SeqCst) < want {
            assert!(
                std::time::Instant::now() < deadline,
                "burst {burst}: {} of {want} delivered",
                count.requests.load(SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The receiver counts a request as it answers; hookd has read the answer, and its
        // connection is idle again, once the attempt is recorded. Without this wait the next
        // burst could start while the last answers are on their way, and open new connections
        // that a kept pool would not.
        app.wait_recorded(want as u64).await;
        if burst == 1 {
            after_first = count.peers.lock().unwrap().len();
        }
    }
    let most_open = count.most_open.load(SeqCst);
    assert!(
        most_open > 64,
        "the bursts must keep more than 64 sends open at once to test anything: {most_open}"
    );
    // The later bursts reuse the first one's connections; a pool of 64 would have reopened 32
    // per burst. The small allowance is for a send of the first burst that started late, after
    // another had ended, and reused its connection: the first burst then opened fewer than it
    // had in flight, and a later one may open the difference.
    let opened_later = count.peers.lock().unwrap().len() - after_first;
    assert!(
        opened_later <= in_flight / 10,
        "{opened_later} connections opened after the first burst ({after_first} in it): closed after a burst and opened again"
    );
}

#[tokio::test]
async fn credentials_in_an_endpoint_url_are_sent_as_basic_authentication() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    let receiver = app.receiver.clone();
    app.create_app("ws_basic").await;
    // The password holds an encoded `@`; the user name is plain.
    let with_credentials = receiver.url("/ok").replace("http://", "http://alice:s%40cret@");
    app.post("/api/v1/app/ws_basic/endpoint", json!({"url": with_credentials}))
        .await;
    // A custom `Authorization` header is the endpoint's own choice and wins over the URL's.
    let with_header = receiver.url("/status/200").replace("http://", "http://bob:pw@");
    app.post(
        "/api/v1/app/ws_basic/endpoint",
        json!({"url": with_header, "headers": {"Authorization": "Bearer own"}}),
    )
    .await;
    app.send_message("ws_basic", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let got = receiver.wait_for(2, |_| true).await;
    let basic = got.iter().find(|r| r.path == "/ok").expect("the /ok endpoint got it");
    let expected = base64::engine::general_purpose::STANDARD.encode("alice:s@cret");
    assert_eq!(
        basic.header("authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    let host = receiver.url("").replace("http://", "");
    assert_eq!(basic.header("host"), Some(host.as_str()), "no credentials in Host");
    assert!(basic.header("user-agent").unwrap().starts_with("hookd/"));
    assert_eq!(basic.header("accept"), Some("*/*"));
    let own = got.iter().find(|r| r.path == "/status/200").unwrap();
    assert_eq!(own.header("authorization"), Some("Bearer own"));
}

#[tokio::test]
async fn https_endpoints_are_spoken_to_over_tls_and_an_unknown_certificate_is_a_failed_attempt() {
    // A TCP server that reports the first bytes it reads, then closes: a TLS client opens with
    // a handshake record (0x16) carrying the server name.
    let (server, mut first_bytes) = tcp_server(|mut conn, _, tx| async move {
        let mut buf = vec![0u8; 4096];
        let n = conn.read(&mut buf).await.unwrap_or(0);
        let _ = tx.send(buf[..n].to_vec());
    })
    .await;
    let port = server.port();
    let app = TestApp::spawn().await;
    app_with_endpoint(&app, "ws_tls", &format!("https://localhost:{port}/hooks")).await;
    let id = publish(&app, "ws_tls").await;
    let hello = next_seen(&mut first_bytes).await;
    assert_eq!(hello.first(), Some(&0x16), "a TLS handshake, not plain HTTP: {hello:?}");
    assert!(
        hello.windows(b"localhost".len()).any(|w| w == b"localhost"),
        "the server name is sent"
    );
    app.wait_recorded(1).await;
    let (_, attempts) = app.get(&format!("/api/v1/app/ws_tls/attempt/msg/{id}")).await;
    assert_eq!(attempts["data"][0]["responseStatusCode"], 0);
    assert_eq!(attempts["data"][0]["status"], 2, "a failed attempt");
}

/// A receiver that answers the first request on each connection (keeping it alive), then
/// closes the connection on reading the next one without answering it: a keep-alive close
/// racing the send, made certain. It reports each request's `webhook-id`.
async fn closes_kept_connections() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<String>) {
    tcp_server(|mut conn, _, tx| async move {
        for answered in [true, false] {
            let Some(head) = read_head(&mut conn).await else {
                return;
            };
            // Lowercased, header names and values alike.
            let head = head.to_lowercase();
            let id = head
                .lines()
                .find_map(|l| l.strip_prefix("webhook-id: "))
                .unwrap_or_default()
                .trim()
                .to_string();
            let _ = tx.send(id);
            if !answered {
                return; // closed without an answer
            }
            // The body is small enough to have come with the head.
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        }
    })
    .await
}

#[tokio::test]
async fn a_send_whose_kept_connection_the_receiver_closed_goes_again_on_a_new_one() {
    let (server, mut seen) = closes_kept_connections().await;
    let app = TestApp::spawn().await;
    app_with_endpoint(&app, "ws_stale", &format!("http://{server}/hooks")).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = publish(&app, "ws_stale").await;
        app.wait_delivery_status("ws_stale", &id, "success").await;
        ids.push(id);
    }
    let mut received = Vec::new();
    while let Ok(Some(id)) = tokio::time::timeout(Duration::from_millis(200), seen.recv()).await {
        received.push(id);
    }
    // The second message went out on the kept connection, was cut off unanswered, and went
    // again on a new one, where it was answered.
    let lower: Vec<String> = ids.iter().map(|id| id.to_lowercase()).collect();
    assert_eq!(received, [lower[0].clone(), lower[1].clone(), lower[1].clone()]);
    let (_, attempts) = app.get(&format!("/api/v1/app/ws_stale/attempt/msg/{}", ids[1])).await;
    assert_eq!(attempts["data"].as_array().unwrap().len(), 1, "one attempt recorded");
    assert_eq!(attempts["data"][0]["responseStatusCode"], 200);
}

#[tokio::test]
async fn a_send_tried_again_on_a_new_connection_keeps_the_attempts_one_deadline() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // The first connection answers its first request and holds the next for 3 s before
    // closing it unanswered; every later connection holds its request past any deadline.
    let opened = Arc::new(AtomicUsize::new(0));
    let (server, mut seen) = tcp_server(move |mut conn, _, tx| {
        let first = opened.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let answers: &[bool] = if first { &[true, false] } else { &[false] };
            for &answer in answers {
                if read_head(&mut conn).await.is_none() {
                    return;
                }
                let _ = tx.send(first);
                if answer {
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                } else if first {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                } else {
                    tokio::time::sleep(Duration::from_secs(15)).await;
                }
            }
        }
    })
    .await;
    let app = TestApp::spawn_with(|c| c.delivery.timeout_secs = 4).await;
    app_with_endpoint(&app, "ws_late_reset", &format!("http://{server}/hooks")).await;
    let answered = publish(&app, "ws_late_reset").await;
    app.wait_delivery_status("ws_late_reset", &answered, "success").await;
    let sent_at = std::time::Instant::now();
    let held = publish(&app, "ws_late_reset").await;
    app.wait_recorded(2).await;
    let recorded_after = sent_at.elapsed();
    // Sent on the kept connection, then again on a new one.
    assert_eq!(
        [
            next_seen(&mut seen).await,
            next_seen(&mut seen).await,
            next_seen(&mut seen).await
        ],
        [true, true, false]
    );
    let (_, attempts) = app.get(&format!("/api/v1/app/ws_late_reset/attempt/msg/{held}")).await;
    let attempt = &attempts["data"][0];
    assert_eq!(attempt["responseStatusCode"], 0, "{attempt}");
    // One 4 s deadline covers both sends: the second send gets the 1 s left, not 4 s more
    // (which would end the attempt at 7 s), and the recorded duration is the whole attempt's.
    assert!(
        recorded_after < Duration::from_millis(5_500),
        "the attempt ended {recorded_after:?} after the publish, against a 4 s deadline"
    );
    let took = attempt["responseDurationMs"].as_i64().unwrap();
    assert!(
        (3_900..5_500).contains(&took),
        "the attempt is recorded as taking {took} ms against a 4,000 ms deadline"
    );
}
