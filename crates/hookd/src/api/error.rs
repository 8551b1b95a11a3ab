//! The one place HTTP statuses are chosen, and Svix's error bodies.
//!
//! | error                         | status | body                                   |
//! |-------------------------------|--------|----------------------------------------|
//! | missing/unknown token         | 401    | `authentication_failed`                |
//! | token lacks access            | 403    | `insufficient access`                  |
//! | record not found / no route   | 404    | `not_found`                            |
//! | uniqueness conflict           | 409    | `conflict` / `event_type_exists`       |
//! | request cannot be carried out | 400    | its own code (`missing_payload`, …)    |
//! | invalid field / JSON          | 422    | `{"detail":[{"loc","msg","type"}]}`    |
//! | body too large                | 413    | `payload_too_large`                    |
//! | database unavailable          | 503    | `service_unavailable`                  |
//! | anything else                 | 500    | `server_error` (cause only in the log) |

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookd_core::validate::FieldError;
use hookd_store::StoreError;
use serde_json::json;

use crate::ops::{ErrorCode, OpsError};

/// Every way an API call can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid token.
    #[error("authentication failed")]
    Unauthorized,
    /// Valid token without access to this resource.
    #[error("insufficient access")]
    Forbidden,
    /// Unknown record or route.
    #[error("not found")]
    NotFound,
    /// Uniqueness conflict.
    #[error("{detail}")]
    Conflict {
        /// Code.
        code: ErrorCode,
        /// Detail.
        detail: String,
    },
    /// Well-formed but impossible request.
    #[error("{detail}")]
    BadRequest {
        /// Code.
        code: ErrorCode,
        /// Detail.
        detail: String,
    },
    /// Field errors; `loc` already starts with `body`, `query` or `path`.
    #[error("validation failed")]
    Validation(Vec<ValidationItem>),
    /// Body over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The token made too many requests; retry after this long.
    #[error("rate limited")]
    RateLimited(std::time::Duration),
    /// The request took longer than the server allows.
    #[error("request timed out")]
    Timeout(u64),
    /// Database down.
    #[error("service unavailable")]
    Unavailable(#[source] StoreError),
    /// Unexpected failure.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One entry of a 422 body.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ValidationItem {
    /// Path to the field.
    pub loc: Vec<String>,
    /// Why.
    pub msg: String,
    /// Kind (`value_error`, `value_error.jsondecode`, …).
    #[serde(rename = "type")]
    pub kind: String,
}

impl ApiError {
    /// A 422 for one field.
    pub fn field(loc: &[&str], msg: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![ValidationItem {
            loc: loc.iter().map(|s| s.to_string()).collect(),
            msg: msg.into(),
            kind: "value_error".into(),
        }])
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> ApiError {
        match e {
            OpsError::NotFound(_) => ApiError::NotFound,
            OpsError::Conflict { code, detail } => ApiError::Conflict { code, detail },
            OpsError::BadRequest { code, detail } => ApiError::BadRequest { code, detail },
            OpsError::Invalid(fields) => ApiError::Validation(fields.into_iter().map(body_item).collect()),
            OpsError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(_) => ApiError::Conflict {
                code: ErrorCode::Conflict,
                detail: "A conflict has occurred".into(),
            },
            e @ StoreError::Unavailable(_) => ApiError::Unavailable(e),
            StoreError::Internal(source) => ApiError::Internal(source),
        }
    }
}

fn body_item(f: FieldError) -> ValidationItem {
    let mut loc = vec!["body".to_string()];
    loc.extend(f.loc);
    ValidationItem {
        loc,
        msg: f.msg,
        kind: "value_error".into(),
    }
}

