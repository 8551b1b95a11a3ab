//! Secrets at rest: endpoint signing keys (current and rotated-out) and the values of sensitive
//! custom headers are sealed with XChaCha20-Poly1305 before they reach the database, and opened
//! when read. A sealed value is `hkenc1:<key id>:<base64(nonce ‖ ciphertext)>`; the key id (the
//! first 4 bytes of the key's SHA-256, hex) says which key sealed it, so several keys can be
//! known at once while a new one is rolled out. The associated data binds each value to its
//! endpoint and field, so a sealed value copied elsewhere does not open. Values without the
//! prefix are plaintext (written before a key was configured) and read as they are.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hookd_core::model::Endpoint;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{StoreError, StoreResult};

const PREFIX: &str = hookd_core::validate::SEALED_PREFIX;

/// The keys that seal and open secrets: the first seals, all of them open.
pub struct SecretBox {
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SecretBox").field("key_ids", &ids).finish()
    }
}

/// A new random key, base64 (for `secrets.main_key`).
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    STANDARD.encode(key)
}

impl SecretBox {
    /// From base64 keys (32 bytes each): `main` seals; `previous` only open.
    pub fn new(main: &str, previous: &[String]) -> Result<SecretBox, String> {
        let keys = std::iter::once(main)
            .chain(previous.iter().map(String::as_str))
            .map(|k| {
                let bytes = STANDARD
                    .decode(k.trim())
                    .map_err(|_| "a secrets key must be base64".to_string())?;
                if bytes.len() != 32 {
                    return Err(format!("a secrets key must be 32 bytes, not {}", bytes.len()));
                }
                let id = hookd_core::text::hex(&Sha256::digest(&bytes)[..4]);
                let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|e| e.to_string())?;
                Ok((id, cipher))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(SecretBox { keys })
    }

    /// The id of the sealing key.
    pub fn main_key_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Seals `plain` for `context` (endpoint id and field).
    pub fn seal(&self, plain: &str, context: &str) -> String {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{id}:{}", STANDARD.encode(out))
    }

    /// Opens a value sealed for `context`; plaintext passes through.
    pub fn open(&self, stored: &str, context: &str) -> StoreResult<String> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, data) = rest
            .split_once(':')
            .ok_or_else(|| StoreError::message("a sealed secret is malformed"))?;
        let cipher = self.keys.iter().find(|(k, _)| k == id).map(|(_, c)| c).ok_or_else(|| {
            StoreError::message(format!(
                "a secret is sealed with key {id}, which is not among secrets.main_key and secrets.previous_keys"
            ))
        })?;
        let bytes = STANDARD
            .decode(data)
            .map_err(|_| StoreError::message("a sealed secret is malformed"))?;
        if bytes.len() < 24 {
            return Err(StoreError::message("a sealed secret is malformed"));
        }
        let (nonce, sealed) = bytes.split_at(24);
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| StoreError::message("a sealed secret does not open (wrong key or tampered)"))?;
        String::from_utf8(plain).map_err(|_| StoreError::message("a sealed secret is not text"))
    }

    /// A copy of `e` with its keys and sensitive header values sealed.
    pub fn seal_endpoint(&self, e: &Endpoint) -> Endpoint {
        let mut out = e.clone();
        out.secret = self.seal(&e.secret, &format!("{}:secret", e.id));
        for old in &mut out.old_secrets {
            old.key = self.seal(&old.key, &format!("{}:old_secret", e.id));
        }
        for (name, value) in out.headers.iter_mut() {
            if hookd_core::validate::is_sensitive_header(name) {
                *value = self.seal(value, &format!("{}:header:{}", e.id, name.to_ascii_lowercase()));
            }
        }
        if let Some(credential) = out.destination.as_mut().and_then(|d| d.credential.as_mut()) {
            *credential = self.seal(credential, &format!("{}:credential", e.id));
        }
        out
    }

    /// Opens what [`SecretBox::seal_endpoint`] sealed.
    pub fn open_endpoint(&self, mut e: Endpoint) -> StoreResult<Endpoint> {
        e.secret = self.open(&e.secret, &format!("{}:secret", e.id))?;
        for old in &mut e.old_secrets {
            old.key = self.open(&old.key, &format!("{}:old_secret", e.id))?;
        }
        let id = e.id.clone();
        // By field, not by content: only the headers sealed on write are opened, so a value of
        // another header can never make the endpoint unreadable, whatever it holds.
        for (name, value) in e.headers.iter_mut() {
            if hookd_core::validate::is_sensitive_header(name) && value.starts_with(PREFIX) {
                *value = self.open(value, &format!("{id}:header:{}", name.to_ascii_lowercase()))?;
            }
        }
        if let Some(credential) = e.destination.as_mut().and_then(|d| d.credential.as_mut()) {
            *credential = self.open(credential, &format!("{id}:credential"))?;
        }
        Ok(e)
    }
}

