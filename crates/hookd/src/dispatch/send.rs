//! One HTTP attempt: build the signed request, send it, read a bounded part of the answer.
//!
//! Outbound connections obey the address policy (SSRF protection): host names are resolved by
//! [`PolicyResolver`], which drops refused addresses, and the connection is made to exactly the
//! addresses it returned, so a DNS answer cannot change between the check and the connect. URLs
//! with an IP literal are checked before any connection is attempted. Proxies from the
//! environment are ignored, so the check cannot be bypassed through one. With a configured
//! egress proxy (`delivery.proxy`) the proxy connects to the target: its addresses are checked
//! here before each send, and the proxy should enforce the same rules. Sandbox endpoints use a
//! wider policy; `hookd listen` endpoints go through their session instead of the network.
//!
//! Direct sends use hyper's pooled HTTP/1.1 client with rustls; sends through a proxy (HTTP
//! or SOCKS5) use reqwest, which speaks both. Either way the answer is read the same way
//! ([`Head`], [`read_capped`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hookd_core::model::{Environment, Message, SentHeaders};
use hookd_core::net::AddressPolicy;
use hookd_core::retry::Outcome;
use hookd_core::validate;
use hookd_signing::signature_header_for;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER,
    USER_AGENT as USER_AGENT_HEADER,
};

use crate::cache::OpenedEndpoint;
use crate::relay::{RelayHub, RelayRequest};
use crate::target::Target;

/// `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("hookd/", env!("CARGO_PKG_VERSION"));
/// Header carrying the 1-based attempt number.
pub const ATTEMPT_HEADER: &str = "webhook-attempt";
/// Most bytes of a response body kept (and read) per attempt.
pub const RESPONSE_CAP: usize = 20 * 1024;

/// What came back from one attempt.
#[derive(Debug)]
pub struct SendResult {
    /// Classified for the retry policy.
    pub outcome: Outcome,
    /// HTTP status, 0 when there was no response.
    pub status_code: u16,
    /// Body prefix (UTF-8, NUL and invalid bytes escaped as `\xNN`) or the error text.
    pub response: String,
    /// Time to the end of the (capped) body.
    pub duration: Duration,
    /// Request headers sent, sensitive custom header values redacted.
    pub request_headers: SentHeaders,
    /// Response headers received, in order.
    pub response_headers: Vec<(String, String)>,
}

impl SendResult {
    /// A failure that happened before any request was made.
    pub fn not_sent(reason: &str) -> SendResult {
        SendResult {
            outcome: Outcome::Transport,
            status_code: 0,
            response: reason.into(),
            duration: Duration::ZERO,
            request_headers: SentHeaders::default(),
            response_headers: Vec::new(),
        }
    }
}

/// Resolves host names and keeps only the addresses the policy allows: the direct client's
/// connector connects to exactly these.
#[derive(Clone)]
pub struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refusal.get_or_insert(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refusal.unwrap_or_else(|| format!("{host} did not resolve to any address"));
                return Err(why.into());
            }
            Ok(allowed.into_iter())
        })
    }
}

/// Header marking deliveries from the sandbox.
pub const ENVIRONMENT_HEADER: &str = "webhook-environment";

/// hyper's pooled client, over TLS or plain TCP, connecting through [`PolicyResolver`].
type Direct =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector<PolicyResolver>>, Full<Bytes>>;

/// How a client's sends leave: straight to the target, or through the egress proxy.
#[derive(Clone)]
enum Transport {
    /// hyper's pooled client; the same without a pool, for a send whose pooled connection
    /// was found closed; and the whole send's limit (connecting, sending and reading the
    /// capped answer), which hyper does not keep itself.
    Direct {
        pooled: Direct,
        new: Box<Direct>,
        timeout: Duration,
    },
    /// reqwest's client, which applies the same limit itself.
    Proxied(reqwest::Client),
}

