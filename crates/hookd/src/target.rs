//! What every send to one endpoint shares, prepared once per endpoint rather than on each send:
//! its URL parsed, its request URI with any credentials taken out as a basic authentication
//! header, its signing keys decoded, and its custom headers checked.

use chrono::{DateTime, Utc};
use hookd_core::model::Endpoint;
use hookd_signing::SigningKey;
use reqwest::header::{HeaderName, HeaderValue};

/// A signing key and when it stops signing (`None` for the endpoint's current key).
type TimedKey = (SigningKey, Option<DateTime<Utc>>);

/// What every send to one endpoint shares, worked out once per endpoint (when its cached list
/// opens it: `cache::OpenedEndpoint`) instead of on each send: the URL parsed, the
/// request URI with any credentials taken out of it as a basic authentication header, the
/// signing keys decoded, and the custom headers that are valid HTTP headers. A part that is
/// wrong is kept as the text a send refuses it with, in the order a send meets them.
pub struct Target {
    /// The URL as parsed.
    pub url: Result<reqwest::Url, String>,
    /// A direct send's request URI (without credentials) and the credentials as a header.
    pub direct: Result<(http::Uri, Option<HeaderValue>), String>,
    /// Every signing key, with when it stops signing (`None` for the current one).
    keys: Result<Vec<TimedKey>, String>,
    /// The custom headers that are valid HTTP headers, in the endpoint's order.
    pub custom: Vec<(HeaderName, HeaderValue)>,
}

impl Target {
    /// Prepares the sends to `endpoint` (its secrets opened).
    pub fn of(endpoint: &Endpoint) -> Target {
        let url = reqwest::Url::parse(&endpoint.url).map_err(|e| format!("invalid URL: {e}"));
        let direct = url.clone().and_then(|mut url| {
            let credentials = take_credentials(&mut url);
            url.as_str()
                .parse::<http::Uri>()
                .map(|uri| (uri, credentials))
                .map_err(|e| format!("invalid URL: {e}"))
        });
        let custom = endpoint
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            })
            .collect();
        Target {
            url,
            direct,
            keys: keys_of(endpoint),
            custom,
        }
    }

    /// The keys that sign at `now`: the current one and rotated ones not yet expired.
    pub fn keys_at(&self, now: DateTime<Utc>) -> Result<Vec<&SigningKey>, String> {
        let keys = self.keys.as_ref().map_err(Clone::clone)?;
        Ok(keys
            .iter()
            .filter(|(_, until)| until.is_none_or(|until| until > now))
            .map(|(key, _)| key)
            .collect())
    }
}

impl std::fmt::Debug for Target {
    /// No key and no header value: only whether each part is usable, and the custom headers'
    /// names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url.as_ref().map(|_| "parsed"))
            .field("direct", &self.direct.as_ref().map(|_| "parsed"))
            .field("keys", &self.keys.as_ref().map(Vec::len))
            .field("custom", &self.custom.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .finish()
    }
}

/// Every key of `endpoint` with when it stops signing (`None` for the current one); rotated
/// keys that do not parse are left out. An error when the current secret is unusable.
fn keys_of(endpoint: &Endpoint) -> Result<Vec<TimedKey>, String> {
    let current =
        SigningKey::parse_endpoint_key(&endpoint.secret).map_err(|e| format!("endpoint secret unusable: {e}"))?;
    let rotated = endpoint
        .old_secrets
        .iter()
        .filter_map(|old| Some((SigningKey::parse_endpoint_key(&old.key).ok()?, Some(old.expires_at))));
    Ok(std::iter::once((current, None)).chain(rotated).collect())
}

