//! Checking received webhooks.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::{Choice, ConstantTimeEq};

use crate::sign::mac;
use crate::Secret;

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";

/// The three webhook headers as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHeaders {
    /// `webhook-id`: unique message id, also the idempotency key.
    pub id: String,
    /// `webhook-timestamp`: unix seconds as sent (validated by [`verify`]).
    pub timestamp: String,
    /// `webhook-signature`: space-separated `version,value` signatures.
    pub signature: String,
}

/// Why a webhook failed verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// A required header (named by its `webhook-` name) is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a plain non-negative integer.
    #[error("webhook-timestamp is not a valid unix timestamp")]
    InvalidTimestamp,
    /// The timestamp is older than the tolerance allows.
    #[error("message timestamp is too old")]
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows.
    #[error("message timestamp is too far in the future")]
    TimestampTooNew,
    /// No `v1` signature in the header matches.
    #[error("no matching signature")]
    InvalidSignature,
}

impl WebhookHeaders {
    /// Looks up `webhook-id`/`webhook-timestamp`/`webhook-signature`
    /// case-insensitively, falling back to the `svix-` names (senders that
    /// predate Standard Webhooks). Missing → [`VerifyError::MissingHeader`].
    /// If a name repeats, the first occurrence wins.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<WebhookHeaders, VerifyError> {
        const NAMES: [&str; 3] = [ID, TIMESTAMP, SIGNATURE];
        // One [webhook-, svix-] slot pair per header, filled in a single pass.
        let mut found: [[Option<&str>; 2]; 3] = Default::default();
        for (name, value) in pairs {
            if let Some((field, prefix)) = classify(name) {
                found[field][prefix].get_or_insert(value);
            }
        }
        let [id, timestamp, signature] = [0, 1, 2].map(|i| {
            let [standard, svix] = found[i];
            standard
                .or(svix)
                .map(str::to_owned)
                .ok_or(VerifyError::MissingHeader(NAMES[i]))
        });
        Ok(WebhookHeaders {
            id: id?,
            timestamp: timestamp?,
            signature: signature?,
        })
    }
}

/// Maps a header name to (field index, 0 for `webhook-` / 1 for `svix-`).
fn classify(name: &str) -> Option<(usize, usize)> {
    let strip = |prefix: &str| {
        // `get` rather than slicing: `name` may hold non-ASCII bytes.
        name.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| &name[prefix.len()..])
    };
    let (rest, prefix) = match strip("webhook-") {
        Some(rest) => (rest, 0),
        None => (strip("svix-")?, 1),
    };
    let field = ["id", "timestamp", "signature"]
        .iter()
        .position(|f| rest.eq_ignore_ascii_case(f))?;
    Some((field, prefix))
}

/// Verifies with explicit `now` (unix seconds) and tolerance in seconds (both
/// directions). Constant-time compare (subtle) against every `v1,` entry in
/// the space-separated list; other versions ignored; undecodable entries
/// ignored.
///
/// The timestamp is checked before the signature, so a stale message is
/// reported as such even if its signature is also wrong.
pub fn verify(
    secret: &Secret,
    headers: &WebhookHeaders,
    payload: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts = parse_timestamp(&headers.timestamp)?;
    // Saturating: `now` is caller-supplied and may be anything.
    if now.saturating_sub(ts) > tolerance_secs {
        return Err(VerifyError::TimestampTooOld);
    }
    if ts.saturating_sub(now) > tolerance_secs {
        return Err(VerifyError::TimestampTooNew);
    }

    let expected = mac(secret, &headers.id, &headers.timestamp, payload);
    // Compare against every entry without short-circuiting; decoding first
    // means we compare raw tags, so base64 spelling cannot matter.
    let matched = headers
        .signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .fold(Choice::from(0), |acc, tag| acc | tag.ct_eq(&expected));
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

/// Accepts only ASCII digits: `str::parse::<i64>` alone would also take `+5`,
/// and floats or negatives must be rejected outright.
fn parse_timestamp(s: &str) -> Result<i64, VerifyError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    s.parse().map_err(|_| VerifyError::InvalidTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{signature_header, DEFAULT_TOLERANCE_SECS};

    const NOW: i64 = 1_700_000_000;

    fn secret(n: u8) -> Secret {
        Secret::from_bytes(vec![n; 32]).unwrap()
    }

    fn headers(sig: String) -> WebhookHeaders {
        WebhookHeaders {
            id: "msg_1".into(),
            timestamp: NOW.to_string(),
            signature: sig,
        }
    }

    #[test]
    fn rotation_header_verifies_with_either_secret() {
        let (a, b) = (secret(1), secret(2));
        let h = headers(signature_header(&[&a, &b], "msg_1", NOW, b"body"));
        assert_eq!(h.signature.split(' ').count(), 2);
        for s in [&a, &b] {
            assert_eq!(verify(s, &h, b"body", NOW, DEFAULT_TOLERANCE_SECS), Ok(()));
        }
        assert_eq!(
            verify(&secret(3), &h, b"body", NOW, DEFAULT_TOLERANCE_SECS),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn tampered_payload_fails() {
        let s = secret(1);
        let h = headers(s.sign("msg_1", NOW, b"body"));
        assert_eq!(
            verify(&s, &h, b"bodY", NOW, DEFAULT_TOLERANCE_SECS),
            Err(VerifyError::InvalidSignature)
        );
        let mut h2 = h.clone();
        h2.id = "msg_2".into();
        assert_eq!(
            verify(&s, &h2, b"body", NOW, DEFAULT_TOLERANCE_SECS),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn tolerance_boundary_is_inclusive() {
        let s = secret(1);
        for ts in [NOW - 300, NOW + 300] {
            let h = WebhookHeaders {
                id: "m".into(),
                timestamp: ts.to_string(),
                signature: s.sign("m", ts, b""),
            };
            assert_eq!(verify(&s, &h, b"", NOW, 300), Ok(()));
        }
    }

    #[test]
    fn extreme_now_does_not_overflow() {
        let s = secret(1);
        let h = headers(s.sign("msg_1", NOW, b""));
        assert_eq!(verify(&s, &h, b"", i64::MIN, 300), Err(VerifyError::TimestampTooNew));
        assert_eq!(verify(&s, &h, b"", i64::MAX, 300), Err(VerifyError::TimestampTooOld));
    }

    #[test]
    fn timestamp_must_be_plain_digits() {
        for bad in ["", "+5", "-1", "1.0", " 1", "1e3", "99999999999999999999"] {
            assert_eq!(parse_timestamp(bad), Err(VerifyError::InvalidTimestamp), "{bad:?}");
        }
        assert_eq!(parse_timestamp("0"), Ok(0));
    }

    #[test]
    fn from_pairs_prefers_webhook_names_and_falls_back_to_svix() {
        let h = WebhookHeaders::from_pairs([
            ("SVIX-ID", "svix"),
            ("svix-timestamp", "1"),
            ("Svix-Signature", "s"),
            ("Webhook-Id", "std"),
            ("content-type", "application/json"),
        ])
        .unwrap();
        assert_eq!(
            (h.id.as_str(), h.timestamp.as_str(), h.signature.as_str()),
            ("std", "1", "s")
        );
        assert_eq!(
            WebhookHeaders::from_pairs([("webhook-id", "x"), ("webhook-signature", "s")]),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
        // A near-miss name must not match.
        assert_eq!(
            WebhookHeaders::from_pairs([("x-webhook-id", "x")]),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
    }
}
