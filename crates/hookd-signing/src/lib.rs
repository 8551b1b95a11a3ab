//! Standard Webhooks signing and verification: `v1` (HMAC-SHA256) and `v1a`
//! (ed25519).
//!
//! Implements both schemes of the
//! [Standard Webhooks](https://www.standardwebhooks.com/) spec. The signed
//! content is `{webhook-id}.{webhook-timestamp}.{raw body}` for both.
//!
//! - `v1` (symmetric): the key is the base64-decoded `whsec_` secret, and a
//!   signature is `v1,` + padded standard base64 of the HMAC-SHA256 tag.
//! - `v1a` (asymmetric): the sender holds an ed25519 key (`whsk_` + base64 of
//!   the 32-byte seed followed by the 32-byte public key), receivers only the
//!   public key (`whpk_` + base64 of 32 bytes), and a signature is `v1a,` +
//!   padded standard base64 of the 64-byte ed25519 signature.
//!
//! Several signatures may be sent space-separated, which is how key rotation
//! works; each verifier checks only entries of its own scheme.
//!
//! The crate does no IO and never reads the clock: [`verify`] and
//! [`verify_asymmetric`] take `now` as an argument so callers (and tests)
//! control time.
//!
//! # Modules
//!
//! - `secret`: [`Secret`] (generation, lenient and strict parsing, display)
//!   and [`SecretError`].
//! - `ed25519`: [`Ed25519Secret`] and [`PublicKey`].
//! - `key`: [`SigningKey`], an endpoint key of either scheme.
//! - `sign`: [`Secret::sign`], [`Ed25519Secret::sign`], [`SigningKey::sign`],
//!   [`signature_header`] and [`signature_header_for`].
//! - `verify`: [`WebhookHeaders`], [`verify`], [`verify_asymmetric`] and
//!   [`VerifyError`].
//!
//! # Example
//!
//! ```
//! use hookd_signing::{verify, Secret, WebhookHeaders, DEFAULT_TOLERANCE_SECS};
//!
//! let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let sig = secret.sign("msg_1", 1_700_000_000, b"{}");
//! let headers = WebhookHeaders::from_pairs([
//!     ("webhook-id", "msg_1"),
//!     ("webhook-timestamp", "1700000000"),
//!     ("webhook-signature", sig.as_str()),
//! ])
//! .unwrap();
//! verify(&secret, &headers, b"{}", 1_700_000_010, DEFAULT_TOLERANCE_SECS).unwrap();
//! ```
//!
//! The same with ed25519, where the receiver gets only the public key:
//!
//! ```
//! use hookd_signing::{verify_asymmetric, PublicKey, SigningKey, WebhookHeaders, DEFAULT_TOLERANCE_SECS};
//!
//! let key = SigningKey::generate_ed25519(&mut rand::rngs::OsRng);
//! let public = PublicKey::parse(&key.verification_key()).unwrap();
//! let headers = WebhookHeaders {
//!     id: "msg_1".into(),
//!     timestamp: "1700000000".into(),
//!     signature: key.sign("msg_1", 1_700_000_000, b"{}"),
//! };
//! assert!(headers.signature.starts_with("v1a,"));
//! verify_asymmetric(&public, &headers, b"{}", 1_700_000_010, DEFAULT_TOLERANCE_SECS).unwrap();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ed25519;
mod key;
mod secret;
mod sign;
mod verify;

pub use ed25519::{Ed25519Secret, PublicKey};
pub use key::SigningKey;
pub use secret::{Secret, SecretError};
pub use sign::{signature_header, signature_header_for};
pub use verify::{verify, verify_asymmetric, VerifyError, WebhookHeaders};

/// Prefix of the textual form of a [`Secret`] (`whsec_<base64>`).
pub const SECRET_PREFIX: &str = "whsec_";

/// Prefix of the textual form of an [`Ed25519Secret`] (`whsk_<base64>`).
pub const ED25519_SECRET_PREFIX: &str = "whsk_";

/// Prefix of the textual form of a [`PublicKey`] (`whpk_<base64>`).
pub const ED25519_PUBLIC_PREFIX: &str = "whpk_";

/// Default allowed clock skew for [`verify`], in seconds, in either direction.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
