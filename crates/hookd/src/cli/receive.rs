//! `hookd receive --port P`: a local mock receiver for trying out an integration. It prints each
//! request (headers and pretty JSON), says whether the signature verifies with `--secret`, and
//! answers with the configured status after the configured delay — to watch retries and failure
//! handling happen.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use hookd_signing::{verify, Secret, WebhookHeaders, DEFAULT_TOLERANCE_SECS};
use rand::Rng;

/// Flags of `hookd receive`.
#[derive(Debug, clap::Args)]
pub struct ReceiveArgs {
    /// Port to listen on (on 127.0.0.1 unless --host says otherwise).
    #[arg(long, default_value_t = 8072)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Endpoint secret (`whsec_…`) to verify signatures with.
    #[arg(long, env = "HOOKD_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Status to answer: a code (e.g. 200, 500, 410) or `random` (a mix of 2xx, 4xx and 5xx).
    #[arg(long, default_value = "200")]
    pub status: String,
    /// Wait before answering: `250ms`, `2s` or plain seconds.
    #[arg(long, default_value = "0")]
    pub delay: String,
}

/// What to answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Fixed(StatusCode),
    Random,
}

/// Statuses `--status random` picks from: mostly success, some of each failure kind.
const RANDOM_STATUSES: [u16; 8] = [200, 200, 200, 204, 400, 429, 500, 503];

struct Receiver {
    secret: Option<Secret>,
    answer: Answer,
    delay: Duration,
}

/// Serves until Ctrl-C.
pub async fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let receiver = Arc::new(Receiver {
        secret: args
            .secret
            .as_deref()
            .map(Secret::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--secret: {e}"))?,
        answer: parse_status(&args.status)?,
        delay: parse_delay(&args.delay)?,
    });
    let app = Router::new().fallback(handle).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port)).await?;
    println!(
        "hookd receive: listening on http://{}  (answers {}{}, signatures {})",
        listener.local_addr()?,
        args.status,
        if receiver.delay.is_zero() {
            String::new()
        } else {
            format!(" after {:?}", receiver.delay)
        },
        if receiver.secret.is_some() {
            "checked"
        } else {
            "not checked: no --secret"
        }
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(super::serve::shutdown_signal())
        .await?;
    Ok(())
}

async fn handle(
    State(r): State<Arc<Receiver>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = match r.answer {
        Answer::Fixed(s) => s,
        Answer::Random => {
            let pick = RANDOM_STATUSES[rand::thread_rng().gen_range(0..RANDOM_STATUSES.len())];
            StatusCode::from_u16(pick).expect("valid status")
        }
    };
    let mut out = format!(
        "\n── {method} {uri}  {}\n",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
    for (name, value) in &headers {
        out.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
    }
    out.push('\n');
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(json) => out.push_str(&serde_json::to_string_pretty(&json).unwrap_or_default()),
        Err(_) => out.push_str(&String::from_utf8_lossy(&body)),
    }
    out.push('\n');
    out.push_str(&format!(
        "signature: {}\n",
        check_signature(r.secret.as_ref(), &headers, &body)
    ));
    out.push_str(&format!("answer: {}", status.as_u16()));
    if !r.delay.is_zero() {
        out.push_str(&format!(" after {:?}", r.delay));
    }
    println!("{out}");
    tokio::time::sleep(r.delay).await;
    status
}

/// `valid`, `invalid: reason`, or why it was not checked.
fn check_signature(secret: Option<&Secret>, headers: &HeaderMap, body: &[u8]) -> String {
    let Some(secret) = secret else {
        return "not checked (no --secret)".into();
    };
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (Some(id), Some(timestamp), Some(signature)) =
        (get("webhook-id"), get("webhook-timestamp"), get("webhook-signature"))
    else {
        return "invalid: webhook-id, webhook-timestamp or webhook-signature is missing".into();
    };
    let h = WebhookHeaders {
        id,
        timestamp,
        signature,
    };
    match verify(secret, &h, body, chrono::Utc::now().timestamp(), DEFAULT_TOLERANCE_SECS) {
        Ok(()) => "valid".into(),
        Err(e) => format!("invalid: {e}"),
    }
}

fn parse_status(s: &str) -> anyhow::Result<Answer> {
    if s.eq_ignore_ascii_case("random") {
        return Ok(Answer::Random);
    }
    let code: u16 = s
        .parse()
        .map_err(|_| anyhow::anyhow!("--status must be a code or `random`"))?;
    StatusCode::from_u16(code)
        .ok()
        .filter(|c| (100..600).contains(&c.as_u16()))
        .map(Answer::Fixed)
        .ok_or_else(|| anyhow::anyhow!("--status {code} is not an HTTP status"))
}

fn parse_delay(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (number, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(secs) = s.strip_suffix('s') {
        (secs, 1.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--delay must look like 250ms, 2s or 1.5"))?;
    if !(0.0..=3600.0).contains(&(value * scale)) {
        anyhow::bail!("--delay must be between 0 and one hour");
    }
    Ok(Duration::from_secs_f64(value * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_delays_parse() {
        assert_eq!(
            parse_status("503").unwrap(),
            Answer::Fixed(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(parse_status("random").unwrap(), Answer::Random);
        assert!(parse_status("abc").is_err());
        assert!(parse_status("99").is_err());
        assert_eq!(parse_delay("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_delay("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_delay("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_delay("-1").is_err());
        assert!(parse_delay("soon").is_err());
    }

    #[test]
    fn signatures_are_checked_with_the_secret() {
        let secret = Secret::generate(&mut rand::thread_rng());
        let body = br#"{"a":1}"#;
        let now = chrono::Utc::now().timestamp();
        let key = hookd_signing::SigningKey::parse_endpoint_key(&secret.to_string()).unwrap();
        let sig = hookd_signing::signature_header_for(&[&key], "msg_1", now, body);
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", sig.parse().unwrap());
        assert_eq!(check_signature(Some(&secret), &headers, body), "valid");
        assert!(check_signature(Some(&secret), &headers, b"{}").starts_with("invalid"));
        assert!(check_signature(None, &headers, body).starts_with("not checked"));
        headers.remove("webhook-signature");
        assert!(check_signature(Some(&secret), &headers, body).contains("missing"));
    }
}