/// An HTTP client bound to one address policy.
#[derive(Clone)]
struct Client {
    transport: Transport,
    policy: Arc<AddressPolicy>,
}

/// How deliveries leave the machine.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    /// Proxy URL (`http://…` or `socks5://…`).
    pub proxy: Option<String>,
    /// Local source address.
    pub source_address: Option<IpAddr>,
}

impl Client {
    /// `idle_per_host`: connections kept open to one host between sends. It should be the most
    /// sends that can be in flight at once; with fewer, a host busier than that has
    /// connections closed after each burst and opened again for the next (at fan-out 10 to
    /// one host with 64 kept, one send in twelve opened a connection).
    fn new(timeout: Duration, policy: AddressPolicy, egress: &Egress, idle_per_host: usize) -> anyhow::Result<Client> {
        let policy = Arc::new(policy);
        let transport = match &egress.proxy {
            // Through a proxy, the proxy resolves and connects to the target; the target's
            // addresses are checked before each send instead (`check_target`).
            Some(proxy) => Transport::Proxied(
                reqwest::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout.min(CONNECT_TIMEOUT))
                    .redirect(reqwest::redirect::Policy::none())
                    // Its own retries are for HTTP/2 refusals, which this build never meets;
                    // failed sends are retried on hookd's schedule.
                    .retry(reqwest::retry::never().max_retries_per_request(0))
                    .user_agent(USER_AGENT)
                    .pool_max_idle_per_host(idle_per_host)
                    .local_address(egress.source_address)
                    .proxy(reqwest::Proxy::all(proxy.as_str())?)
                    .build()?,
            ),
            // Directly: connections go only to addresses the policy resolver returned. Proxies
            // from the environment are never consulted, so the check cannot be bypassed.
            None => {
                let mut tcp = HttpConnector::new_with_resolver(PolicyResolver { policy: policy.clone() });
                tcp.enforce_http(false);
                tcp.set_nodelay(true);
                tcp.set_connect_timeout(Some(timeout.min(CONNECT_TIMEOUT)));
                tcp.set_local_address(egress.source_address);
                let tls = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(tcp);
                let client = |idle_per_host| {
                    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                        .pool_timer(hyper_util::rt::TokioTimer::new())
                        .pool_idle_timeout(POOL_IDLE)
                        .pool_max_idle_per_host(idle_per_host)
                        .build(tls.clone())
                };
                Transport::Direct {
                    pooled: client(idle_per_host),
                    new: Box::new(client(0)),
                    timeout,
                }
            }
        };
        Ok(Client { transport, policy })
    }

    /// Through a proxy: resolves the target here and refuses it if any address is refused.
    async fn check_target(&self, parsed: &reqwest::Url) -> Result<(), String> {
        if matches!(self.transport, Transport::Direct { .. }) {
            return Ok(());
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            _ => return Ok(()), // IP literals are checked by check_literal_host
        };
        let port = parsed.port_or_known_default().unwrap_or(443);
        let found = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("{host} did not resolve: {e}"))?;
        for addr in found {
            self.policy.check(addr.ip())?;
        }
        Ok(())
    }

    /// URLs naming an IP address skip DNS, so they are checked here.
    fn check_literal_host(&self, parsed: &reqwest::Url) -> Result<(), String> {
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.policy.check(ip)
    }
}

/// What one send is about.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    /// The environment of the endpoint's application.
    pub env: Environment,
    /// Where it goes, with what its sends share.
    pub endpoint: &'a OpenedEndpoint,
    /// The message id (`webhook-id`).
    pub msg_id: &'a str,
    /// The message's event type.
    pub event_type: &'a str,
    /// The payload, as the request body: bytes shared with the message (see [`shared_payload`]),
    /// so a fan-out sends one copy to every endpoint.
    pub payload: &'a Bytes,
    /// 1-based attempt number.
    pub attempt: i64,
}

/// Owns the message a [`shared_payload`] points into.
struct PayloadOf(Arc<Message>);

