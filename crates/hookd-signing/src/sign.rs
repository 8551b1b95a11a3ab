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

/// Length of `v1,` and the padded base64 of a 32-byte tag.
const V1_LEN: usize = 3 + 44;
/// Length of `v1a,` and the padded base64 of a 64-byte signature.
const V1A_LEN: usize = 4 + 88;

impl Secret {
    /// Signs a message, returning `v1,<padded standard base64>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
        let mut signature = String::with_capacity(V1_LEN);
        self.sign_into(msg_id, &timestamp.to_string(), payload, &mut signature);
        signature
    }

    /// Appends the signature to `out`; `timestamp` as it is sent.
    fn sign_into(&self, msg_id: &str, timestamp: &str, payload: &[u8], out: &mut String) {
        out.push_str("v1,");
        STANDARD.encode_string(mac(self, msg_id, timestamp, payload), out);
    }
}

impl Ed25519Secret {
    /// Signs a message, returning `v1a,<padded standard base64 of the 64-byte
    /// signature>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
        let mut signature = String::with_capacity(V1A_LEN);
        self.sign_into(msg_id, &timestamp.to_string(), payload, &mut signature);
        signature
    }

    /// Appends the signature to `out`; `timestamp` as it is sent.
    fn sign_into(&self, msg_id: &str, timestamp: &str, payload: &[u8], out: &mut String) {
        let content = signed_content(msg_id, timestamp, payload);
        out.push_str("v1a,");
        STANDARD.encode_string(self.dalek().sign(&content).to_bytes(), out);
    }
}

impl SigningKey {
    /// Signs a message with whichever scheme the key uses: `v1,<base64>` for
    /// HMAC, `v1a,<base64 of the 64-byte signature>` for ed25519, over
    /// `{msg_id}.{timestamp}.{payload}` either way.
    pub fn sign(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
        let mut signature = String::with_capacity(self.signature_len());
        self.sign_into(msg_id, &timestamp.to_string(), payload, &mut signature);
        signature
    }

    fn sign_into(&self, msg_id: &str, timestamp: &str, payload: &[u8], out: &mut String) {
        match self {
            SigningKey::Hmac(secret) => secret.sign_into(msg_id, timestamp, payload, out),
            SigningKey::Ed25519(secret) => secret.sign_into(msg_id, timestamp, payload, out),
        }
    }

    /// Length of this key's signature, its scheme's prefix included.
    fn signature_len(&self) -> usize {
        match self {
            SigningKey::Hmac(_) => V1_LEN,
            SigningKey::Ed25519(_) => V1A_LEN,
        }
    }
}

/// Signature header value for several keys: their v1 signatures joined by
/// one space (used during key rotation).
pub fn signature_header(secrets: &[&Secret], msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    joined(secrets, secrets.len() * (V1_LEN + 1), |secret, out| {
        secret.sign_into(msg_id, &timestamp, payload, out)
    })
}

/// Signature header value for several keys of either scheme (rotation, or
/// a move between HMAC and ed25519): each key's signature, joined by one
/// space.
///
/// Built in one buffer, the timestamp formatted once: this runs for every
/// delivery attempt.
pub fn signature_header_for(keys: &[&SigningKey], msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let capacity = keys.iter().map(|k| k.signature_len() + 1).sum();
    joined(keys, capacity, |key, out| {
        key.sign_into(msg_id, &timestamp, payload, out)
    })
}

/// Each key's signature appended by `sign`, one space between them, in one
/// buffer of `capacity`.
fn joined<K>(keys: &[K], capacity: usize, mut sign: impl FnMut(&K, &mut String)) -> String {
    let mut header = String::with_capacity(capacity);
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            header.push(' ');
        }
        sign(key, &mut header);
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header is built in one buffer sized from these lengths: each is
    /// exactly what a signature of its scheme takes, prefix included.
    #[test]
    fn signature_lengths_are_what_each_scheme_produces() {
        let hmac = SigningKey::Hmac(Secret::from_bytes(vec![7; 24]).unwrap());
        let ed = SigningKey::generate_ed25519(&mut rand::thread_rng());
        for (key, len) in [(&hmac, V1_LEN), (&ed, V1A_LEN)] {
            assert_eq!(key.signature_len(), len);
            assert_eq!(key.sign("msg_1", 1_700_000_000, b"{}").len(), len);
        }
        let header = signature_header_for(&[&hmac, &ed, &hmac], "msg_1", 1_700_000_000, b"{}");
        assert_eq!(header.len(), V1_LEN + 1 + V1A_LEN + 1 + V1_LEN);
        assert_eq!(header.matches(' ').count(), 2);
    }
}
