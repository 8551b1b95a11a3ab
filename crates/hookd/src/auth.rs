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
    hookd_core::text::hex(&digest)
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

/// Most portal links and portal sessions one application keeps; opening more ends the oldest.
pub const PORTAL_SESSIONS: usize = 256;

/// A consumer-portal link to create.
#[derive(Debug, Clone)]
pub struct PortalLink<'a> {
    /// Environment of the application.
    pub env: Environment,
    /// The one application the portal shows.
    pub app_id: &'a str,
    /// What the portal may do ([`portal_grants`]).
    pub grants: &'a [Capability],
    /// Svix `readOnly`, as asked.
    pub read_only: bool,
    /// Svix `sessionId`, which `expire-all` can end.
    pub session_id: Option<&'a str>,
    /// When the link, and any session opened from it, stops working.
    pub expires_at: DateTime<Utc>,
}

/// The stored hash of a portal link's one-time code. It differs from the hash of the same
/// string as a session cookie, so a code never works as a cookie nor a cookie as a code.
pub fn portal_link_hash(code: &str) -> String {
    hash_token(&format!("portal link {code}"))
}

/// Stores a portal link and returns its one-time code (`hkpl_…`), for the URL. Opening the link
/// exchanges the code for a session cookie and deletes it.
pub async fn create_portal_link(store: &dyn Store, link: PortalLink<'_>, now: DateTime<Utc>) -> StoreResult<String> {
    let (code, id) = {
        let mut rng = rand::thread_rng();
        (
            format!("hkpl_{}", Alphanumeric.sample_string(&mut rng, 43)),
            IdKind::Session.generate(now, &mut rng),
        )
    };
    let record = hookd_store::SessionRecord {
        id,
        hash: portal_link_hash(&code),
        env: link.env,
        app_id: Some(link.app_id.to_string()),
        capabilities: link.grants.iter().map(|c| c.as_str().to_string()).collect(),
        read_only: link.read_only,
        portal_session: link.session_id.map(str::to_string),
        created_at: now,
        expires_at: link.expires_at,
    };
    store.create_session(&record, PORTAL_SESSIONS).await?;
    Ok(code)
}

/// What a consumer-portal session may do, by Svix's `AppPortalCapability` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    /// See the application's endpoints, messages, attempts and the event catalog.
    ViewBase,
    /// Reveal an endpoint's signing secret.
    ViewEndpointSecret,
    /// Rotate an endpoint's signing secret (and so see it).
    ManageEndpointSecret,
    /// Resend messages, recover failed deliveries and send test events.
    CreateAttempts,
    /// Add, edit, enable, disable and delete endpoints (secrets included).
    ManageEndpoint,
}

impl Capability {
    /// Every capability, in order.
    pub const ALL: [Capability; 5] = [
        Capability::ViewBase,
        Capability::ViewEndpointSecret,
        Capability::ManageEndpointSecret,
        Capability::CreateAttempts,
        Capability::ManageEndpoint,
    ];

    /// The Svix name.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ViewBase => "ViewBase",
            Capability::ViewEndpointSecret => "ViewEndpointSecret",
            Capability::ManageEndpointSecret => "ManageEndpointSecret",
            Capability::CreateAttempts => "CreateAttempts",
            Capability::ManageEndpoint => "ManageEndpoint",
        }
    }

    /// The capability named `s`, if hookd has it.
    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Svix's `ManageTransformations`: accepted in a request, grants nothing (hookd has no
/// transformations).
pub const IGNORED_CAPABILITY: &str = "ManageTransformations";

/// The capabilities a portal link grants, from what `app-portal-access` asked for:
/// - none named: all of them;
/// - `ViewBase` always (Svix requires it; hookd adds it rather than refuse);
/// - `ManageEndpoint` includes both secret capabilities, `ManageEndpointSecret` includes
///   viewing the secret;
/// - `readOnly` keeps only what looks: `ViewBase` and `ViewEndpointSecret`.
///
/// An unknown name is refused with its index.
pub fn portal_grants(asked: Option<&[String]>, read_only: bool) -> Result<Vec<Capability>, usize> {
    let mut grants = match asked {
        None => Capability::ALL.to_vec(),
        Some(names) => {
            let mut grants = vec![Capability::ViewBase];
            for (i, name) in names.iter().enumerate() {
                match Capability::parse(name) {
                    Some(c) => grants.push(c),
                    None if name == IGNORED_CAPABILITY => {}
                    None => return Err(i),
                }
            }
            grants
        }
    };
    if grants.contains(&Capability::ManageEndpoint) {
        grants.push(Capability::ManageEndpointSecret);
    }
    if grants.contains(&Capability::ManageEndpointSecret) {
        grants.push(Capability::ViewEndpointSecret);
    }
    if read_only {
        grants.retain(|c| matches!(c, Capability::ViewBase | Capability::ViewEndpointSecret));
    }
    grants.sort();
    grants.dedup();
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_grants_follow_svix_rules() {
        use Capability::*;
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(portal_grants(None, false).unwrap(), Capability::ALL.to_vec());
        assert_eq!(portal_grants(None, true).unwrap(), vec![ViewBase, ViewEndpointSecret]);
        assert_eq!(portal_grants(Some(&[]), false).unwrap(), vec![ViewBase]);
        assert_eq!(
            portal_grants(Some(&names(&["CreateAttempts"])), false).unwrap(),
            vec![ViewBase, CreateAttempts]
        );
        assert_eq!(
            portal_grants(Some(&names(&["ViewBase", "ManageEndpoint"])), false).unwrap(),
            vec![ViewBase, ViewEndpointSecret, ManageEndpointSecret, ManageEndpoint]
        );
        assert_eq!(
            portal_grants(Some(&names(&["ManageEndpointSecret", "ManageTransformations"])), false).unwrap(),
            vec![ViewBase, ViewEndpointSecret, ManageEndpointSecret]
        );
        assert_eq!(
            portal_grants(Some(&names(&["ManageEndpoint", "CreateAttempts"])), true).unwrap(),
            vec![ViewBase, ViewEndpointSecret]
        );
        assert_eq!(portal_grants(Some(&names(&["ViewBase", "Everything"])), false), Err(1));
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