impl AsRef<[u8]> for PayloadOf {
    fn as_ref(&self) -> &[u8] {
        self.0.payload.as_deref().unwrap_or_default().as_bytes()
    }
}

/// The message's payload as bytes that keep the message alive instead of copying it: every
/// attempt of a fan-out, to any number of endpoints, sends these same bytes. `None` once the
/// payload has expired.
pub fn shared_payload(message: &Arc<Message>) -> Option<Bytes> {
    message.payload.as_ref()?;
    Some(Bytes::from_owner(PayloadOf(message.clone())))
}

/// Sends deliveries: over HTTP with the live or the sandbox address policy, or through a
/// `hookd listen` session.
#[derive(Clone)]
pub struct Sender {
    live: Client,
    sandbox: Client,
    relay: Arc<RelayHub>,
    timeout: Duration,
    /// Connections to RabbitMQ and PostgreSQL destinations, under the same address policies.
    sinks: Arc<super::sinks::Sinks>,
}

impl Sender {
    /// Clients with the given timeout that never follow redirects and connect only where
    /// `policy` allows (live) or where its sandbox widening allows (test environment: loopback,
    /// and private networks when `sandbox_private_networks`). `max_in_flight` is the most sends
    /// at once (`delivery.max_concurrency`): as many connections to one host are kept open.
    pub fn new(
        timeout: Duration,
        policy: AddressPolicy,
        sandbox_private_networks: bool,
        egress: &Egress,
        relay: Arc<RelayHub>,
        max_in_flight: usize,
    ) -> anyhow::Result<Sender> {
        let sandbox = policy.sandbox(sandbox_private_networks);
        Ok(Sender {
            sinks: Arc::new(super::sinks::Sinks::new(policy.clone(), sandbox.clone(), timeout)),
            sandbox: Client::new(timeout, sandbox, egress, max_in_flight)?,
            live: Client::new(timeout, policy, egress, max_in_flight)?,
            relay,
            timeout,
        })
    }

    /// Sends a batch of messages to a destination the way its kind takes them: one signed
    /// JSON array to a FIFO endpoint's URL, or each message to a RabbitMQ exchange or a
    /// PostgreSQL table, the batch succeeding or failing as a whole.
    pub async fn send_batch(
        &self,
        env: Environment,
        endpoint: &OpenedEndpoint,
        items: &[hookd_store::FifoItem],
        now: DateTime<Utc>,
    ) -> SendResult {
        let Some(first) = items.first() else {
            return SendResult::not_sent("an empty batch");
        };
        if !endpoint.destination.as_ref().is_some_and(|d| d.kind.over_http()) {
            return self.sinks.send(env, endpoint, items, now).await;
        }
        let body = super::fifo::batch_body(items);
        let out = Outgoing {
            env,
            endpoint,
            msg_id: &first.message.id,
            event_type: &first.message.event_type,
            payload: &body,
            attempt: first.total_attempts + 1,
        };
        self.send(out, now).await
    }

    /// Sends the payload to the endpoint, signed at `now` with every key that is still valid
    /// (the current one and rotated ones within their grace period).
    ///
    /// A direct send that finds its pooled keep-alive connection closed by the receiver before
    /// any answer (the receiver closed it as the send began, a race every keep-alive client
    /// meets) is sent once more on a new connection. The receiver cannot have answered it, and
    /// a delivery is at-least-once either way; a receiver that closes new connections too gets
    /// the second failure recorded. Both sends share the attempt's one deadline, and the
    /// recorded duration is the attempt's whole time.
    pub async fn send(&self, out: Outgoing<'_>, now: DateTime<Utc>) -> SendResult {
        match self.send_once(out, now, Connection::Pooled).await {
            Ok(sent) => sent,
            Err(Closed { started, .. }) => self
                .send_once(out, now, Connection::New { started })
                .await
                .unwrap_or_else(|closed| closed.sent),
        }
    }

