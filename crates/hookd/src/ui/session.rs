//! Dashboard sign-in: sessions in an HttpOnly, SameSite=Strict cookie, stored hashed, with a
//! CSRF token derived from the session's secret for every form.
//!
//! The cookie carries a random secret (`hkds_…`); the database keeps only its SHA-256, so a
//! leaked database signs no one in. Every form carries `csrf`, an HMAC of a fixed label under
//! the session's secret: only a page served to the session's own browser can know it, and it
//! needs no storage. Sign-in itself, before any session exists, is refused when the browser
//! says the form came from another site (`Origin`, `Sec-Fetch-Site`).

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use hookd_core::id::IdKind;
use hookd_core::model::Environment;
use hookd_store::{SessionRecord, StoreResult};
use rand::distributions::{Alphanumeric, DistString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::auth::{hash_token, Capability};
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "hookd_session";

/// Most live dashboard sessions per environment; signing in beyond it ends the oldest.
pub const OPERATOR_SESSIONS: usize = 64;

/// The cookie holding the environment a live operator is looking at (`test` for the sandbox).
pub const ENV_COOKIE: &str = "hookd_env";

/// Who a page is for: a signed-in operator (the whole environment), or a consumer-portal
/// session (one application, with the capabilities its link granted).
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The stored session.
    pub session: SessionRecord,
    /// The environment the pages act in: the session's, or the sandbox when a live operator
    /// switched to it (a live admin may act in the sandbox; a sandbox session never in live).
    pub env: Environment,
    /// The value every form of this session must send as `csrf`.
    pub csrf: String,
    /// Set for a consumer-portal session.
    pub portal: Option<Portal>,
}

/// What a consumer-portal session is limited to, and how it looks.
#[derive(Debug, Clone)]
pub struct Portal {
    /// The one application it sees.
    pub app_id: String,
    /// What it may do.
    pub grants: Vec<Capability>,
    /// Its colours, logo and font.
    pub theme: super::portal::Theme,
}

impl Viewer {
    /// Whether `sent` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, sent: &str) -> bool {
        self.csrf.as_bytes().ct_eq(sent.as_bytes()).into()
    }

    /// Whether the viewer may do what `capability` covers (an operator may do everything).
    pub fn may(&self, capability: Capability) -> bool {
        self.portal.as_ref().is_none_or(|p| p.grants.contains(&capability))
    }

    /// Where the viewer's pages live: `""` for the dashboard, `/portal` for the portal.
    pub fn root(&self) -> &'static str {
        if self.portal.is_some() {
            "/portal"
        } else {
            ""
        }
    }

    /// Whether the viewer may see `app_id` (an operator sees its environment's applications).
    pub fn sees_app(&self, app_id: &str) -> bool {
        self.portal.as_ref().is_none_or(|p| p.app_id == app_id)
    }
}

/// A signed-in operator: a [`Viewer`] whose session is the dashboard's, not a portal's.
#[derive(Debug, Clone)]
pub struct Operator(pub Viewer);

impl std::ops::Deref for Operator {
    type Target = Viewer;
    fn deref(&self) -> &Viewer {
        &self.0
    }
}

/// A session extractor whose forms carry its CSRF token.
pub trait Signed {
    /// The viewer behind the session.
    fn viewer(&self) -> &Viewer;
}

impl Signed for Viewer {
    fn viewer(&self) -> &Viewer {
        self
    }
}

impl Signed for Operator {
    fn viewer(&self) -> &Viewer {
        &self.0
    }
}

/// The CSRF token of the session whose cookie holds `secret`.
pub fn csrf_for(secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"hookd browser session csrf");
    hookd_core::text::hex(&mac.finalize().into_bytes())
}

/// The value of cookie `name` in `headers`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came over https: the configured public URL says so, or the proxy in
/// front does (`X-Forwarded-Proto`). Only ever used to make a cookie stricter.
pub fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.dashboard.public_url.starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Whether a form posted before any session exists (sign-in) came from this site: refused
/// when the browser names another origin or another site.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| matches!(v, "same-origin" | "none"));
    let origin_ok = match (headers.get(ORIGIN), headers.get(HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or("");
            let host = host.to_str().unwrap_or("");
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        }
        (Some(_), None) => false,
        (None, _) => true,
    };
    site_ok && origin_ok
}

