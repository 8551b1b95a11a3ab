//! `hookd listen --forward-to URL`: receive an application's webhooks on a machine hookd cannot
//! reach (a laptop behind NAT). The CLI dials hookd's WebSocket, becomes an endpoint of the
//! application, forwards each delivery byte for byte to the local URL and reports the local
//! answer back as the attempt's result. A dropped connection is re-dialled with backoff and the
//! same session, so deliveries made meanwhile are retried to it rather than lost.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::client::ClientArgs;
use crate::relay::{Frame, RelayReply, RelayRequest};

/// Most of a local response body sent back (hookd keeps the first 20 KiB).
const BODY_CAP: usize = 20 * 1024;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Flags of `hookd listen`.
#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    /// Local URL each delivery is forwarded to, e.g. http://localhost:3000/webhooks.
    #[arg(long, value_name = "URL")]
    pub forward_to: String,
    /// Application (id or uid) whose webhooks to receive.
    #[arg(long)]
    pub app: String,
    /// Only these event types (comma-separated); all when absent.
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
    /// Resume an earlier session (its endpoint id) instead of starting a new one.
    #[arg(long, value_name = "ENDPOINT_ID")]
    pub session: Option<String>,
    /// Seconds to wait for the local URL to answer (hookd waits `delivery.timeout_secs`,
    /// 15 by default, for the whole relayed attempt).
    #[arg(long, default_value_t = 15)]
    pub timeout: u64,
    /// Server and token.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// How a connected session ended.
enum Ended {
    /// Ctrl-C: the session was closed on purpose.
    Stopped,
    /// The connection dropped; reconnect.
    Dropped(String),
}

/// Runs until Ctrl-C (or SIGTERM).
pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let forward = reqwest::Url::parse(&args.forward_to).context("--forward-to must be a URL")?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        trigger.cancel();
    });
    let mut session = args.session.clone();
    let mut backoff = Duration::from_secs(1);
    loop {
        let url = socket_url(&args, session.as_deref())?;
        match connect(&url, &args.client.token).await {
            Ok(socket) => {
                backoff = Duration::from_secs(1);
                match run_session(socket, &http, &forward, &args, &mut session, &stop).await {
                    Ended::Stopped => {
                        println!("hookd listen: stopped; the session's endpoint was removed");
                        return Ok(());
                    }
                    Ended::Dropped(why) => println!("hookd listen: connection lost ({why}); reconnecting"),
                }
            }
            Err(Connect::Refused(why)) => anyhow::bail!(why),
            Err(Connect::Unavailable(why)) => {
                println!(
                    "hookd listen: cannot connect ({why}); retrying in {} s",
                    backoff.as_secs()
                )
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// `ws(s)://server/api/v1/app/APP/listen?events=…&session=…`.
fn socket_url(args: &ListenArgs, session: Option<&str>) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(args.client.base()).context("--server must be a URL")?;
    let scheme = match url.scheme() {
        "https" => "wss",
        "http" => "ws",
        other => anyhow::bail!("--server must be http:// or https://, not {other}://"),
    };
    url.set_scheme(scheme).expect("ws and wss are valid schemes");
    url.path_segments_mut()
        .map_err(|_| anyhow::anyhow!("--server cannot be a base URL"))?
        .pop_if_empty()
        .extend(["api", "v1", "app", &args.app, "listen"]);
    {
        let mut q = url.query_pairs_mut();
        if !args.events.is_empty() {
            q.append_pair("events", &args.events.join(","));
        }
        if let Some(s) = session {
            q.append_pair("session", s);
        }
    }
    Ok(url.to_string())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

enum Connect {
    /// hookd said no (bad token, unknown application…): retrying will not help.
    Refused(String),
    /// hookd is not reachable right now.
    Unavailable(String),
}

async fn connect(url: &str, token: &str) -> Result<Socket, Connect> {
    let mut request = url
        .into_client_request()
        .map_err(|e| Connect::Refused(format!("bad server URL: {e}")))?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Connect::Refused("the token contains characters a header cannot carry".into()))?;
    request.headers_mut().insert("authorization", auth);
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) if response.status().is_client_error() => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let detail = serde_json::from_str(&body)
                .map(|v| super::client::describe_error(&v))
                .unwrap_or(body);
            Err(Connect::Refused(format!(
                "hookd refused the session: {} {detail}",
                response.status()
            )))
        }
        Err(e) => Err(Connect::Unavailable(e.to_string())),
    }
}

