//! Checking received webhooks.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::Signature;
use subtle::{Choice, ConstantTimeEq};

use crate::sign::{mac, signed_content};
use crate::{PublicKey, Secret};

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
    /// No signature of the verifier's scheme in the header matches (`v1` for
    /// [`verify`], `v1a` for [`verify_asymmetric`]).
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
    check_timestamp(&headers.timestamp, now, tolerance_secs)?;

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

/// Verifies `v1a` (ed25519) signatures against `key`, with the same
/// timestamp rules and the same order of checks as [`verify`]: every `v1a,`
/// entry in the space-separated list is tried; other versions and
/// undecodable entries are ignored.
///
/// Uses ed25519-dalek's `verify_strict`: besides rejecting a non-canonical
/// `S` as RFC 8032 does, it rejects small-order `R` and small-order keys,
/// the cases where one key can have several valid signatures for a message
/// (or one signature be valid under several keys).
pub fn verify_asymmetric(
    key: &PublicKey,
    headers: &WebhookHeaders,
    payload: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    check_timestamp(&headers.timestamp, now, tolerance_secs)?;

    let content = signed_content(&headers.id, &headers.timestamp, payload);
    // Short-circuiting is fine here, unlike for HMAC: the key, message and
    // signatures are all public, so timing reveals nothing worth hiding.
    let matched = headers
        .signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1a,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .filter_map(|bytes| Signature::from_slice(&bytes).ok())
        .any(|sig| key.dalek().verify_strict(&content, &sig).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

/// Rejects a `webhook-timestamp` that is malformed or further than
/// `tolerance_secs` from `now` in either direction; shared by both schemes
/// so they cannot drift apart.
fn check_timestamp(timestamp: &str, now: i64, tolerance_secs: i64) -> Result<(), VerifyError> {
    let ts = parse_timestamp(timestamp)?;
    // Saturating: `now` is caller-supplied and may be anything.
    if now.saturating_sub(ts) > tolerance_secs {
        return Err(VerifyError::TimestampTooOld);
    }
    if ts.saturating_sub(now) > tolerance_secs {
        return Err(VerifyError::TimestampTooNew);
    }
    Ok(())
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
    use crate::{signature_header, signature_header_for, Ed25519Secret, SigningKey, DEFAULT_TOLERANCE_SECS};
    use rand::rngs::StdRng;
    use rand::SeedableRng as _;

    const NOW: i64 = 1_700_000_000;

    fn secret(n: u8) -> Secret {
        Secret::from_bytes(vec![n; 32]).unwrap()
    }

    fn ed_key(seed: u64) -> Ed25519Secret {
        Ed25519Secret::generate(&mut StdRng::seed_from_u64(seed))
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

    #[test]
    fn ed25519_round_trip_with_generated_key() {
        let key = ed_key(1);
        let sig = key.sign("msg_1", NOW, b"body");
        assert!(sig.starts_with("v1a,"));
        // 64 signature bytes are 88 padded base64 characters.
        assert_eq!(sig.len(), "v1a,".len() + 88);
        let public = PublicKey::parse(&key.public_key().to_string()).unwrap();
        assert_eq!(
            verify_asymmetric(&public, &headers(sig), b"body", NOW, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
    }

    #[test]
    fn ed25519_rejects_tampering_and_other_keys() {
        let key = ed_key(1);
        let public = key.public_key();
        let h = headers(key.sign("msg_1", NOW, b"body"));
        let check = |h: &WebhookHeaders, payload: &[u8], public: &PublicKey| {
            verify_asymmetric(public, h, payload, NOW, DEFAULT_TOLERANCE_SECS)
        };
        assert_eq!(check(&h, b"bodY", &public), Err(VerifyError::InvalidSignature));
        let mut other_id = h.clone();
        other_id.id = "msg_2".into();
        assert_eq!(check(&other_id, b"body", &public), Err(VerifyError::InvalidSignature));
        let mut other_ts = h.clone();
        other_ts.timestamp = (NOW + 1).to_string();
        assert_eq!(check(&other_ts, b"body", &public), Err(VerifyError::InvalidSignature));
        assert_eq!(
            check(&h, b"body", &ed_key(2).public_key()),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn ed25519_follows_the_same_timestamp_rules_as_hmac() {
        let key = ed_key(1);
        let public = key.public_key();
        for (ts, expected) in [
            (NOW - 300, Ok(())),
            (NOW + 300, Ok(())),
            (NOW - 301, Err(VerifyError::TimestampTooOld)),
            (NOW + 301, Err(VerifyError::TimestampTooNew)),
        ] {
            let h = WebhookHeaders {
                id: "m".into(),
                timestamp: ts.to_string(),
                signature: key.sign("m", ts, b""),
            };
            assert_eq!(verify_asymmetric(&public, &h, b"", NOW, 300), expected, "{ts}");
        }
        let mut h = headers(key.sign("msg_1", NOW, b""));
        h.timestamp = "+1700000000".into();
        assert_eq!(
            verify_asymmetric(&public, &h, b"", NOW, 300),
            Err(VerifyError::InvalidTimestamp)
        );
    }

    #[test]
    fn hmac_v1_entries_are_ignored_by_verify_asymmetric() {
        let public = ed_key(1).public_key();
        let h = headers(secret(1).sign("msg_1", NOW, b"body"));
        assert_eq!(
            verify_asymmetric(&public, &h, b"body", NOW, DEFAULT_TOLERANCE_SECS),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn ed25519_v1a_entries_are_ignored_by_hmac_verify() {
        let h = headers(ed_key(1).sign("msg_1", NOW, b"body"));
        assert_eq!(
            verify(&secret(1), &h, b"body", NOW, DEFAULT_TOLERANCE_SECS),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn header_with_v1_and_v1a_entries_verifies_with_both_verifiers() {
        let (hmac, ed) = (secret(1), ed_key(1));
        let keys = [SigningKey::from(hmac.clone()), SigningKey::from(ed.clone())];
        let h = headers(signature_header_for(&[&keys[0], &keys[1]], "msg_1", NOW, b"body"));
        let entries: Vec<&str> = h.signature.split(' ').collect();
        assert!(entries.len() == 2 && entries[0].starts_with("v1,") && entries[1].starts_with("v1a,"));
        assert_eq!(verify(&hmac, &h, b"body", NOW, DEFAULT_TOLERANCE_SECS), Ok(()));
        assert_eq!(
            verify_asymmetric(&ed.public_key(), &h, b"body", NOW, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
        // HMAC-only keys give exactly what the v1-only function gives.
        let hmac_key = SigningKey::Hmac(hmac.clone());
        assert_eq!(
            signature_header_for(&[&hmac_key], "msg_1", NOW, b"body"),
            signature_header(&[&hmac], "msg_1", NOW, b"body")
        );
    }

    #[test]
    fn undecodable_v1a_entries_are_skipped_not_fatal() {
        let key = ed_key(1);
        let valid = key.sign("msg_1", NOW, b"body");
        let short = format!("v1a,{}", STANDARD.encode([0u8; 63]));
        let h = headers(format!("v1a,!!! {short} v1a, {valid}"));
        assert_eq!(
            verify_asymmetric(&key.public_key(), &h, b"body", NOW, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
    }

    #[test]
    fn non_canonical_ed25519_signature_is_rejected() {
        // S + L (L the group order) is the same signature in a second
        // encoding, which lax (pre-RFC 8032) verifiers accept; accepting it
        // would let anyone produce a second valid header without the key.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let key = ed_key(3);
        let sig = STANDARD.decode(&key.sign("msg_1", NOW, b"body")[4..]).unwrap();
        let mut malleated = sig.clone();
        let mut carry = 0u16;
        for (byte, l) in malleated[32..].iter_mut().zip(L) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "S + L must still fit in 32 bytes for this test");
        for (bytes, expected) in [(sig, Ok(())), (malleated, Err(VerifyError::InvalidSignature))] {
            let h = headers(format!("v1a,{}", STANDARD.encode(&bytes)));
            assert_eq!(
                verify_asymmetric(&key.public_key(), &h, b"body", NOW, DEFAULT_TOLERANCE_SECS),
                expected
            );
        }
    }

    /// RFC 8032 section 7.1 test 1 key, signing fixed content. The expected
    /// signature was computed independently (Python `cryptography`, over the
    /// literal bytes `msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}`);
    /// Ed25519 is deterministic, so it must match exactly.
    #[test]
    fn rfc8032_key_signs_and_verifies_known_answer() {
        const WHSK: &str =
            "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==";
        const WHPK: &str = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
        const EXPECTED: &str =
            "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw==";
        let (id, ts, payload) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );

        let key = SigningKey::parse_endpoint_key(WHSK).unwrap();
        assert_eq!(key.verification_key(), WHPK);
        let sig = key.sign(id, ts, payload);
        assert_eq!(sig, EXPECTED);

        let public = PublicKey::parse(WHPK).unwrap();
        let h = WebhookHeaders {
            id: id.into(),
            timestamp: ts.to_string(),
            signature: sig,
        };
        assert_eq!(
            verify_asymmetric(&public, &h, payload, ts, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
    }
}
