//! Signing keys: generation, parsing and (redacted) formatting.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::SECRET_PREFIX;

/// Length in bytes of secrets made by [`Secret::generate`].
const GENERATED_LEN: usize = 24;
/// Accepted decoded lengths for [`Secret::parse_endpoint_secret`]: at least
/// 192 bits of key, and not more than one SHA-256 block so keys are never
/// pre-hashed by HMAC.
const ENDPOINT_SECRET_LEN: std::ops::RangeInclusive<usize> = 24..=64;

/// Lenient decoder for keys: keys are pasted by humans and produced by
/// other libraries (the Python reference pads before decoding and ignores
/// non-zero trailing bits), so accept both padded and unpadded input.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// An HMAC signing key.
///
/// `Debug` is redacted; `Display` prints the full `whsec_…` form, so only
/// format with `{}` where revealing the key is intended.
#[derive(Clone)]
pub struct Secret {
    bytes: Vec<u8>,
}

/// Why a secret was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// The secret (after removing any `whsec_` prefix) has no content.
    #[error("secret is empty")]
    Empty,
    /// The secret is not valid standard-alphabet base64.
    #[error("secret is not valid base64")]
    InvalidBase64,
    /// The decoded secret has an unacceptable length.
    #[error("secret must decode to 24..=64 bytes, got {len}")]
    InvalidLength {
        /// Decoded length in bytes.
        len: usize,
    },
    /// An ed25519 secret key (`whsk_…`) decodes to neither a 32-byte seed nor
    /// a 64-byte seed-and-public-key pair.
    #[error("ed25519 secret key must decode to 32 or 64 bytes, got {len}")]
    InvalidEd25519SecretLength {
        /// Decoded length in bytes.
        len: usize,
    },
    /// The public half of a 64-byte ed25519 secret key is not the public key
    /// of its seed (a corrupted or spliced key).
    #[error("ed25519 secret key's public half does not match its seed")]
    Ed25519KeyMismatch,
    /// An ed25519 public key (`whpk_…`) does not decode to 32 bytes.
    #[error("ed25519 public key must decode to 32 bytes, got {len}")]
    InvalidEd25519PublicLength {
        /// Decoded length in bytes.
        len: usize,
    },
    /// The 32 bytes are not a usable ed25519 public key: not a curve point,
    /// or a small-order point that no honest key pair produces.
    #[error("not a valid ed25519 public key")]
    InvalidEd25519PublicKey,
}

/// Strips an optional `prefix`, then decodes the rest with [`LENIENT`];
/// shared by every key type so they agree on what input is accepted.
pub(crate) fn decode_key(s: &str, prefix: &str) -> Result<Vec<u8>, SecretError> {
    let b64 = s.strip_prefix(prefix).unwrap_or(s);
    if b64.is_empty() {
        return Err(SecretError::Empty);
    }
    LENIENT.decode(b64).map_err(|_| SecretError::InvalidBase64)
}

impl Secret {
    /// Generates a fresh 24-byte secret from `rng` (use a CSPRNG such as
    /// `rand::rngs::OsRng` or `rand::thread_rng()`).
    pub fn generate<R: rand::RngCore + ?Sized>(rng: &mut R) -> Secret {
        let mut bytes = vec![0u8; GENERATED_LEN];
        rng.fill_bytes(&mut bytes);
        Secret { bytes }
    }

    /// Wraps raw key bytes; fails with [`SecretError::Empty`] if empty.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Secret, SecretError> {
        if bytes.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret { bytes })
    }

    /// Lenient parse for verification: optional `whsec_` prefix, standard
    /// base64 padded or unpadded; any non-empty length.
    pub fn parse(s: &str) -> Result<Secret, SecretError> {
        Secret::from_bytes(decode_key(s, SECRET_PREFIX)?)
    }

    /// Strict parse for endpoint secrets supplied via the API: as
    /// [`Secret::parse`], plus the decoded length must be 24..=64 bytes.
    pub fn parse_endpoint_secret(s: &str) -> Result<Secret, SecretError> {
        let secret = Secret::parse(s)?;
        let len = secret.bytes.len();
        if !ENDPOINT_SECRET_LEN.contains(&len) {
            return Err(SecretError::InvalidLength { len });
        }
        Ok(secret)
    }

    /// The raw key bytes (the HMAC key).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

// Manual impl rather than derive so comparing keys does not leak, via timing,
// how long a common prefix two keys share.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for Secret {}

/// `whsec_` followed by padded standard base64 of the key; round-trips
/// through [`Secret::parse`].
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SECRET_PREFIX}{}", STANDARD.encode(&self.bytes))
    }
}

/// Redacted as `Secret(whsec_***)` so keys never end up in logs via `{:?}`.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({SECRET_PREFIX}***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    fn b64_of_len(n: usize) -> String {
        STANDARD.encode(vec![7u8; n])
    }

    #[test]
    fn generate_gives_24_bytes_and_display_round_trips() {
        let secret = Secret::generate(&mut rand::thread_rng());
        assert_eq!(secret.as_bytes().len(), 24);
        let text = secret.to_string();
        assert!(text.starts_with(SECRET_PREFIX));
        assert_eq!(Secret::parse(&text).unwrap(), secret);
        assert_eq!(Secret::parse_endpoint_secret(&text).unwrap(), secret);
    }

    #[test]
    fn generate_accepts_dyn_rng() {
        let rng: &mut dyn rand::RngCore = &mut StepRng::new(1, 1);
        assert_eq!(Secret::generate(rng).as_bytes().len(), 24);
    }

    #[test]
    fn endpoint_secret_length_bounds() {
        for (len, ok) in [(23, false), (24, true), (64, true), (65, false)] {
            let res = Secret::parse_endpoint_secret(&format!("whsec_{}", b64_of_len(len)));
            match ok {
                true => assert_eq!(res.unwrap().as_bytes().len(), len),
                false => assert_eq!(res, Err(SecretError::InvalidLength { len })),
            }
        }
        // The lenient parser accepts any non-empty length.
        assert!(Secret::parse(&b64_of_len(1)).is_ok());
        assert!(Secret::parse(&b64_of_len(65)).is_ok());
    }

    #[test]
    fn parse_errors() {
        assert_eq!(Secret::parse(""), Err(SecretError::Empty));
        assert_eq!(Secret::parse("whsec_"), Err(SecretError::Empty));
        assert_eq!(Secret::parse("not base64!"), Err(SecretError::InvalidBase64));
        assert_eq!(Secret::from_bytes(Vec::new()), Err(SecretError::Empty));
    }

    #[test]
    fn debug_never_prints_key() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let debug = format!("{secret:?} {:?}", Some(&secret));
        assert_eq!(format!("{secret:?}"), "Secret(whsec_***)");
        assert!(!debug.contains("MfKQ"));
    }
}
