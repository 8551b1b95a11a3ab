//! Egress control: deliveries through a configured proxy, or from a configured source address,
//! for consumers that allow-list the addresses webhooks come from. Loopback only.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::helpers::TestApp;

/// A one-line HTTP server on 127.0.0.1 that reports each request's peer address and request
/// line, and answers 200.
async fn raw_server() -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<(std::net::SocketAddr, String)>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, peer)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&got).to_string();
                let _ = tx.send((peer, head.lines().next().unwrap_or_default().to_string()));
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn deliveries_go_through_the_configured_proxy() {
    let (proxy, mut seen) = raw_server().await;
    let app = TestApp::spawn_with(move |c| c.delivery.proxy = format!("http://{proxy}")).await;
    app.create_app("ws_px").await;
    // Nothing listens on port 9: only the proxy can have answered.
    let (status, _) = app
        .post("/api/v1/app/ws_px/endpoint", json!({"url": "http://127.0.0.1:9/hooks"}))
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    let msg = app
        .send_message("ws_px", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let (_, line) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        line, "POST http://127.0.0.1:9/hooks HTTP/1.1",
        "the proxy got the request for the target"
    );
    app.wait_delivery_status("ws_px", msg["id"].as_str().unwrap(), "success")
        .await;
}

#[tokio::test]
async fn the_address_policy_still_applies_through_a_proxy() {
    let (proxy, mut seen) = raw_server().await;
    let app = TestApp::spawn_with(move |c| {
        c.delivery.proxy = format!("http://{proxy}");
        c.delivery.allowed_subnets = vec!["127.0.0.2/32".into()];
    })
    .await;
    app.create_app("ws_pol").await;
    app.post(
        "/api/v1/app/ws_pol/endpoint",
        json!({"url": "http://localhost:9/hooks"}),
    )
    .await;
    let msg = app
        .send_message("ws_pol", json!({"eventType": "a.b", "payload": {}}))
        .await;
    app.wait_recorded(1).await;
    let (_, attempts) = app
        .get(&format!(
            "/api/v1/app/ws_pol/attempt/msg/{}",
            msg["id"].as_str().unwrap()
        ))
        .await;
    let response = attempts["data"][0]["response"].as_str().unwrap();
    assert!(response.contains("refused"), "{response}");
    assert!(seen.try_recv().is_err(), "nothing reached the proxy");
}

#[tokio::test]
async fn deliveries_leave_from_the_configured_source_address() {
    let (server, mut seen) = raw_server().await;
    let app = TestApp::spawn_with(|c| c.delivery.source_address = "127.0.0.2".into()).await;
    app.create_app("ws_src").await;
    app.post(
        "/api/v1/app/ws_src/endpoint",
        json!({"url": format!("http://{server}/hooks")}),
    )
    .await;
    app.send_message("ws_src", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let (peer, line) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
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
    app.create_app("ws_tun").await;
    app.post(
        "/api/v1/app/ws_tun/endpoint",
        json!({"url": "https://127.0.0.1:9/hooks"}),
    )
    .await;
    app.send_message("ws_tun", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let (_, line) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        line, "CONNECT 127.0.0.1:9 HTTP/1.1",
        "the target is reached through a CONNECT tunnel"
    );
}

/// A SOCKS5 proxy (no authentication) that reports the target it was asked for and then answers
/// the tunnelled HTTP request itself with 200.
async fn socks5_server() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
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
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn deliveries_go_through_a_socks5_proxy() {
    let (proxy, mut targets) = socks5_server().await;
    let app = TestApp::spawn_with(move |c| c.delivery.proxy = format!("socks5://{proxy}")).await;
    app.create_app("ws_socks").await;
    app.post(
        "/api/v1/app/ws_socks/endpoint",
        json!({"url": "http://127.0.0.1:9/hooks"}),
    )
    .await;
    let msg = app
        .send_message("ws_socks", json!({"eventType": "a.b", "payload": {}}))
        .await;
    let target = tokio::time::timeout(Duration::from_secs(10), targets.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(target, "127.0.0.1:9");
    app.wait_delivery_status("ws_socks", msg["id"].as_str().unwrap(), "success")
        .await;
}