/// A `Set-Cookie` value for `secret` lasting `max_age` seconds (0 with an empty secret ends
/// it).
pub fn set_cookie(secret: &str, max_age: u64, secure: bool) -> HeaderValue {
    cookie_line(COOKIE_NAME, secret, max_age, secure)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole site.
pub fn cookie_line(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    http_only_cookie(name, value, "/", "SameSite=Strict", max_age, secure)
}

/// A `Set-Cookie` value no script can read: `name=value` for `path`, with the cross-site
/// attributes `same_site`, lasting `max_age` seconds, and `tail` appended as is.
pub fn http_only_cookie(name: &str, value: &str, path: &str, same_site: &str, max_age: u64, tail: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; {same_site}; Max-Age={max_age}{tail}"
    ))
    .expect("cookie of plain ASCII")
}

/// Opens an operator session for the admin token's environment and returns the cookie's
/// secret.
pub async fn open(state: &AppState, env: Environment) -> StoreResult<String> {
    let now = state.clock.now();
    let ttl = chrono::Duration::seconds(state.config.dashboard.session_ttl_secs as i64);
    let record = SessionRecord {
        id: String::new(),
        hash: String::new(),
        env,
        app_id: None,
        capabilities: Vec::new(),
        read_only: false,
        portal_session: None,
        created_at: now,
        expires_at: now + ttl,
    };
    store_new(state, record, OPERATOR_SESSIONS).await
}

/// Stores `record` under a fresh id and cookie secret (`hkds_…`); returns the secret.
pub async fn store_new(state: &AppState, mut record: SessionRecord, keep: usize) -> StoreResult<String> {
    let (secret, id) = {
        let mut rng = rand::thread_rng();
        (
            format!("hkds_{}", Alphanumeric.sample_string(&mut rng, 43)),
            IdKind::Session.generate(record.created_at, &mut rng),
        )
    };
    record.id = id;
    record.hash = hash_token(&secret);
    state.store.create_session(&record, keep).await?;
    Ok(secret)
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Operator, Response> {
        let to_sign_in = || {
            let mut r = Redirect::to("/login").into_response();
            r.headers_mut().insert(SET_COOKIE, set_cookie("", 0, false));
            r
        };
        let Some(secret) = cookie(&parts.headers, COOKIE_NAME).filter(|s| !s.is_empty()) else {
            return Err(Redirect::to("/login").into_response());
        };
        let found = state
            .store
            .find_session(&hash_token(secret), state.clock.now())
            .await
            .map_err(|e| super::unavailable(&e))?;
        match found {
            Some(session) if session.app_id.is_none() => {
                let env = match (session.env, cookie(&parts.headers, ENV_COOKIE)) {
                    (Environment::Live, Some("test")) => Environment::Test,
                    (env, _) => env,
                };
                Ok(Operator(Viewer {
                    csrf: csrf_for(secret),
                    env,
                    session,
                    portal: None,
                }))
            }
            _ => Err(to_sign_in()),
        }
    }
}

/// The viewer of a page that both surfaces serve: a portal session under `/portal`, an
/// operator elsewhere.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        if parts.uri.path().starts_with("/portal/") {
            super::portal::viewer(parts, state).await
        } else {
            Ok(Operator::from_request_parts(parts, state).await?.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; hookd_session=hkds_x; b=2"));
        assert_eq!(cookie(&headers, COOKIE_NAME), Some("hkds_x"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "hookd"), None);
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        let a = csrf_for("hkds_a");
        assert_eq!(a, csrf_for("hkds_a"));
        assert_ne!(a, csrf_for("hkds_b"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn sign_in_from_another_site_is_refused() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8071")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8071"),
            ("origin", "http://127.0.0.1:8071"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8071"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8071"),
            ("sec-fetch-site", "cross-site")
        ])));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let plain = set_cookie("hkds_x", 60, false);
        assert_eq!(
            plain.to_str().unwrap(),
            "hookd_session=hkds_x; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert!(set_cookie("hkds_x", 60, true).to_str().unwrap().ends_with("; Secure"));
    }
}