/// Applies an optional box when writing.
pub fn seal_endpoint<'e>(secrets: Option<&SecretBox>, e: &'e Endpoint) -> std::borrow::Cow<'e, Endpoint> {
    match secrets {
        Some(b) => std::borrow::Cow::Owned(b.seal_endpoint(e)),
        None => std::borrow::Cow::Borrowed(e),
    }
}

/// Applies an optional box when reading; without a key, a sealed value is an error rather than
/// a wrong secret.
pub fn open_endpoint(secrets: Option<&SecretBox>, e: Endpoint) -> StoreResult<Endpoint> {
    match secrets {
        Some(b) => b.open_endpoint(e),
        None if e.secret.starts_with(PREFIX) => Err(StoreError::message(
            "endpoint secrets are sealed but secrets.main_key is not set",
        )),
        None => Ok(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_under_their_context_only() {
        let key = generate_key();
        let b = SecretBox::new(&key, &[]).unwrap();
        let sealed = b.seal("whsec_abc", "ep_1:secret");
        assert!(sealed.starts_with("hkenc1:"));
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(sealed, b.seal("whsec_abc", "ep_1:secret"), "a fresh nonce each time");
        assert_eq!(b.open(&sealed, "ep_1:secret").unwrap(), "whsec_abc");
        assert!(
            b.open(&sealed, "ep_2:secret").is_err(),
            "bound to its endpoint and field"
        );
        assert_eq!(b.open("whsec_plain", "ep_1:secret").unwrap(), "whsec_plain");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(b.open(&tampered, "ep_1:secret").is_err());
    }

    #[test]
    fn previous_keys_open_and_the_main_key_seals() {
        let (old, new) = (generate_key(), generate_key());
        let sealed_old = SecretBox::new(&old, &[]).unwrap().seal("s", "c");
        let rolled = SecretBox::new(&new, std::slice::from_ref(&old)).unwrap();
        assert_eq!(rolled.open(&sealed_old, "c").unwrap(), "s");
        let resealed = rolled.seal("s", "c");
        assert!(resealed.contains(rolled.main_key_id()));
        let only_new = SecretBox::new(&new, &[]).unwrap();
        let err = only_new.open(&sealed_old, "c").unwrap_err();
        assert!(format!("{err:?}").contains("not among"), "{err:?}");
        assert!(SecretBox::new("not base64!", &[]).is_err());
        assert!(SecretBox::new(&STANDARD.encode([0u8; 16]), &[]).is_err());
    }

    #[test]
    fn only_sensitive_headers_are_opened_so_other_values_never_break_a_read() {
        let b = SecretBox::new(&generate_key(), &[]).unwrap();
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let endpoint = Endpoint {
            id: "ep_1".into(),
            app_id: "app_1".into(),
            uid: None,
            url: "https://receiver.example/hooks".into(),
            description: String::new(),
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: Default::default(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            // Stored before input refused the marker: a plain value that merely looks sealed.
            headers: std::collections::BTreeMap::from([
                ("X-Note".to_string(), "hkenc1:not-really".to_string()),
                ("Authorization".to_string(), "Bearer s3cret".to_string()),
            ]),
            old_secrets: Vec::new(),
            failing_since: None,
            created_at: at,
            updated_at: at,
            destination: None,
        };
        let sealed = b.seal_endpoint(&endpoint);
        assert_eq!(
            sealed.headers["X-Note"], "hkenc1:not-really",
            "not sealed: not sensitive"
        );
        assert_ne!(sealed.headers["Authorization"], "Bearer s3cret");
        let opened = b.open_endpoint(sealed).expect("readable");
        assert_eq!(opened, endpoint);
    }
}
