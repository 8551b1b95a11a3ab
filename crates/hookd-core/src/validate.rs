//! Field rules shared by every surface that accepts input (API, dashboard, CLI).
//!
//! Each check returns a [`FieldError`] whose `loc` is the path of the offending field below the
//! request body (`["uid"]`, `["channels", "2"]`); the API prefixes `body` and renders Svix's 422
//! shape. Checks never panic on any input.

use std::collections::BTreeMap;

/// One invalid field: where, and why in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, outermost first.
    pub loc: Vec<String>,
    /// Human-readable reason.
    pub msg: String,
}

impl FieldError {
    /// An error at `loc` (given as path segments).
    pub fn new(loc: &[&str], msg: impl Into<String>) -> FieldError {
        FieldError {
            loc: loc.iter().map(|s| s.to_string()).collect(),
            msg: msg.into(),
        }
    }
}

/// Longest uid, event type name or event id.
pub const MAX_KEY_LEN: usize = 256;
/// Longest channel name.
pub const MAX_CHANNEL_LEN: usize = 128;
/// Most channels on a message.
pub const MAX_MESSAGE_CHANNELS: usize = 5;
/// Most channels on an endpoint.
pub const MAX_ENDPOINT_CHANNELS: usize = 10;
/// Longest endpoint URL.
pub const MAX_URL_LEN: usize = 65_536;
/// Longest custom header value.
pub const MAX_HEADER_VALUE_LEN: usize = 4_096;
/// Most custom headers on an endpoint.
pub const MAX_ENDPOINT_HEADERS: usize = 20;
/// Most event types in an endpoint's filter.
pub const MAX_FILTER_TYPES: usize = 100;
/// Most metadata entries.
pub const MAX_METADATA_ENTRIES: usize = 50;

fn key_chars_ok(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A uid (applications, endpoints) or event id: `^[a-zA-Z0-9\-_.]+$`, 1–256 characters, and not
/// starting with the id prefix of its kind (so an id and a uid can never be confused).
pub fn check_uid(field: &str, value: &str, id_prefix: &str) -> Result<(), FieldError> {
    if value.is_empty() || value.len() > MAX_KEY_LEN {
        return Err(FieldError::new(
            &[field],
            format!("{field} must be 1 to {MAX_KEY_LEN} characters long"),
        ));
    }
    if !key_chars_ok(value) {
        return Err(FieldError::new(
            &[field],
            format!("{field} may contain only letters, digits, '-', '_' and '.'"),
        ));
    }
    if !id_prefix.is_empty() && value.starts_with(id_prefix) {
        return Err(FieldError::new(
            &[field, "__all__"],
            "Uids are not allowed to have the same prefix as the ID. Prefix with _?",
        ));
    }
    Ok(())
}

/// An event type name: same characters as a uid, 1–256 long.
pub fn check_event_type_name(field: &str, value: &str) -> Result<(), FieldError> {
    check_uid(field, value, "")
}

/// A list of channels: 1..=`max` entries, each a key of at most 128 characters.
pub fn check_channels(field: &str, channels: &[String], max: usize) -> Result<(), FieldError> {
    if channels.is_empty() || channels.len() > max {
        return Err(FieldError::new(
            &[field],
            format!("{field} must hold between 1 and {max} channels"),
        ));
    }
    for (i, c) in channels.iter().enumerate() {
        let idx = i.to_string();
        if c.is_empty() || c.len() > MAX_CHANNEL_LEN || !key_chars_ok(c) {
            return Err(FieldError::new(
                &[field, &idx],
                format!("channel names are 1 to {MAX_CHANNEL_LEN} letters, digits, '-', '_' or '.'"),
            ));
        }
    }
    Ok(())
}

/// An endpoint URL: absolute `http` or `https`, with a host, at most 64 KiB, no whitespace or
/// control characters. `https_only` rejects `http`.
pub fn check_endpoint_url(field: &str, value: &str, https_only: bool) -> Result<(), FieldError> {
    if value.is_empty() || value.len() > MAX_URL_LEN {
        return Err(FieldError::new(
            &[field],
            format!("URL must be 1 to {MAX_URL_LEN} characters long"),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(
            &[field],
            "URL must not contain whitespace or control characters",
        ));
    }
    let parsed = url::Url::parse(value).map_err(|e| FieldError::new(&[field], format!("invalid URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if !https_only => {}
        "http" => return Err(FieldError::new(&[field], "endpoint URLs must use https on this server")),
        other => {
            return Err(FieldError::new(
                &[field],
                format!("URL scheme must be http or https, not {other}"),
            ));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new(&[field], "URL must have a host"));
    }
    Ok(())
}

/// Free text must not carry the control characters 0x00–0x08.
pub fn check_description(field: &str, value: &str) -> Result<(), FieldError> {
    if value.chars().any(|c| ('\u{0}'..='\u{8}').contains(&c)) {
        return Err(FieldError::new(&[field], "must not contain control characters"));
    }
    Ok(())
}

/// Custom header names hookd sets itself or that would break HTTP framing.
const FORBIDDEN_HEADERS: &[&str] = &[
    "user-agent",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "age",
    "cache-control",
    "clear-site-data",
    "expires",
    "pragma",
    "warning",
    "content-length",
    "content-type",
    "content-encoding",
    "content-language",
    "content-location",
    "host",
    "connection",
];
/// Prefixes reserved for hookd's own headers and for cloud load balancers.
const FORBIDDEN_PREFIXES: &[&str] = &[
    "webhook-", "svix-", "x-svix-", "x-hookd-", "x-amz-", "x-amzn-", "x-google", "x-goog-", "x-gfe", "x-azure-",
    "x-fd-",
];
/// Headers whose values are never shown back (only their names).
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "api-key",
    "x-access-token",
    "x-api-token",
    "x-auth-token",
    "x-api-key",
    "www-authenticate",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Is this custom header's value withheld on read?
pub fn is_sensitive_header(name: &str) -> bool {
    SENSITIVE_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// A set of custom headers for an endpoint.
pub fn check_headers<'a>(
    field: &str,
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), FieldError> {
    let headers: Vec<_> = headers.into_iter().collect();
    if headers.len() > MAX_ENDPOINT_HEADERS {
        return Err(FieldError::new(
            &[field],
            format!("at most {MAX_ENDPOINT_HEADERS} custom headers"),
        ));
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(FieldError::new(&[field, name], "invalid header name"));
        }
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) || FORBIDDEN_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            return Err(FieldError::new(
                &[field, name],
                format!("the header {name} cannot be set"),
            ));
        }
        if value.len() > MAX_HEADER_VALUE_LEN || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(FieldError::new(
                &[field, name],
                format!("header values are at most {MAX_HEADER_VALUE_LEN} bytes without line breaks"),
            ));
        }
        if value.starts_with(SEALED_PREFIX) {
            return Err(FieldError::new(
                &[field, name],
                format!("header values cannot start with {SEALED_PREFIX} (hookd's marker for encrypted values)"),
            ));
        }
    }
    Ok(())
}