    /// One send on a pooled or a new connection: `Err` when the connection turned out to be
    /// closed before the receiver answered.
    async fn send_once(&self, out: Outgoing<'_>, now: DateTime<Utc>, on: Connection) -> Result<SendResult, Closed> {
        let endpoint = out.endpoint;
        let client = match out.env {
            Environment::Live => &self.live,
            Environment::Test => &self.sandbox,
        };
        let relayed = crate::relay::is_session_url(&endpoint.url);
        // Parsed when the endpoint was opened: the address checks and the request share it.
        let mut parsed = None;
        if !relayed {
            let url = match &endpoint.target.url {
                Ok(url) => url,
                Err(why) => return Ok(SendResult::not_sent(why)),
            };
            if let Err(why) = client.check_literal_host(url) {
                return Ok(SendResult::not_sent(&why));
            }
            if let Err(why) = client.check_target(url).await {
                return Ok(SendResult::not_sent(&why));
            }
            parsed = Some(url);
        }
        let mut headers = match signed_headers(&endpoint.target, out.msg_id, out.payload, out.attempt, now) {
            Ok(h) => h,
            Err(reason) => return Ok(SendResult::not_sent(&reason)),
        };
        if out.env == Environment::Test {
            headers.insert(ENVIRONMENT_HEADER, HeaderValue::from_static("test"));
        }
        let request_headers = redacted(&headers);
        let Some(url) = parsed else {
            return Ok(self.relay(out, headers, request_headers).await);
        };
        let body = out.payload.clone();
        match &client.transport {
            Transport::Direct { pooled, new, timeout } => {
                let (client, started) = match on {
                    Connection::Pooled => (pooled, Instant::now()),
                    Connection::New { started } => (&**new, started),
                };
                let target = &endpoint.target.direct;
                match send_direct(client, *timeout, target, headers, body, started, request_headers).await {
                    Ok(sent) => Ok(sent),
                    Err(sent) => Err(Closed { started, sent }),
                }
            }
            Transport::Proxied(http) => {
                Ok(send_proxied(http, url.clone(), headers, body, Instant::now(), request_headers).await)
            }
        }
    }

    /// Hands the signed request to the endpoint's `hookd listen` session and turns the CLI's
    /// answer into the attempt's result.
    async fn relay(&self, out: Outgoing<'_>, headers: HeaderMap, request_headers: SentHeaders) -> SendResult {
        let request = RelayRequest {
            id: 0,
            msg_id: out.msg_id.to_string(),
            event_type: out.event_type.to_string(),
            attempt: out.attempt,
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .chain([("user-agent".to_string(), USER_AGENT.to_string())])
                .collect(),
            body: String::from_utf8_lossy(out.payload).into_owned(),
        };
        let started = Instant::now();
        match self.relay.forward(&out.endpoint.id, request, self.timeout).await {
            Ok(reply) if reply.error.is_none() && reply.status > 0 => {
                let retry_after = reply
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                    .and_then(|(_, v)| parse_retry_after(v, Utc::now()));
                let mut body = reply.body.into_bytes();
                body.truncate(RESPONSE_CAP);
                SendResult {
                    outcome: Outcome::from_status(reply.status, retry_after),
                    status_code: reply.status,
                    response: body_text(body),
                    duration: Duration::from_millis(reply.duration_ms),
                    request_headers,
                    response_headers: hookd_core::text::headers(
                        reply.headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
                    ),
                }
            }
            Ok(reply) => SendResult {
                outcome: Outcome::Transport,
                status_code: 0,
                response: reply
                    .error
                    .unwrap_or_else(|| "the local receiver gave no answer".into()),
                duration: Duration::from_millis(reply.duration_ms),
                request_headers,
                response_headers: Vec::new(),
            },
            Err(why) => SendResult {
                outcome: if why.timed_out {
                    Outcome::Timeout
                } else {
                    Outcome::Transport
                },
                status_code: 0,
                response: why.reason,
                duration: started.elapsed(),
                request_headers,
                response_headers: Vec::new(),
            },
        }
    }
}