impl ApiError {
    /// The code (and so the status) this error answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthorized => ErrorCode::AuthenticationFailed,
            ApiError::Forbidden => ErrorCode::InsufficientAccess,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::Conflict { code, .. } | ApiError::BadRequest { code, .. } => *code,
            ApiError::Validation(_) => ErrorCode::Validation,
            ApiError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            ApiError::RateLimited(_) => ErrorCode::RateLimitExceeded,
            ApiError::Timeout(_) => ErrorCode::Timeout,
            ApiError::Unavailable(e) if e.is_storage_full() => ErrorCode::InsufficientStorage,
            ApiError::Unavailable(_) => ErrorCode::ServiceUnavailable,
            ApiError::Internal(_) => ErrorCode::ServerError,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // The detail, and the seconds for `Retry-After` where a retry later can succeed.
        let (detail, retry_after): (String, Option<u64>) = match &self {
            ApiError::Unauthorized => ("Invalid token".into(), None),
            ApiError::Forbidden => ("Insufficient access for the given token".into(), None),
            ApiError::NotFound => ("Entity not found".into(), None),
            ApiError::Conflict { detail, .. } | ApiError::BadRequest { detail, .. } => (detail.clone(), None),
            ApiError::PayloadTooLarge => ("Request body is too large".into(), None),
            ApiError::RateLimited(wait) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                (
                    format!("Too many requests for this token; retry in {secs} s"),
                    Some(secs),
                )
            }
            ApiError::Timeout(secs) => (format!("The request took longer than {secs} s"), Some(1)),
            ApiError::Validation(items) => {
                return (status, Json(json!({ "detail": items }))).into_response();
            }
            ApiError::Unavailable(e) if e.is_storage_full() => {
                tracing::error!(error = ?e, "the database has no room left; writes are refused until space is freed");
                (
                    "The database has no room left (its disk is full); nothing was stored. Retry once the operator frees space".into(),
                    Some(5),
                )
            }
            ApiError::Unavailable(e) => {
                tracing::warn!(error = ?e, "database unavailable");
                ("The database is unavailable or busy; retry shortly".into(), Some(1))
            }
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                ("Internal server error".into(), None)
            }
        };
        let mut response = (status, Json(json!({ "code": code.as_str(), "detail": detail }))).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_disk_is_a_507_in_the_svix_shape_with_retry_after() {
        let answer = ApiError::from(StoreError::storage_full("database or disk is full")).into_response();
        assert_eq!(answer.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(answer.headers()[axum::http::header::RETRY_AFTER], "5");
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "insufficient_storage");
        assert!(body["detail"].as_str().unwrap().contains("nothing was stored"));
        // Any other unavailability stays a 503.
        let other = ApiError::from(StoreError::Unavailable("busy".into())).into_response();
        assert_eq!(other.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn every_503_and_429_carries_retry_after_and_other_errors_do_not() {
        let cases = [
            (ApiError::Timeout(30), 503, Some("1")),
            (
                ApiError::RateLimited(std::time::Duration::from_millis(1_500)),
                429,
                Some("2"),
            ),
            (ApiError::NotFound, 404, None),
            (ApiError::Internal("bug".into()), 500, None),
        ];
        for (error, status, retry_after) in cases {
            let answer = error.into_response();
            assert_eq!(answer.status().as_u16(), status);
            let header = answer.headers().get(axum::http::header::RETRY_AFTER);
            assert_eq!(header.map(|h| h.to_str().unwrap()), retry_after, "{status}");
            let body = axum::body::to_bytes(answer.into_body(), 1 << 16).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(body["code"].is_string() && body["detail"].is_string(), "{body}");
        }
    }

    #[tokio::test]
    async fn a_full_write_queue_or_a_closed_gate_is_a_503_with_retry_after_in_the_svix_shape() {
        for cause in [
            "the SQLite writer's queue is full",
            "the request timed out before it wrote; nothing was changed",
        ] {
            let answer = ApiError::from(StoreError::Unavailable(cause.into())).into_response();
            assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(answer.headers()[axum::http::header::RETRY_AFTER], "1");
            let body = axum::body::to_bytes(answer.into_body(), 1 << 16).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["code"], "service_unavailable");
            assert!(body["detail"].is_string());
        }
    }
}
