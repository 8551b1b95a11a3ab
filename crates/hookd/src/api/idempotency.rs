//! `idempotency-key` on POST: the first successful response is stored for 24 hours and replayed
//! to any repeat of the same request (same token, method, path and key), so a client can retry
//! a POST whose answer it never saw without doing the work twice.
//!
//! A repeat that arrives while the first is still running waits for it (up to
//! [`WAIT_FOR_FIRST`]) and then gets its answer, or a 409 if it is still running. Failed
//! requests (non-2xx) are not stored: the key can be retried. Keys live in the database, so the
//! guarantee holds across restarts and across nodes sharing it.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookd_store::IdempotencyState;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::ops::ErrorCode;
use crate::state::AppState;

/// How long a stored response is replayed.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(24);
/// How long a repeat waits for the first request to finish.
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(5);
/// A request still marked in progress after this long is presumed dead (its node crashed).
const STALE_AFTER: chrono::Duration = chrono::Duration::seconds(60);
/// Longest accepted key.
const MAX_KEY_LEN: usize = 256;
/// Header set on replayed responses.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Marks a response that must not be stored for replay (it carries a newly created token, which
/// the database must never hold in the clear).
#[derive(Debug, Clone, Copy)]
pub struct NotReplayable;

/// The form of a response to store for replay instead of its body: a message's answer is kept
/// with its payload replaced by [`payload_ref`], so the idempotency table never holds a copy of
/// a payload (it would outlive retention and expunges); the payload is read again on replay.
#[derive(Debug, Clone)]
pub struct StoredForm(pub Vec<u8>);

/// Set on a request whose answer this middleware will store for replay: only then does a
/// handler need to build a [`StoredForm`].
#[derive(Debug, Clone, Copy)]
pub struct Kept;

/// Key of the object that stands for a message's payload in a stored answer.
const PAYLOAD_REF: &str = "$hookdPayloadOf";

/// What a stored answer holds in place of the payload of message `msg_id` of `app_id`.
pub fn payload_ref(app_id: &str, msg_id: &str) -> serde_json::Value {
    serde_json::json!({ PAYLOAD_REF: [app_id, msg_id] })
}

/// The middleware.
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let (Some(raw_key), Some(auth)) = (req.headers().get("idempotency-key"), req.headers().get(AUTHORIZATION)) else {
        return next.run(req).await;
    };
    // Only a currently valid token may have a stored answer replayed to it.
    if let Err(e) = super::extract::authenticate(req.headers(), &state).await {
        return e.into_response();
    }
    // A key that cannot be read is refused, not ignored: ignoring it would silently drop the
    // protection the client asked for.
    let key = raw_key.to_str().map(str::trim).unwrap_or("");
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return ApiError::BadRequest {
            code: ErrorCode::InvalidIdempotencyKey,
            detail: format!("idempotency-key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        }
        .into_response();
    }
    // Scoped by token: another caller's identical key is a different request.
    let mut hasher = Sha256::new();
    for part in [
        auth.as_bytes(),
        key.as_bytes(),
        req.method().as_str().as_bytes(),
        req.uri().to_string().as_bytes(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let scope = hookd_core::text::hex(&hasher.finalize());

    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    let claimed_at = loop {
        let now = state.clock.now();
        match state
            .store
            .idempotency_begin(&scope, now, now - STALE_AFTER, now + RETENTION)
            .await
        {
            Ok(IdempotencyState::Started) => break now,
            Ok(IdempotencyState::Completed { status, body }) => return replay(&state, status, body).await,
            Ok(IdempotencyState::InProgress) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Ok(IdempotencyState::InProgress) => {
                return ApiError::Conflict {
                    code: ErrorCode::Conflict,
                    detail: "A request with this idempotency key is still in progress".into(),
                }
                .into_response()
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    };

    let mut req = req;
    req.extensions_mut().insert(Kept);
    let response = next.run(req).await;
    // Failures are not kept (the key can be retried), nor answers marked as not replayable.
    if !response.status().is_success() || response.extensions().get::<NotReplayable>().is_some() {
        if let Err(e) = state.store.idempotency_release(&scope, claimed_at).await {
            tracing::warn!(error = %e, "cannot release idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return ApiError::Internal(Box::new(e)).into_response(),
    };
    let stored = parts.extensions.get::<StoredForm>().map_or(&bytes[..], |f| &f.0[..]);
    if let Err(e) = state
        .store
        .idempotency_complete(&scope, claimed_at, parts.status.as_u16(), stored)
        .await
    {
        // The work is done and committed; failing to remember it only weakens a later replay.
        tracing::warn!(error = %e, "cannot store idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn replay(state: &AppState, status: u16, mut body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    // A message's answer: put its payload back as it is now (`{"expired":true}` once it has
    // been expunged or has expired).
    if let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&body) {
        let reference = answer
            .get("payload")
            .and_then(|p| p.get(PAYLOAD_REF))
            .and_then(|r| Some((r.get(0)?.as_str()?.to_string(), r.get(1)?.as_str()?.to_string())));
        if let Some((app_id, msg_id)) = reference {
            let payload = match state.store.get_message(&app_id, &msg_id).await {
                Ok(Some(m)) => m.payload,
                Ok(None) => None,
                Err(e) => return ApiError::from(e).into_response(),
            };
            // Spliced in as text: the payload's bytes come back exactly as published.
            let marker = payload_ref(&app_id, &msg_id).to_string();
            let payload = payload.unwrap_or_else(|| r#"{"expired":true}"#.to_string());
            if let Ok(text) = std::str::from_utf8(&body) {
                body = text.replacen(&marker, &payload, 1).into_bytes();
            }
        }
    }
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}