async fn run_session(
    socket: Socket,
    http: &reqwest::Client,
    forward: &reqwest::Url,
    args: &ListenArgs,
    session: &mut Option<String>,
    stop: &CancellationToken,
) -> Ended {
    let (mut write, mut read) = socket.split();
    let (results, mut outbox) = mpsc::channel::<Frame>(64);
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = write.send(text(&Frame::Close)).await;
                let _ = write.send(Message::Close(None)).await;
                return Ended::Stopped;
            }
            Some(frame) = outbox.recv() => {
                if let Err(e) = write.send(text(&frame)).await {
                    return Ended::Dropped(e.to_string());
                }
            }
            incoming = read.next() => match incoming {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<Frame>(t.as_str()) {
                    Ok(Frame::Session { endpoint_id, secret, event_types, resumed, .. }) => {
                        announce(args, &endpoint_id, &secret, event_types.as_deref(), resumed, session.is_some());
                        *session = Some(endpoint_id);
                    }
                    Ok(Frame::Delivery(request)) => {
                        let (http, forward, results) = (http.clone(), forward.clone(), results.clone());
                        tokio::spawn(async move {
                            let reply = deliver(&http, &forward, &request).await;
                            report(&request, &reply);
                            let _ = results.send(Frame::Result(reply)).await;
                        });
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None => return Ended::Dropped("the server closed the connection".into()),
                Some(Err(e)) => return Ended::Dropped(e.to_string()),
                Some(Ok(_)) => {} // pings are answered by the library
            }
        }
    }
}

fn text(frame: &Frame) -> Message {
    Message::Text(serde_json::to_string(frame).expect("frames serialize").into())
}

fn announce(
    args: &ListenArgs,
    endpoint_id: &str,
    secret: &str,
    events: Option<&[String]>,
    resumed: u64,
    reconnect: bool,
) {
    if reconnect {
        println!("hookd listen: connected (session {endpoint_id}); {resumed} waiting deliveries resumed");
        return;
    }
    println!(
        "hookd listen: forwarding webhooks of application {} to {}",
        args.app, args.forward_to
    );
    println!("  session  {endpoint_id}   (resume with --session {endpoint_id})");
    println!("  secret   {secret}");
    println!(
        "  events   {}",
        events.map(|e| e.join(", ")).unwrap_or_else(|| "all".into())
    );
}

/// Forwards one delivery to the local URL, exactly as hookd signed it.
async fn deliver(http: &reqwest::Client, forward: &reqwest::Url, request: &RelayRequest) -> RelayReply {
    let mut req = http.post(forward.clone()).body(request.body.clone());
    for (name, value) in &request.headers {
        if !matches!(name.as_str(), "host" | "content-length") {
            req = req.header(name, value);
        }
    }
    let started = Instant::now();
    let outcome = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let mut body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            body.truncate(BODY_CAP);
            Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
        }
        Err(e) => Err(error_chain(&e)),
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok((status, headers, body)) => RelayReply {
            id: request.id,
            status,
            body,
            headers,
            duration_ms,
            error: None,
        },
        Err(error) => RelayReply {
            id: request.id,
            duration_ms,
            error: Some(error),
            ..RelayReply::default()
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One line per delivery: time, event type, message id, local status, latency.
fn report(request: &RelayRequest, reply: &RelayReply) {
    let now = chrono::Utc::now().format("%H:%M:%S");
    let result = match &reply.error {
        Some(e) => format!("failed: {e}"),
        None => reply.status.to_string(),
    };
    println!(
        "{now}  {:<24} {}  -> {result}  {} ms",
        request.event_type, request.msg_id, reply.duration_ms
    );
}
