//! hookd-relay: the relay ceiling, a bound on what any webhook relay can do on the machine.
//!
//! It does the two HTTP exchanges every relayed message needs and nothing else: it takes a
//! `POST /msg` and forwards the body to `--target` `--fan-out` times, on the same stack hookd
//! uses (axum's server, hyper's pooled HTTP/1.1 client, mimalloc), then answers `202`. No
//! storage, no signing, no queue, no retries: a message it answers is one it has delivered.
//!
//! `hookd-bench --relay-ceiling` starts it, publishes to it exactly as it publishes to hookd, and
//! reports hookd's rate as a share of the relay's. It prints `listening on ADDR` once it is
//! ready and serves until killed.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, Request, StatusCode, Uri};
use clap::Parser;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Forwards every posted body to a target, `--fan-out` times, with no storage.
#[derive(Debug, Parser)]
struct Args {
    /// Where every body is posted (an `http://` URL on loopback).
    #[arg(long)]
    target: Uri,
    /// Copies posted per message.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    fan_out: u64,
    /// Most forwards in flight at once, and connections kept to the target (hookd's
    /// `delivery.max_concurrency` default).
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
}

struct Relay {
    client: Client<HttpConnector, Full<Bytes>>,
    target: Uri,
    fan_out: u64,
    in_flight: Semaphore,
}

impl Relay {
    /// One forward: `true` when the target answered 2xx.
    async fn forward(&self, body: Bytes) -> bool {
        let Ok(_permit) = self.in_flight.acquire().await else {
            return false;
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = axum::http::Method::POST;
        *request.uri_mut() = self.target.clone();
        request
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self.client.request(request).await {
            // Read to the end so the connection goes back to the pool.
            Ok(response) => {
                let ok = response.status().is_success();
                ok && http_body_util::BodyExt::collect(response.into_body()).await.is_ok()
            }
            Err(_) => false,
        }
    }
}

/// `POST /msg`: forward the body `fan_out` times at once, then answer.
async fn relay(State(relay): State<Arc<Relay>>, body: Bytes) -> StatusCode {
    let sends = (0..relay.fan_out).map(|_| relay.forward(body.clone()));
    match futures_util::future::join_all(sends).await.into_iter().all(|ok| ok) {
        true => StatusCode::ACCEPTED,
        false => StatusCode::BAD_GATEWAY,
    }
}

/// The relay's routes: `POST /msg` forwarded `fan_out` times to `target`.
fn router(target: Uri, fan_out: u64, max_in_flight: usize) -> axum::Router {
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_in_flight)
        .build_http();
    let state = Arc::new(Relay {
        client,
        target,
        fan_out,
        in_flight: Semaphore::new(max_in_flight.max(1)),
    });
    axum::Router::new()
        .route("/msg", axum::routing::post(relay))
        .with_state(state)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = router(args.target, args.fan_out, args.max_in_flight);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A loopback target counting the bodies it takes and answering `status`.
    async fn target(status: StatusCode) -> (Uri, Arc<AtomicUsize>) {
        let seen = Arc::new(AtomicUsize::new(0));
        let counted = seen.clone();
        let app = axum::Router::new().route(
            "/in",
            axum::routing::post(move |body: Bytes| async move {
                assert_eq!(&body[..], b"{\"n\":1}");
                counted.fetch_add(1, Ordering::SeqCst);
                status
            }),
        );
        let addr = hookd_bench::serve_on_loopback(app).await.unwrap();
        (format!("http://{addr}/in").parse().unwrap(), seen)
    }

    async fn publish(relay: axum::Router) -> reqwest::StatusCode {
        let addr = hookd_bench::serve_on_loopback(relay).await.unwrap();
        reqwest::Client::new()
            .post(format!("http://{addr}/msg"))
            .body("{\"n\":1}")
            .send()
            .await
            .unwrap()
            .status()
    }

    #[tokio::test]
    async fn a_message_is_answered_after_its_body_reached_the_target_once_per_copy() {
        let (uri, seen) = target(StatusCode::OK).await;
        assert_eq!(publish(router(uri, 3, 2)).await, reqwest::StatusCode::ACCEPTED);
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_target_that_fails_fails_the_message() {
        let (uri, seen) = target(StatusCode::INTERNAL_SERVER_ERROR).await;
        assert_eq!(publish(router(uri, 2, 8)).await, reqwest::StatusCode::BAD_GATEWAY);
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }
}
