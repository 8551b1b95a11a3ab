//! Ed25519 keys for the asymmetric `v1a` scheme: generation, parsing and
//! formatting.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{KEYPAIR_LENGTH, PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH};
use rand::{CryptoRng, RngCore};

use crate::secret::decode_key;
use crate::{SecretError, ED25519_PUBLIC_PREFIX, ED25519_SECRET_PREFIX};

/// An ed25519 signing key (the secret seed, with its public key).
///
/// `Debug` is redacted; `Display` prints the full `whsk_…` form (base64 of
/// the seed followed by the public key, as Svix stores them), so only format
/// with `{}` where revealing the key is intended.
// Derived equality is constant time: ed25519-dalek compares seeds with
// `subtle`. Its key is also wiped from memory on drop (`zeroize` feature).
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519Secret(ed25519_dalek::SigningKey);

/// A public key for verifying `v1a` signatures.
///
/// `Display` prints `whpk_` followed by padded standard base64 of the 32 key
/// bytes; round-trips through [`PublicKey::parse`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl Ed25519Secret {
    /// Generates a fresh key pair from `rng` (use a CSPRNG such as
    /// `rand::rngs::OsRng` or `rand::thread_rng()`).
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Ed25519Secret {
        // What `ed25519_dalek::SigningKey::generate` does, done here because
        // its bound (rand_core's `CryptoRngCore`) excludes unsized RNGs such
        // as `&mut dyn` ones, which `Secret::generate` accepts.
        let mut seed = [0u8; SECRET_KEY_LENGTH];
        rng.fill_bytes(&mut seed);
        Ed25519Secret(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Parses an optional `whsk_` prefix followed by base64 (padded or not)
    /// of either the 64-byte seed-and-public-key pair or the bare 32-byte
    /// seed. In the 64-byte form the public half must match the seed.
    pub fn parse(s: &str) -> Result<Ed25519Secret, SecretError> {
        let bytes = decode_key(s, ED25519_SECRET_PREFIX)?;
        let key = match bytes.len() {
            KEYPAIR_LENGTH => {
                let pair = bytes.as_slice().try_into().expect("length checked");
                // Verifying the public half catches keys corrupted or
                // spliced in storage before they sign anything unverifiable.
                ed25519_dalek::SigningKey::from_keypair_bytes(pair).map_err(|_| SecretError::Ed25519KeyMismatch)?
            }
            SECRET_KEY_LENGTH => {
                ed25519_dalek::SigningKey::from_bytes(bytes.as_slice().try_into().expect("length checked"))
            }
            len => return Err(SecretError::InvalidEd25519SecretLength { len }),
        };
        Ok(Ed25519Secret(key))
    }

    /// The public key that verifies this key's signatures.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub(crate) fn dalek(&self) -> &ed25519_dalek::SigningKey {
        &self.0
    }
}

/// `whsk_` followed by padded standard base64 of the 64-byte seed and public
/// key; round-trips through [`Ed25519Secret::parse`].
impl fmt::Display for Ed25519Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ED25519_SECRET_PREFIX}{}",
            STANDARD.encode(self.0.to_keypair_bytes())
        )
    }
}

/// Redacted as `Ed25519Secret(whsk_***)` so keys never end up in logs via
/// `{:?}`.
impl fmt::Debug for Ed25519Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Secret({ED25519_SECRET_PREFIX}***)")
    }
}

impl PublicKey {
    /// Parses an optional `whpk_` prefix followed by base64 (padded or not)
    /// of the 32-byte key.
    ///
    /// Small-order points are rejected here even though
    /// [`verify_asymmetric`](crate::verify_asymmetric) would never accept a
    /// signature for them: failing at configuration time names the problem.
    pub fn parse(s: &str) -> Result<PublicKey, SecretError> {
        let bytes = decode_key(s, ED25519_PUBLIC_PREFIX)?;
        let bytes: &[u8; PUBLIC_KEY_LENGTH] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::InvalidEd25519PublicLength { len: bytes.len() })?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| SecretError::InvalidEd25519PublicKey)?;
        if key.is_weak() {
            return Err(SecretError::InvalidEd25519PublicKey);
        }
        Ok(PublicKey(key))
    }

    /// The 32 raw key bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LENGTH] {
        self.0.as_bytes()
    }

    pub(crate) fn dalek(&self) -> &ed25519_dalek::VerifyingKey {
        &self.0
    }
}

/// `whpk_` followed by padded standard base64 of the key.
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ED25519_PUBLIC_PREFIX}{}", STANDARD.encode(self.0.as_bytes()))
    }
}

