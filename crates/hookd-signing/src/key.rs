//! [`SigningKey`]: an endpoint's key, whichever scheme it uses.

use std::fmt;

use rand::{CryptoRng, RngCore};

use crate::{Ed25519Secret, Secret, SecretError, ED25519_SECRET_PREFIX};

/// An endpoint's signing key: symmetric (`v1`, HMAC-SHA256) or asymmetric
/// (`v1a`, ed25519).
///
/// `Debug` is redacted; `Display` prints the storable form (`whsec_…` or
/// `whsk_…`), which round-trips through [`SigningKey::parse_endpoint_key`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SigningKey {
    /// A `v1` HMAC secret.
    Hmac(Secret),
    /// A `v1a` ed25519 key pair.
    Ed25519(Ed25519Secret),
}

impl SigningKey {
    /// Parses an endpoint key supplied via the API or read from storage:
    ///
    /// - `whsk_…`: an ed25519 key, see [`Ed25519Secret::parse`];
    /// - anything else (`whsec_…` or bare base64): an HMAC secret, see
    ///   [`Secret::parse_endpoint_secret`] (24..=64 bytes).
    ///
    /// The prefix alone decides: `_` is not in the standard base64 alphabet,
    /// so no bare HMAC secret can start with `whsk_`.
    pub fn parse_endpoint_key(s: &str) -> Result<SigningKey, SecretError> {
        if s.starts_with(ED25519_SECRET_PREFIX) {
            Ed25519Secret::parse(s).map(SigningKey::Ed25519)
        } else {
            Secret::parse_endpoint_secret(s).map(SigningKey::Hmac)
        }
    }

    /// Generates a fresh HMAC key, as [`Secret::generate`].
    pub fn generate_hmac<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> SigningKey {
        SigningKey::Hmac(Secret::generate(rng))
    }

    /// Generates a fresh ed25519 key pair, as [`Ed25519Secret::generate`].
    pub fn generate_ed25519<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> SigningKey {
        SigningKey::Ed25519(Ed25519Secret::generate(rng))
    }

    /// What a receiver needs to verify this key's signatures: for HMAC the
    /// secret itself (`whsec_…`), for ed25519 only the public key (`whpk_…`).
    pub fn verification_key(&self) -> String {
        match self {
            SigningKey::Hmac(secret) => secret.to_string(),
            SigningKey::Ed25519(secret) => secret.public_key().to_string(),
        }
    }
}

impl From<Secret> for SigningKey {
    fn from(secret: Secret) -> SigningKey {
        SigningKey::Hmac(secret)
    }
}

impl From<Ed25519Secret> for SigningKey {
    fn from(secret: Ed25519Secret) -> SigningKey {
        SigningKey::Ed25519(secret)
    }
}

/// The storable form: `whsec_…` or `whsk_…` (base64 of the 64-byte seed and
/// public key).
impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKey::Hmac(secret) => secret.fmt(f),
            SigningKey::Ed25519(secret) => secret.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use rand::rngs::StdRng;
    use rand::SeedableRng as _;

    use crate::{ED25519_PUBLIC_PREFIX, SECRET_PREFIX};

    fn b64_of_len(n: usize) -> String {
        STANDARD.encode(vec![7u8; n])
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(42)
    }

    #[test]
    fn parse_endpoint_key_accepts_hmac_and_ed25519_forms() {
        let hmac = b64_of_len(32);
        for text in [format!("whsec_{hmac}"), hmac] {
            let key = SigningKey::parse_endpoint_key(&text).unwrap();
            assert!(
                matches!(&key, SigningKey::Hmac(s) if s.as_bytes() == [7u8; 32]),
                "{text}"
            );
        }

        let ed = Ed25519Secret::generate(&mut rng());
        let pair = ed.to_string();
        let seed = format!("whsk_{}", STANDARD.encode(&STANDARD.decode(&pair[5..]).unwrap()[..32]));
        for text in [pair, seed] {
            assert_eq!(
                SigningKey::parse_endpoint_key(&text),
                Ok(SigningKey::Ed25519(ed.clone())),
                "{text}"
            );
        }
    }

    #[test]
    fn parse_endpoint_key_rejects_garbage_and_wrong_lengths() {
        let cases = [
            (String::new(), SecretError::Empty),
            ("whsk_".into(), SecretError::Empty),
            ("not base64!".into(), SecretError::InvalidBase64),
            ("whsk_not base64!".into(), SecretError::InvalidBase64),
            // A public key is not a signing key; its `_` makes it invalid base64.
            (
                "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
                SecretError::InvalidBase64,
            ),
            (
                format!("whsec_{}", b64_of_len(23)),
                SecretError::InvalidLength { len: 23 },
            ),
            (b64_of_len(65), SecretError::InvalidLength { len: 65 }),
            (
                format!("whsk_{}", b64_of_len(48)),
                SecretError::InvalidEd25519SecretLength { len: 48 },
            ),
            // The strict 24..=64 rule is for HMAC only: 16 bytes is short
            // for either scheme, but reported as ed25519 when prefixed so.
            (
                format!("whsk_{}", b64_of_len(16)),
                SecretError::InvalidEd25519SecretLength { len: 16 },
            ),
        ];
        for (text, err) in cases {
            assert_eq!(SigningKey::parse_endpoint_key(&text), Err(err), "{text:?}");
        }
    }

    #[test]
    fn display_round_trips_through_parse_endpoint_key() {
        for key in [
            SigningKey::generate_hmac(&mut rng()),
            SigningKey::generate_ed25519(&mut rng()),
        ] {
            assert_eq!(SigningKey::parse_endpoint_key(&key.to_string()).unwrap(), key);
        }
        let hmac = SigningKey::generate_hmac(&mut rng());
        assert!(matches!(&hmac, SigningKey::Hmac(s) if s.as_bytes().len() == 24));
        assert!(hmac.to_string().starts_with(SECRET_PREFIX));
        assert!(SigningKey::generate_ed25519(&mut rng())
            .to_string()
            .starts_with(ED25519_SECRET_PREFIX));
    }

    #[test]
    fn generate_accepts_dyn_rng() {
        // rand 0.8 has no object-safe CSPRNG trait, so callers define one.
        trait Csprng: RngCore + CryptoRng {}
        impl<T: RngCore + CryptoRng> Csprng for T {}
        let rng: &mut dyn Csprng = &mut rng();
        assert!(matches!(SigningKey::generate_hmac(rng), SigningKey::Hmac(_)));
        assert!(matches!(SigningKey::generate_ed25519(rng), SigningKey::Ed25519(_)));
    }

    #[test]
    fn verification_key_is_the_secret_for_hmac_and_the_public_key_for_ed25519() {
        let hmac = SigningKey::generate_hmac(&mut rng());
        assert_eq!(hmac.verification_key(), hmac.to_string());
        assert!(hmac.verification_key().starts_with(SECRET_PREFIX));

        let ed = Ed25519Secret::generate(&mut rng());
        let key = SigningKey::from(ed.clone());
        let public = key.verification_key();
        assert!(public.starts_with(ED25519_PUBLIC_PREFIX));
        assert_eq!(public, ed.public_key().to_string());
        assert_ne!(public, key.to_string());
    }

    #[test]
    fn debug_never_prints_key() {
        let hmac = SigningKey::generate_hmac(&mut rng());
        let ed = SigningKey::generate_ed25519(&mut rng());
        assert_eq!(format!("{hmac:?}"), "Hmac(Secret(whsec_***))");
        assert_eq!(format!("{ed:?}"), "Ed25519(Ed25519Secret(whsk_***))");
    }
}
