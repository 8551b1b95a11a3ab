//! Producing `v1` signatures.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Secret;

/// HMAC-SHA256 tag over `{msg_id}.{timestamp}.{payload}`.
///
/// `timestamp` is a string because verification must authenticate the header
/// exactly as received rather than a re-formatted number.
pub(crate) fn mac(secret: &Secret, msg_id: &str, timestamp: &str, payload: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    // Fed piecewise so the payload is never copied into a joined buffer.
    for part in [msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", payload] {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl Secret {
    /// Signs a message, returning `v1,<padded standard base64>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
        let tag = mac(self, msg_id, &timestamp.to_string(), payload);
        format!("v1,{}", STANDARD.encode(tag))
    }
}

/// Signature header value for several keys: their v1 signatures joined by
/// one space (used during key rotation).
pub fn signature_header(secrets: &[&Secret], msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, payload))
        .collect::<Vec<_>>()
        .join(" ")
}
