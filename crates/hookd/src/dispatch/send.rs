//! One HTTP attempt: build the signed request, send it, read a bounded part of the answer.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hookd_core::model::Endpoint;
use hookd_core::retry::Outcome;
use hookd_signing::Secret;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};

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
    /// Body prefix (UTF-8, or base64 when the body is binary) or the error text.
    pub response: String,
    /// Time to the end of the (capped) body.
    pub duration: Duration,
}

impl SendResult {
    /// A failure that happened before any request was made.
    pub fn not_sent(reason: &str) -> SendResult {
        SendResult {
            outcome: Outcome::Transport,
            status_code: 0,
            response: reason.into(),
            duration: Duration::ZERO,
        }
    }
}

/// The HTTP client, shared by all sends.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
}

impl Sender {
    /// A client with the given timeout that never follows redirects.
    pub fn new(timeout: Duration) -> anyhow::Result<Sender> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Sender { client })
    }

    /// Sends `payload` to `endpoint`, signed for `msg_id` at `now`.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        msg_id: &str,
        payload: &str,
        attempt: i64,
        now: DateTime<Utc>,
    ) -> SendResult {
        let headers = match signed_headers(endpoint, msg_id, payload, attempt, now) {
            Ok(h) => h,
            Err(reason) => return SendResult::not_sent(&reason),
        };
        let started = Instant::now();
        let response = self
            .client
            .post(&endpoint.url)
            .headers(headers)
            .body(payload.to_string())
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return failure(e, started),
        };
        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let mut body = Vec::new();
        // Read only up to the cap: a huge response must not be buffered.
        while body.len() < RESPONSE_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_CAP - body.len())]),
                Ok(None) => break,
                Err(e) if e.is_timeout() => break,
                Err(_) => break,
            }
        }
        SendResult {
            outcome: Outcome::from_status(code, retry_after),
            status_code: code,
            response: body_text(body),
            duration: started.elapsed(),
        }
    }
}

fn failure(e: reqwest::Error, started: Instant) -> SendResult {
    let outcome = if e.is_timeout() {
        Outcome::Timeout
    } else {
        Outcome::Transport
    };
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    SendResult {
        outcome,
        status_code: 0,
        response: text,
        duration: started.elapsed(),
    }
}

fn signed_headers(
    endpoint: &Endpoint,
    msg_id: &str,
    payload: &str,
    attempt: i64,
    now: DateTime<Utc>,
) -> Result<HeaderMap, String> {
    let secret = Secret::parse(&endpoint.secret).map_err(|e| format!("endpoint secret unusable: {e}"))?;
    let ts = now.timestamp();
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
        ("webhook-signature", secret.sign(msg_id, ts, payload.as_bytes())),
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

/// The response text stored with an attempt: UTF-8 as is (cut at a character boundary),
/// binary as base64.
fn body_text(body: Vec<u8>) -> String {
    match String::from_utf8(body) {
        Ok(s) => s,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // A cap can split a multi-byte character: keep the valid prefix if only the tail broke.
            if bytes.len() - valid < 4 && bytes.len() == RESPONSE_CAP {
                String::from_utf8_lossy(&bytes[..valid]).into_owned()
            } else {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(&bytes)
            }
        }
    }
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
    fn binary_bodies_are_base64_and_text_is_kept() {
        assert_eq!(body_text(b"ok".to_vec()), "ok");
        assert_eq!(body_text(vec![0xff, 0xfe]), "//4=");
    }
}