/// Which connection a direct send goes on.
#[derive(Clone, Copy)]
enum Connection {
    /// A kept-alive one when there is one.
    Pooled,
    /// A new one, closed after the send: the second try of an attempt that began at `started`
    /// and keeps that attempt's deadline.
    New { started: Instant },
}

/// A send whose connection the receiver closed before answering: begun at `started`, failed
/// as `sent` says.
struct Closed {
    started: Instant,
    sent: SendResult,
}

/// Most time spent connecting (within the whole send's timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an unused pooled connection stays open.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// The text of a send that ran out of time.
const TIMED_OUT: &str = "operation timed out";

/// Sends straight to `target` (the request URI and the URL's credentials, see [`Target`]) over
/// a hyper client, within `timeout` from `started` (connecting, sending and reading the capped
/// answer). `Err` when the connection was closed or reset before any answer came.
async fn send_direct(
    direct: &Direct,
    timeout: Duration,
    target: &Result<(http::Uri, Option<HeaderValue>), String>,
    mut headers: HeaderMap,
    body: Bytes,
    started: Instant,
    request_headers: SentHeaders,
) -> Result<SendResult, SendResult> {
    let deadline = tokio::time::Instant::from_std(started + timeout);
    let (uri, credentials) = match target {
        Ok(target) => target,
        Err(why) => return Ok(SendResult::not_sent(why)),
    };
    // Credentials in the URL go as basic authentication, unless a custom header carries some.
    if let Some(credentials) = credentials {
        headers.entry(AUTHORIZATION).or_insert_with(|| credentials.clone());
    }
    let uri = uri.clone();
    headers
        .entry(USER_AGENT_HEADER)
        .or_insert(HeaderValue::from_static(USER_AGENT));
    headers.entry(ACCEPT).or_insert(HeaderValue::from_static("*/*"));
    let mut request = http::Request::new(Full::new(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let response = match tokio::time::timeout_at(deadline, direct.request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) if closed_before_answer(&e) => return Err(failure(&e, false, started, request_headers)),
        Ok(Err(e)) => return Ok(failure(&e, is_timeout(&e), started, request_headers)),
        Err(_) => return Ok(failure(&TimedOut, true, started, request_headers)),
    };
    let (parts, body) = response.into_parts();
    let head = Head::of(parts.status, &parts.headers);
    let (bytes, cut_off) = read_capped(&mut DirectBody { body, deadline }).await;
    Ok(head.finish(bytes, cut_off, started, request_headers))
}

/// Whether a send failed because its connection was closed or reset before any answer: on a
/// kept-alive connection, the receiver closing it as the request went out.
fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    if e.is_connect() {
        return false;
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
            || e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionAborted
                )
            })
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Sends through the egress proxy (reqwest, which speaks HTTP and SOCKS5 proxies).
async fn send_proxied(
    http: &reqwest::Client,
    target: reqwest::Url,
    headers: HeaderMap,
    body: Bytes,
    started: Instant,
    request_headers: SentHeaders,
) -> SendResult {
    let mut response = match http.post(target).headers(headers).body(body).send().await {
        Ok(response) => response,
        Err(e) => return failure(&e, e.is_timeout(), started, request_headers),
    };
    let head = Head::of(response.status(), response.headers());
    let (bytes, cut_off) = read_capped(&mut response).await;
    head.finish(bytes, cut_off, started, request_headers)
}

/// A send that ran out of time.
#[derive(Debug)]
struct TimedOut;

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(TIMED_OUT)
    }
}

impl std::error::Error for TimedOut {}

/// Whether an error, or one of its causes, is a timeout (the connect timeout, say).
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<TimedOut>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// What an answer's status line and headers decide, before its body is read.
struct Head {
    code: u16,
    /// Where a redirect pointed (redirects are not followed).
    location: Option<String>,
    retry_after: Option<Duration>,
    response_headers: Vec<(String, String)>,
}

