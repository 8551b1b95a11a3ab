//! Producing `v1` (HMAC) and `v1a` (ed25519) signatures.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Ed25519Secret, Secret, SigningKey};

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

/// `{msg_id}.{timestamp}.{payload}` as one buffer. Unlike HMAC, pure Ed25519
/// hashes the message twice (for the nonce, then the challenge), so its API
/// needs the whole message at once and the payload has to be copied.
pub(crate) fn signed_content(msg_id: &str, timestamp: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(msg_id.len() + timestamp.len() + payload.len() + 2);
    for part in [msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", payload] {
        content.extend_from_slice(part);
    }
    content
}

impl Secret {
    /// Signs a message, returning `v1,<padded standard base64>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
        let tag = mac(self, msg_id, &timestamp.to_string(), payload);
        format!("v1,{}", STANDARD.encode(tag))
    }
}

impl Ed25519Secret {
    /// Signs a message, returning `v1a,<padded standard base64 of the 64-byte
    /// signature>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
        let content = signed_content(msg_id, &timestamp.to_string(), payload);
        format!("v1a,{}", STANDARD.encode(self.dalek().sign(&content).to_bytes()))
    }
}

impl SigningKey {
    /// Signs a message with whichever scheme the key uses: `v1,<base64>` for
    /// HMAC, `v1a,<base64 of the 64-byte signature>` for ed25519, over
    /// `{msg_id}.{timestamp}.{payload}` either way.
    pub fn sign(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
        match self {
            SigningKey::Hmac(secret) => secret.sign(msg_id, timestamp, payload),
            SigningKey::Ed25519(secret) => secret.sign(msg_id, timestamp, payload),
        }
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

/// Signature header value for several keys of either scheme (rotation, or
/// a move between HMAC and ed25519): each key's signature, joined by one
/// space.
pub fn signature_header_for(keys: &[&SigningKey], msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(msg_id, timestamp, payload))
        .collect::<Vec<_>>()
        .join(" ")
}
