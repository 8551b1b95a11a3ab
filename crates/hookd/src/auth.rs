//! API tokens.
//!
//! A token is `hk_<env>_` followed by 32 random base62 characters. Only its SHA-256 is stored,
//! so a database leak does not leak usable tokens; the secret is shown once, when created.

use chrono::{DateTime, Utc};
use hookd_core::id::IdKind;
use hookd_core::model::Environment;
use hookd_store::{Store, StoreResult, TokenRecord};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

/// Hex SHA-256 of a token, the form stored and looked up.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates and stores a new admin token for `env`; returns the secret (shown once).
pub async fn create_admin_token(
    store: &dyn Store,
    env: Environment,
    description: &str,
    now: DateTime<Utc>,
) -> StoreResult<String> {
    let mut rng = rand::thread_rng();
    let secret = format!("hk_{}_{}", env.as_str(), Alphanumeric.sample_string(&mut rng, 32));
    store
        .create_token(&TokenRecord {
            id: IdKind::Token.generate(now, &mut rng),
            hash: hash_token(&secret),
            env,
            app_id: None,
            description: description.to_string(),
            created_at: now,
            expires_at: None,
        })
        .await?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