impl Head {
    fn of(status: http::StatusCode, headers: &HeaderMap) -> Head {
        Head {
            code: status.as_u16(),
            location: status
                .is_redirection()
                .then(|| headers.get(reqwest::header::LOCATION))
                .flatten()
                .map(|v| hookd_core::text::escape_bytes(v.as_bytes())),
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now())),
            response_headers: hookd_core::text::headers(
                headers.iter().map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())),
            ),
        }
    }

    /// The attempt's result, once the body was read (`cut_off`: why it stopped early).
    fn finish(
        self,
        body: Vec<u8>,
        cut_off: Option<String>,
        started: Instant,
        request_headers: SentHeaders,
    ) -> SendResult {
        // The status decides the outcome: a consumer that answered 2xx has accepted the
        // message, even if its body then stalled or broke off. The record says why it stopped.
        let mut text = body_text(body);
        if let Some(to) = self.location {
            text.push_str(&format!(
                "\n[hookd: redirects are not followed (to {to}); point the endpoint at the final URL]"
            ));
        }
        if let Some(why) = cut_off {
            text.push_str(&format!("\n[hookd: the response body was cut off: {why}]"));
        }
        SendResult {
            outcome: Outcome::from_status(self.code, self.retry_after),
            status_code: self.code,
            response: text,
            duration: started.elapsed(),
            request_headers,
            response_headers: self.response_headers,
        }
    }
}

/// An answer's body, read chunk by chunk.
trait Chunks {
    /// The next chunk, `None` at the end, or why the body broke off.
    fn next_chunk(&mut self) -> impl std::future::Future<Output = Result<Option<Bytes>, String>> + Send;
}

/// A direct send's body, read within the send's deadline.
struct DirectBody {
    body: hyper::body::Incoming,
    deadline: tokio::time::Instant,
}

impl Chunks for DirectBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        match tokio::time::timeout_at(self.deadline, self.body.frame()).await {
            Ok(None) => Ok(None),
            // A frame of trailers carries no data.
            Ok(Some(Ok(frame))) => Ok(Some(frame.into_data().unwrap_or_default())),
            Ok(Some(Err(e))) => Err(error_text(&e)),
            Err(_) => Err(TIMED_OUT.into()),
        }
    }
}

impl Chunks for reqwest::Response {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        self.chunk().await.map_err(|e| error_text(&e))
    }
}

/// Reads an answer's body up to [`RESPONSE_CAP`] bytes (a huge one must not be buffered):
/// the bytes, and why it stopped early if it broke off.
async fn read_capped(body: &mut impl Chunks) -> (Vec<u8>, Option<String>) {
    let mut bytes = Vec::new();
    while bytes.len() < RESPONSE_CAP {
        match body.next_chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_CAP - bytes.len())]),
            Ok(None) => break,
            Err(why) => return (bytes, Some(why)),
        }
    }
    (bytes, None)
}

