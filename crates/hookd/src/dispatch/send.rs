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

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hookd_core::model::{Endpoint, Environment, Message};
use hookd_core::net::AddressPolicy;
use hookd_core::retry::Outcome;
use hookd_core::validate;
use hookd_signing::{signature_header_for, SigningKey};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};

use crate::relay::{RelayHub, RelayRequest};

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
    pub request_headers: BTreeMap<String, String>,
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
            request_headers: BTreeMap::new(),
            response_headers: Vec::new(),
        }
    }
}

/// Resolves host names and keeps only the addresses the policy allows.
pub struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
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
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Header marking deliveries from the sandbox.
pub const ENVIRONMENT_HEADER: &str = "webhook-environment";

/// An HTTP client bound to one address policy.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    policy: Arc<AddressPolicy>,
    proxied: bool,
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
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            // The client's own retries are for HTTP/2 refusals, which this build (HTTP/1.1
            // only) never meets; without a retry allowed, it no longer copies every request's
            // headers in case one is needed. Failed sends are retried on hookd's schedule.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(idle_per_host)
            .local_address(egress.source_address);
        builder = match &egress.proxy {
            // Through a proxy, the proxy resolves and connects to the target; the target's
            // addresses are checked before each send instead (`check_target`).
            Some(proxy) => builder.proxy(reqwest::Proxy::all(proxy.as_str())?),
            // Directly: connections go only to addresses the policy resolver returned. Proxies
            // from the environment are ignored, so the check cannot be bypassed through one.
            None => builder
                .no_proxy()
                .dns_resolver(Arc::new(PolicyResolver { policy: policy.clone() })),
        };
        Ok(Client {
            http: builder.build()?,
            policy,
            proxied: egress.proxy.is_some(),
        })
    }

    /// Through a proxy: resolves the target here and refuses it if any address is refused.
    async fn check_target(&self, parsed: &reqwest::Url) -> Result<(), String> {
        if !self.proxied {
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
pub struct Outgoing<'a> {
    /// The environment of the endpoint's application.
    pub env: Environment,
    /// Where it goes.
    pub endpoint: &'a Endpoint,
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
        endpoint: &Endpoint,
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
    pub async fn send(&self, out: Outgoing<'_>, now: DateTime<Utc>) -> SendResult {
        let endpoint = out.endpoint;
        let client = match out.env {
            Environment::Live => &self.live,
            Environment::Test => &self.sandbox,
        };
        let relayed = crate::relay::is_session_url(&endpoint.url);
        // Parsed once: the address checks and the request share it.
        let mut target = None;
        if !relayed {
            let parsed = match reqwest::Url::parse(&endpoint.url) {
                Ok(parsed) => parsed,
                Err(e) => return SendResult::not_sent(&format!("invalid URL: {e}")),
            };
            if let Err(why) = client.check_literal_host(&parsed) {
                return SendResult::not_sent(&why);
            }
            if let Err(why) = client.check_target(&parsed).await {
                return SendResult::not_sent(&why);
            }
            target = Some(parsed);
        }
        let mut headers = match signed_headers(endpoint, out.msg_id, out.payload, out.attempt, now) {
            Ok(h) => h,
            Err(reason) => return SendResult::not_sent(&reason),
        };
        if out.env == Environment::Test {
            headers.insert(ENVIRONMENT_HEADER, HeaderValue::from_static("test"));
        }
        let request_headers = redacted(&headers);
        let Some(target) = target else {
            return self.relay(out, headers, request_headers).await;
        };
        let started = Instant::now();
        let response = client
            .http
            .post(target)
            .headers(headers)
            .body(out.payload.clone())
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return failure(e, started, request_headers),
        };
        let code = response.status().as_u16();
        let location = (response.status().is_redirection())
            .then(|| response.headers().get(reqwest::header::LOCATION))
            .flatten()
            .map(|v| hookd_core::text::escape_bytes(v.as_bytes()));
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let response_headers = hookd_core::text::headers(
            response
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())),
        );
        let mut body = Vec::new();
        let mut cut_off = None;
        // Read only up to the cap: a huge response must not be buffered.
        while body.len() < RESPONSE_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_CAP - body.len())]),
                Ok(None) => break,
                Err(e) => {
                    cut_off = Some(error_text(&e));
                    break;
                }
            }
        }
        // The status decides the outcome: a consumer that answered 2xx has accepted the
        // message, even if its body then stalled or broke off. The record says why it stopped.
        let mut text = body_text(body);
        if let Some(to) = location {
            text.push_str(&format!(
                "\n[hookd: redirects are not followed (to {to}); point the endpoint at the final URL]"
            ));
        }
        if let Some(why) = cut_off {
            text.push_str(&format!("\n[hookd: the response body was cut off: {why}]"));
        }
        SendResult {
            outcome: Outcome::from_status(code, retry_after),
            status_code: code,
            response: text,
            duration: started.elapsed(),
            request_headers,
            response_headers,
        }
    }

    /// Hands the signed request to the endpoint's `hookd listen` session and turns the CLI's
    /// answer into the attempt's result.
    async fn relay(
        &self,
        out: Outgoing<'_>,
        headers: HeaderMap,
        request_headers: BTreeMap<String, String>,
    ) -> SendResult {
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

/// An error with its chain of causes, which name what really happened (a reset, a timeout).
fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn failure(e: reqwest::Error, started: Instant, request_headers: BTreeMap<String, String>) -> SendResult {
    let outcome = if e.is_timeout() {
        Outcome::Timeout
    } else {
        Outcome::Transport
    };
    SendResult {
        outcome,
        status_code: 0,
        response: error_text(&e),
        duration: started.elapsed(),
        request_headers,
        response_headers: Vec::new(),
    }
}

/// The keys that sign a delivery at `now`: the current one and unexpired rotated ones.
pub fn signing_keys(endpoint: &Endpoint, now: DateTime<Utc>) -> Result<Vec<SigningKey>, String> {
    let mut keys =
        vec![SigningKey::parse_endpoint_key(&endpoint.secret).map_err(|e| format!("endpoint secret unusable: {e}"))?];
    for old in endpoint.old_secrets.iter().filter(|o| o.expires_at > now) {
        if let Ok(k) = SigningKey::parse_endpoint_key(&old.key) {
            keys.push(k);
        }
    }
    Ok(keys)
}

fn signed_headers(
    endpoint: &Endpoint,
    msg_id: &str,
    payload: &[u8],
    attempt: i64,
    now: DateTime<Utc>,
) -> Result<HeaderMap, String> {
    let keys = signing_keys(endpoint, now)?;
    let ts = now.timestamp();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let signature = signature_header_for(&refs, msg_id, ts, payload);
    let mut h = HeaderMap::new();
    // Custom headers first, so hookd's own can never be overridden by them.
    for (name, value) in &endpoint.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            h.insert(n, v);
        }
    }
    let own = [
        ("webhook-id", msg_id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signature),
        (ATTEMPT_HEADER, attempt.to_string()),
    ];
    for (name, value) in own {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).map_err(|e| e.to_string())?,
        );
    }
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(h)
}

/// The request headers as recorded: every value, except those of sensitive custom headers.
fn redacted(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            let value = if validate::is_sensitive_header(k.as_str()) {
                "[redacted]".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_string(), value)
        })
        .collect()
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
