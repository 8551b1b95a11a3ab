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

/// What a new token is for.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Environment it acts in.
    pub env: Environment,
    /// `Some(app_id)` for an application-scoped (consumer portal) token.
    pub app_id: Option<&'a str>,
    /// Name shown in listings.
    pub name: &'a str,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Creates and stores a token; returns its id and the secret (shown once).
pub async fn create_token(store: &dyn Store, new: NewToken<'_>, now: DateTime<Utc>) -> StoreResult<(String, String)> {
    let (secret, id) = {
        let mut rng = rand::thread_rng();
        let secret = format!("hk_{}_{}", new.env.as_str(), Alphanumeric.sample_string(&mut rng, 32));
        (secret, IdKind::Token.generate(now, &mut rng))
    };
    store
        .create_token(&TokenRecord {
            id: id.clone(),
            hash: hash_token(&secret),
            env: new.env,
            app_id: new.app_id.map(str::to_string),
            description: new.name.to_string(),
            created_at: now,
            expires_at: new.expires_at,
        })
        .await?;
    Ok((id, secret))
}

/// Creates and stores a new admin token for `env`; returns the secret (shown once).
pub async fn create_admin_token(
    store: &dyn Store,
    env: Environment,
    description: &str,
    now: DateTime<Utc>,
) -> StoreResult<String> {
    let new = NewToken {
        env,
        app_id: None,
        name: description,
        expires_at: None,
    };
    Ok(create_token(store, new, now).await?.1)
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
