//! Request extractors that fail in Svix's error shapes: the caller's token, JSON bodies
//! (422 with the field's location) and query strings (Svix's list conventions).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDateTime, Utc};
use hookd_core::model::Environment;
use hookd_store::page::{DEFAULT_LIMIT, MAX_LIMIT};
use hookd_store::{Cursor, PageRequest};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ValidationItem};
use crate::auth::hash_token;
use crate::ops::ErrorCode;
use crate::state::AppState;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Environment the token acts in.
    pub env: Environment,
    /// Set for application-scoped tokens.
    pub app_id: Option<String>,
    /// The token's id (`tok_…`), never its secret.
    pub token_id: String,
}

impl Caller {
    /// Refuses application-scoped tokens on environment-wide routes.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.app_id.is_some() {
            return Err(ApiError::Forbidden);
        }
        Ok(())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let record = authenticate(&parts.headers, state).await?;
        if let Some(limiter) = &state.limiter {
            if let Err(not_until) = limiter.check_key(&record.id) {
                let wait =
                    not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
                return Err(ApiError::RateLimited(wait));
            }
        }
        Ok(Caller {
            env: record.env,
            app_id: record.app_id,
            token_id: record.id,
        })
    }
}

/// The valid, unexpired token of a request's `Authorization` header.
pub(crate) async fn authenticate(
    headers: &axum::http::HeaderMap,
    state: &AppState,
) -> Result<hookd_store::TokenRecord, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or(header)
        .trim();
    if token.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    let record = state
        .tokens
        .find(&hash_token(token))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if record.expires_at.is_some_and(|at| at <= state.clock.now()) {
        return Err(ApiError::Unauthorized);
    }
    Ok(record)
}

/// A JSON body; an empty body reads as `{}` (the SDKs send none on some POSTs).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<JsonBody<T>, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest {
                    code: ErrorCode::GenericError,
                    detail: e.body_text(),
                }
            }
        })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(de).map(JsonBody).map_err(json_error)
    }
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let mut loc = vec!["body".to_string()];
    for seg in e.path().iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => loc.push(index.to_string()),
            serde_path_to_error::Segment::Map { key } => loc.push(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => loc.push(variant.clone()),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    let inner = e.into_inner();
    let msg = inner.to_string();
    // "missing field `eventType`" is reported at the parent; point at the field itself.
    if let Some(field) = msg.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
        loc.push(field.to_string());
    }
    let kind = if inner.is_syntax() || inner.is_eof() {
        "value_error.jsondecode"
    } else {
        "value_error"
    };
    ApiError::Validation(vec![ValidationItem {
        loc,
        msg,
        kind: kind.into(),
    }])
}

/// The query string as name/value pairs, read the way Svix reads lists: `a=x,y`, `a=x&a=y`,
/// `a[]=x` and `a[0]=x` all mean the same.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        Ok(Query(form_urlencoded::parse(raw.as_bytes()).into_owned().collect()))
    }
}

impl Query {
    fn base(name: &str) -> &str {
        name.split('[').next().unwrap_or(name)
    }

    /// The last value of a scalar parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// All values of a list parameter, comma-separated entries split.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let values: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| Self::base(k) == name)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        (!values.is_empty()).then_some(values)
    }

    /// A boolean parameter (`true`/`false`), with a default.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some("true") | Some("True") | Some("1") => Ok(true),
            Some("false") | Some("False") | Some("0") => Ok(false),
            Some(other) => Err(ApiError::field(&["query", name], format!("`{other}` is not a boolean"))),
        }
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::field(&["query", name], format!("`{v}` is not an integer")))
            })
            .transpose()
    }

    /// A date-time parameter: RFC 3339, or without a zone (read as UTC).
    pub fn datetime(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Ok(Some(t.with_timezone(&Utc)));
        }
        NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
            .map(|n| Some(n.and_utc()))
            .map_err(|_| ApiError::field(&["query", name], format!("`{v}` is not an RFC 3339 date-time")))
    }

    /// `limit`, `iterator` and `order`, with the list's natural order.
    pub fn page(&self, default_ascending: bool) -> Result<PageRequest, ApiError> {
        let limit = match self.int("limit")? {
            None => DEFAULT_LIMIT,
            Some(n) if n > MAX_LIMIT as i64 => {
                return Err(ApiError::field(
                    &["query", "limit", "limit"],
                    format!("Given limit must not exceed {MAX_LIMIT}"),
                ))
            }
            Some(n) if n < 1 => {
                return Err(ApiError::field(
                    &["query", "limit", "limit"],
                    "Given limit must be at least 1",
                ))
            }
            Some(n) => n as usize,
        };
        let ascending = match self.get("order") {
            None => default_ascending,
            Some("ascending") => true,
            Some("descending") => false,
            Some(other) => {
                return Err(ApiError::field(
                    &["query", "order"],
                    format!("order must be ascending or descending, not `{other}`"),
                ))
            }
        };
        let cursor = self.get("iterator").and_then(Cursor::parse);
        Ok(PageRequest {
            limit,
            cursor,
            ascending,
        })
    }
}