/// Prints the full key (it is public) as `PublicKey(whpk_…)`, which is more
/// useful than ed25519-dalek's curve-point dump.
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;
    use rand::rngs::StdRng;
    use rand::SeedableRng as _;

    /// RFC 8032 section 7.1, test 1.
    const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC_EMPTY_MESSAGE_SIG: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                                         5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn whsk(bytes: &[u8]) -> String {
        format!("{ED25519_SECRET_PREFIX}{}", STANDARD.encode(bytes))
    }

    #[test]
    fn rfc8032_seed_gives_the_rfc_public_key_and_signature() {
        let seed = hex(RFC_SEED);
        let key = Ed25519Secret::parse(&whsk(&seed)).unwrap();
        assert_eq!(key.public_key().as_bytes().as_slice(), hex(RFC_PUBLIC));
        // Proves the parsed key is exactly the RFC key, not merely consistent.
        assert_eq!(key.dalek().sign(b"").to_bytes().as_slice(), hex(RFC_EMPTY_MESSAGE_SIG));
    }

    #[test]
    fn seed_and_keypair_forms_parse_to_the_same_key() {
        let seed = hex(RFC_SEED);
        let pair = [seed.clone(), hex(RFC_PUBLIC)].concat();
        let from_seed = Ed25519Secret::parse(&whsk(&seed)).unwrap();
        let from_pair = Ed25519Secret::parse(&whsk(&pair)).unwrap();
        assert_eq!(from_seed, from_pair);
        // Prefix optional, padding optional.
        let unpadded = STANDARD.encode(&pair).trim_end_matches('=').to_owned();
        assert_eq!(Ed25519Secret::parse(&unpadded).unwrap(), from_pair);
        // Display always writes the 64-byte form.
        assert_eq!(from_seed.to_string(), whsk(&pair));
    }

    #[test]
    fn generated_key_display_round_trips() {
        let key = Ed25519Secret::generate(&mut StdRng::seed_from_u64(7));
        let text = key.to_string();
        assert!(text.starts_with(ED25519_SECRET_PREFIX));
        assert_eq!(Ed25519Secret::parse(&text).unwrap(), key);
        assert_ne!(Ed25519Secret::generate(&mut StdRng::seed_from_u64(8)), key);

        let public = key.public_key();
        assert!(public.to_string().starts_with(ED25519_PUBLIC_PREFIX));
        assert_eq!(PublicKey::parse(&public.to_string()).unwrap(), public);
    }

    #[test]
    fn keypair_with_a_foreign_public_half_is_rejected() {
        let other = Ed25519Secret::generate(&mut StdRng::seed_from_u64(1)).public_key();
        let spliced = [hex(RFC_SEED), other.as_bytes().to_vec()].concat();
        assert_eq!(
            Ed25519Secret::parse(&whsk(&spliced)),
            Err(SecretError::Ed25519KeyMismatch)
        );
    }

    #[test]
    fn secret_key_wrong_lengths_and_garbage_are_rejected() {
        for len in [1, 31, 33, 63, 65] {
            assert_eq!(
                Ed25519Secret::parse(&whsk(&vec![7; len])),
                Err(SecretError::InvalidEd25519SecretLength { len })
            );
        }
        assert_eq!(Ed25519Secret::parse("whsk_"), Err(SecretError::Empty));
        assert_eq!(
            Ed25519Secret::parse("whsk_not base64!"),
            Err(SecretError::InvalidBase64)
        );
    }

    #[test]
    fn public_key_parse_rejects_bad_lengths_and_unusable_points() {
        let b64 = STANDARD.encode(hex(RFC_PUBLIC));
        assert_eq!(PublicKey::parse(&b64), PublicKey::parse(&format!("whpk_{b64}")));
        assert_eq!(PublicKey::parse(&b64).unwrap().as_bytes().as_slice(), hex(RFC_PUBLIC));
        for len in [31, 33, 64] {
            let text = format!("whpk_{}", STANDARD.encode(vec![9; len]));
            assert_eq!(
                PublicKey::parse(&text),
                Err(SecretError::InvalidEd25519PublicLength { len })
            );
        }
        // y = 2 has no x on the curve, so the point does not decompress.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        // y = 1 is the identity point: small order, so rejected as weak.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for bytes in [off_curve, identity] {
            let text = format!("whpk_{}", STANDARD.encode(bytes));
            assert_eq!(PublicKey::parse(&text), Err(SecretError::InvalidEd25519PublicKey));
        }
        assert_eq!(PublicKey::parse("whpk_"), Err(SecretError::Empty));
        assert_eq!(PublicKey::parse("whpk_%%%"), Err(SecretError::InvalidBase64));
    }

    #[test]
    fn debug_never_prints_the_secret_key() {
        let key = Ed25519Secret::parse(&whsk(&hex(RFC_SEED))).unwrap();
        assert_eq!(format!("{key:?}"), "Ed25519Secret(whsk_***)");
        let public = key.public_key();
        assert_eq!(format!("{public:?}"), format!("PublicKey({public})"));
    }
}