/// An error with its chain of causes, which name what really happened (a reset, a timeout).
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn failure(
    e: &(dyn std::error::Error + 'static),
    timed_out: bool,
    started: Instant,
    request_headers: SentHeaders,
) -> SendResult {
    SendResult {
        outcome: if timed_out {
            Outcome::Timeout
        } else {
            Outcome::Transport
        },
        status_code: 0,
        response: error_text(e),
        duration: started.elapsed(),
        request_headers,
        response_headers: Vec::new(),
    }
}

fn signed_headers(
    target: &Target,
    msg_id: &str,
    payload: &[u8],
    attempt: i64,
    now: DateTime<Utc>,
) -> Result<HeaderMap, String> {
    let keys = target.keys_at(now)?;
    let ts = now.timestamp();
    let signature = signature_header_for(&keys, msg_id, ts, payload);
    // Room for the five below and the five added on the way out (authorization, user-agent,
    // accept, host, content-length), so the map never grows while a request is sent.
    let mut h = HeaderMap::with_capacity(target.custom.len() + 10);
    // Custom headers first, so hookd's own can never be overridden by them.
    for (name, value) in &target.custom {
        h.insert(name.clone(), value.clone());
    }
    let text = |value: &str| HeaderValue::from_str(value).map_err(|e| e.to_string());
    h.insert(HeaderName::from_static("webhook-id"), text(msg_id)?);
    h.insert(HeaderName::from_static("webhook-timestamp"), HeaderValue::from(ts));
    h.insert(HeaderName::from_static("webhook-signature"), text(&signature)?);
    h.insert(HeaderName::from_static(ATTEMPT_HEADER), HeaderValue::from(attempt));
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(h)
}

/// The request headers as recorded: every value, except those of sensitive custom headers.
fn redacted(headers: &HeaderMap) -> SentHeaders {
    SentHeaders::from_pairs(headers.iter().map(|(k, v)| {
        let value = if validate::is_sensitive_header(k.as_str()) {
            "[redacted]".into()
        } else {
            String::from_utf8_lossy(v.as_bytes())
        };
        (k.as_str(), value)
    }))
}

/// The response text stored with an attempt: UTF-8 as is (cut at a character boundary), NUL
/// and invalid bytes escaped as `\xNN` ([`hookd_core::text`]).
fn body_text(mut body: Vec<u8>) -> String {
    // A cap can split a multi-byte character: drop the broken tail rather than escape it.
    if body.len() == RESPONSE_CAP {
        if let Err(e) = std::str::from_utf8(&body) {
            if e.error_len().is_none() {
                body.truncate(e.valid_up_to());
            }
        }
    }
    hookd_core::text::escape_bytes(&body)
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_shared_payload_points_into_the_message_and_outlives_other_handles() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut message = Message {
            id: "msg_1".into(),
            app_id: "app_1".into(),
            event_id: None,
            event_type: "user.created".into(),
            channels: None,
            payload: Some(r#"{"id":1}"#.into()),
            created_at: now,
            expires_at: now,
        };
        let shared = Arc::new(message.clone());
        let body = shared_payload(&shared).expect("a payload");
        let original = shared.payload.as_deref().unwrap();
        assert_eq!(&body[..], original.as_bytes());
        assert_eq!(body.as_ptr(), original.as_ptr(), "the same bytes, not a copy");
        let again = shared_payload(&shared).unwrap();
        assert_eq!(again.as_ptr(), body.as_ptr(), "every attempt sends the one copy");
        drop(shared);
        assert_eq!(&body[..], br#"{"id":1}"#, "the bytes keep the message alive");

        message.payload = None;
        assert_eq!(shared_payload(&Arc::new(message)), None, "an expired payload");
    }

    #[test]
    fn a_timeout_anywhere_in_an_errors_causes_counts_as_a_timeout() {
        #[derive(Debug)]
        struct Wrapped(std::io::Error);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp connect error")
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let connect_timeout = Wrapped(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"));
        assert!(is_timeout(&connect_timeout));
        assert_eq!(error_text(&connect_timeout), "tcp connect error: connect timeout");
        let refused = Wrapped(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!is_timeout(&refused));
        assert!(is_timeout(&TimedOut));
        assert_eq!(error_text(&TimedOut), "operation timed out");
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:02:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn text_is_kept_and_nul_or_invalid_bytes_are_escaped() {
        assert_eq!(body_text(b"ok".to_vec()), "ok");
        assert_eq!(body_text(b"ok\0bad".to_vec()), "ok\\x00bad");
        assert_eq!(body_text(vec![0xff, 0xfe]), "\\xff\\xfe");
        // A character split by the cap is dropped, not escaped.
        let mut capped = vec![b'a'; RESPONSE_CAP - 1];
        capped.push(0xc3);
        assert_eq!(body_text(capped), "a".repeat(RESPONSE_CAP - 1));
    }
}