/// How hookd marks a value it encrypted at rest; no value a client sends may start with it.
pub const SEALED_PREFIX: &str = "hkenc1:";

/// Metadata: string keys and values; keys non-empty.
pub fn check_metadata(field: &str, metadata: &BTreeMap<String, String>) -> Result<(), FieldError> {
    if metadata.keys().any(String::is_empty) {
        return Err(FieldError::new(&[field], "metadata keys must not be empty"));
    }
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(FieldError::new(
            &[field],
            format!("at most {MAX_METADATA_ENTRIES} metadata entries"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_follow_the_svix_pattern() {
        assert!(check_uid("uid", "ws_123.a-b", "app_").is_ok());
        assert!(check_uid("uid", "", "app_").is_err());
        assert!(check_uid("uid", "has space", "app_").is_err());
        assert!(check_uid("uid", &"a".repeat(257), "app_").is_err());
        let err = check_uid("uid", "app_bad", "app_").unwrap_err();
        assert_eq!(err.loc, vec!["uid", "__all__"]);
    }

    #[test]
    fn channels_are_bounded_and_pointed_at_by_index() {
        let ok = vec!["eu".to_string()];
        assert!(check_channels("channels", &ok, 5).is_ok());
        assert!(check_channels("channels", &[], 5).is_err());
        let bad = vec!["eu".to_string(), "bad channel".to_string()];
        assert_eq!(
            check_channels("channels", &bad, 5).unwrap_err().loc,
            vec!["channels", "1"]
        );
        let many: Vec<String> = (0..6).map(|i| i.to_string()).collect();
        assert!(check_channels("channels", &many, 5).is_err());
    }

    #[test]
    fn endpoint_urls_must_be_absolute_http_or_https() {
        assert!(check_endpoint_url("url", "https://example.com/hook", true).is_ok());
        assert!(check_endpoint_url("url", "http://127.0.0.1:9/x", false).is_ok());
        assert!(check_endpoint_url("url", "http://127.0.0.1:9/x", true).is_err());
        assert!(check_endpoint_url("url", "not a url", false).is_err());
        assert!(check_endpoint_url("url", "ftp://example.com/", false).is_err());
        assert!(check_endpoint_url("url", "https://exa mple.com/", false).is_err());
        assert!(check_endpoint_url("url", "", false).is_err());
    }

    #[test]
    fn reserved_and_malformed_headers_are_refused() {
        let h = |n: &str, v: &str| BTreeMap::from([(n.to_string(), v.to_string())]);
        assert!(check_headers("headers", &h("X-Workspace", "ws_1")).is_ok());
        assert!(check_headers("headers", &h("Content-Type", "x")).is_err());
        assert!(check_headers("headers", &h("webhook-id", "x")).is_err());
        assert!(check_headers("headers", &h("X-Amz-Date", "x")).is_err());
        assert!(check_headers("headers", &h("Bad Name", "x")).is_err());
        assert!(check_headers("headers", &h("X-Ok", "line\r\nbreak")).is_err());
        assert!(check_headers("headers", &h("X-Ok", &"v".repeat(4097))).is_err());
        assert!(
            check_headers("headers", &h("X-Note", "hkenc1:abc")).is_err(),
            "the encryption marker is refused"
        );
        assert!(check_headers("headers", &h("X-Note", "a hkenc1: inside")).is_ok());
    }

    #[test]
    fn authorization_like_headers_are_sensitive() {
        assert!(is_sensitive_header("Authorization"));
        assert!(is_sensitive_header("x-api-key"));
        assert!(is_sensitive_header("Cookie"));
        assert!(is_sensitive_header("X-Access-Token"));
        assert!(!is_sensitive_header("X-Workspace"));
    }

    #[test]
    fn descriptions_reject_low_control_characters() {
        assert!(check_description("description", "fine\ttext").is_ok());
        assert!(check_description("description", "bad\u{1}").is_err());
    }
}
