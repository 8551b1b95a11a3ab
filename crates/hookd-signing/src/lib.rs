//! Standard Webhooks v1 (HMAC-SHA256) signing and verification.
//!
//! Implements the symmetric `v1` scheme of the
//! [Standard Webhooks](https://www.standardwebhooks.com/) spec: the signed
//! content is `{webhook-id}.{webhook-timestamp}.{raw body}`, the key is the
//! base64-decoded secret, and a signature is `v1,` + padded standard base64 of
//! the HMAC-SHA256 tag. Several signatures may be sent space-separated, which
//! is how key rotation works.
//!
//! The crate does no IO and never reads the clock: [`verify`] takes `now` as
//! an argument so callers (and tests) control time.
//!
//! # Modules
//!
//! - `secret`: [`Secret`] (generation, lenient and strict parsing, display)
//!   and [`SecretError`].
//! - `sign`: [`Secret::sign`] and [`signature_header`].
//! - `verify`: [`WebhookHeaders`], [`verify`] and [`VerifyError`].
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

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod secret;
mod sign;
mod verify;

pub use secret::{Secret, SecretError};
pub use sign::signature_header;
pub use verify::{verify, VerifyError, WebhookHeaders};

/// Prefix of the textual form of a [`Secret`] (`whsec_<base64>`).
pub const SECRET_PREFIX: &str = "whsec_";

/// Default allowed clock skew for [`verify`], in seconds, in either direction.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
