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

use crate::auth::hash_token;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "hookd_session";

/// Most live dashboard sessions per environment; signing in beyond it ends the oldest.
pub const OPERATOR_SESSIONS: usize = 64;

/// The cookie holding the environment a live operator is looking at (`test` for the sandbox).
pub const ENV_COOKIE: &str = "hookd_env";

/// A signed-in operator: the session, the environment its pages act in, and the CSRF token
/// its forms carry.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The stored session.
    pub session: SessionRecord,
    /// The environment the pages act in: the session's, or the sandbox when a live operator
    /// switched to it (a live admin may act in the sandbox; a sandbox session never in live).
    pub env: Environment,
    /// The value every form of this session must send as `csrf`.
    pub csrf: String,
}

impl Operator {
    /// Whether `sent` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, sent: &str) -> bool {
        self.csrf.as_bytes().ct_eq(sent.as_bytes()).into()
    }
}

/// The CSRF token of the session whose cookie holds `secret`.
pub fn csrf_for(secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"hookd dashboard csrf");
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
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
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie of plain ASCII")
}

/// Opens an operator session for the admin token's environment and returns the cookie's
/// secret.
pub async fn open(state: &AppState, env: Environment) -> StoreResult<String> {
    let now = state.clock.now();
    let ttl = chrono::Duration::seconds(state.config.dashboard.session_ttl_secs as i64);
    let (secret, id) = {
        let mut rng = rand::thread_rng();
        (
            format!("hkds_{}", Alphanumeric.sample_string(&mut rng, 43)),
            IdKind::Session.generate(now, &mut rng),
        )
    };
    let record = SessionRecord {
        id,
        hash: hash_token(&secret),
        env,
        app_id: None,
        capabilities: Vec::new(),
        read_only: false,
        portal_session: None,
        created_at: now,
        expires_at: now + ttl,
    };
    state.store.create_session(&record, OPERATOR_SESSIONS).await?;
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
                Ok(Operator {
                    csrf: csrf_for(secret),
                    env,
                    session,
                })
            }
            _ => Err(to_sign_in()),
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