/// Removes the user name and password from `url`, returning them as a basic authentication
/// header value (percent-decoded, as a browser sends them).
fn take_credentials(url: &mut reqwest::Url) -> Option<HeaderValue> {
    use base64::Engine;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let pair = format!(
        "{}:{}",
        decode(url.username()),
        url.password().map(decode).unwrap_or_default()
    );
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let mut value = HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
    .ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[cfg(test)]
mod tests {
    use hookd_core::model::OldSecret;

    use super::*;
    use crate::testing::{at, endpoint};

    const CURRENT: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ROTATED: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn credentials_leave_the_request_uri_and_go_as_basic_authentication() {
        let mut e = endpoint("ep_1", "app_1");
        e.url = "http://alice:s%40cret@127.0.0.1:9/hook?x=1".into();
        let target = Target::of(&e);
        let (uri, credentials) = target.direct.as_ref().expect("a valid request URI");
        assert_eq!(uri.to_string(), "http://127.0.0.1:9/hook?x=1");
        let credentials = credentials.as_ref().expect("credentials taken out");
        // alice:s@cret, percent-decoded, as a browser sends it.
        assert_eq!(credentials, "Basic YWxpY2U6c0BjcmV0");
        assert!(credentials.is_sensitive());
        // The URL a proxied send and the address checks read keeps what the endpoint says.
        assert_eq!(target.url.as_ref().unwrap().username(), "alice");

        e.url = "http://127.0.0.1:9/plain".into();
        let (uri, credentials) = Target::of(&e).direct.expect("a valid request URI");
        assert_eq!(
            (uri.to_string().as_str(), credentials),
            ("http://127.0.0.1:9/plain", None)
        );
    }

    #[test]
    fn a_url_that_does_not_parse_is_kept_as_the_text_a_send_refuses_it_with() {
        let mut e = endpoint("ep_1", "app_1");
        e.url = "http://[::1".into();
        let target = Target::of(&e);
        let why = target.url.as_ref().expect_err("not a URL");
        assert!(why.starts_with("invalid URL: "), "{why}");
        assert_eq!(target.direct.as_ref().expect_err("no request URI either"), why);
    }

    #[test]
    fn a_rotated_key_prepared_once_stops_signing_at_its_expiry() {
        let mut e = endpoint("ep_1", "app_1");
        e.secret = CURRENT.into();
        e.old_secrets = vec![
            OldSecret {
                key: ROTATED.into(),
                expires_at: at() + chrono::Duration::hours(1),
            },
            OldSecret {
                key: "whsec_not base64!".into(),
                expires_at: at() + chrono::Duration::hours(1),
            },
        ];
        let target = Target::of(&e);
        let before = target.keys_at(at()).unwrap();
        assert_eq!(
            before.len(),
            2,
            "the current key and the rotated one; the unreadable one is left out"
        );
        let after = target.keys_at(at() + chrono::Duration::hours(2)).unwrap();
        assert_eq!(after.len(), 1, "only the current key once the rotated one expired");

        e.secret = "whsec_not base64!".into();
        let why = Target::of(&e)
            .keys_at(at())
            .expect_err("the current secret is unusable");
        assert!(why.starts_with("endpoint secret unusable"), "{why}");
    }

    #[test]
    fn custom_headers_are_checked_once_and_their_values_never_printed() {
        let mut e = endpoint("ep_1", "app_1");
        e.url = "http://alice:hunter2@127.0.0.1:9/".into();
        e.secret = CURRENT.into();
        e.headers = [
            ("X-Tenant".to_string(), "t-42".to_string()),
            ("Bad Name".to_string(), "dropped".to_string()),
            ("Authorization".to_string(), "Bearer s3cr3t".to_string()),
        ]
        .into_iter()
        .collect();
        let target = Target::of(&e);
        let names: Vec<&str> = target.custom.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["authorization", "x-tenant"],
            "valid names only, in the endpoint's order"
        );
        let shown = format!("{target:?}");
        for secret in ["hunter2", "s3cr3t", "t-42", &CURRENT[6..]] {
            assert!(!shown.contains(secret), "{shown} shows {secret}");
        }
        assert!(shown.contains("x-tenant"), "{shown}");
    }
}
