//! `/api/v1/auth`: application-scoped tokens for the consumer portal, logging a token out, and
//! expiring every token of an application.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hookd_core::model::Environment;
use serde::Deserialize;
use serde_json::{json, Value};

use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{Caller, JsonBody, Query};
use super::idempotency::NotReplayable;
use super::{app_for, ApiResult};
use crate::auth::{create_portal_link, create_token, NewToken, PortalLink};
use crate::ops::applications::{create_application, ApplicationIn};
use crate::state::AppState;

/// Lifetime of a portal token when the request names none: 28 days.
pub const DEFAULT_PORTAL_EXPIRY_SECS: u64 = 28 * 24 * 3600;
/// Shortest and longest lifetime a request may ask for.
const PORTAL_EXPIRY: std::ops::RangeInclusive<u64> = 3600..=90 * 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v1!("/auth/app-portal-access/{app_id}"), post(portal_access))
        .route(v1!("/auth/logout"), post(logout))
        .route(v1!("/auth/app/{app_id}/expire-all"), post(expire_all))
        .route(v1!("/auth/token"), axum::routing::get(list_tokens).post(new_token))
        .route(v1!("/auth/token/{token_id}"), axum::routing::delete(revoke_token))
}

/// A token as listed (never its secret).
fn token_out(t: &hookd_store::TokenRecord) -> Value {
    json!({
        "id": t.id,
        "environment": t.env.as_str(),
        "appId": t.app_id,
        "name": t.description,
        "createdAt": super::dto::ts(&t.created_at),
        "expiresAt": t.expires_at.as_ref().map(super::dto::ts),
    })
}

/// The environment an admin token manages tokens of: its own, unless it asks for another. A live
/// admin token owns the installation and may manage the sandbox's tokens; a test admin token
/// reaches only the sandbox (403 for live), so a sandbox credential can never mint a live one.
/// `loc` is where `asked` came from, for the 422 (`["body", "environment"]` or
/// `["query", "environment"]`).
fn managed_env(caller: &Caller, asked: Option<&str>, loc: &[&str]) -> Result<Environment, ApiError> {
    caller.require_admin()?;
    let Some(asked) = asked else { return Ok(caller.env) };
    let env = Environment::parse(asked).ok_or_else(|| ApiError::field(loc, "environment must be live or test"))?;
    match (caller.env, env) {
        (a, b) if a == b => Ok(env),
        (Environment::Live, Environment::Test) => Ok(env),
        _ => Err(ApiError::Forbidden),
    }
}

/// `GET /api/v1/auth/token`: the tokens of the caller's environment, or of the one it names and
/// may manage (hookd's own route).
async fn list_tokens(State(s): State<AppState>, caller: Caller, query: Query) -> ApiResult<Json<Value>> {
    // `?environment=live|test`; the caller's own by default.
    let env = managed_env(&caller, query.get("environment"), &["query", "environment"])?;
    let tokens = s.store.list_tokens().await?;
    let data: Vec<Value> = tokens.iter().filter(|t| t.env == env).map(token_out).collect();
    Ok(Json(json!({ "data": data })))
}

/// `POST /api/v1/auth/token` body.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TokenIn {
    /// Name shown in listings.
    name: String,
    /// Days until it stops working (default: never).
    #[serde(default)]
    expires_in_days: Option<u32>,
    /// `live` or `test`: the environment the new token acts in (the caller's by default).
    #[serde(default)]
    environment: Option<String>,
}

/// `POST /api/v1/auth/token`: a new admin token of the caller's environment, or of the one it
/// names and may manage ([`managed_env`]); the answer is the only place its secret appears.
async fn new_token(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TokenIn>,
) -> ApiResult<Response> {
    let env = managed_env(&caller, body.environment.as_deref(), &["body", "environment"])?;
    if body.name.trim().is_empty() || body.name.len() > 256 {
        return Err(ApiError::field(&["body", "name"], "name must be 1 to 256 characters"));
    }
    if body.expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(ApiError::field(
            &["body", "expiresInDays"],
            "expiresInDays must be 1 to 3650",
        ));
    }
    let now = s.clock.now();
    let new = NewToken {
        env,
        app_id: None,
        name: &body.name,
        expires_at: body.expires_in_days.map(|d| now + chrono::Duration::days(i64::from(d))),
    };
    let (id, token) = create_token(s.store.as_ref(), new, now).await?;
    let body = json!({ "id": id, "token": token, "environment": env.as_str() });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.extensions_mut().insert(NotReplayable);
    Ok(response)
}

/// `DELETE /api/v1/auth/token/{token_id}`: revokes a token of an environment the caller may
/// manage (its own; a live admin also the sandbox's).
async fn revoke_token(
    State(s): State<AppState>,
    caller: Caller,
    Path(token_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let may = |env: Environment| managed_env(&caller, Some(env.as_str()), &[]).is_ok();
    if !s.store.get_token(&token_id).await?.is_some_and(|t| may(t.env)) {
        return Err(ApiError::NotFound);
    }
    s.store.delete_token(&token_id).await?;
    s.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// Svix `AppPortalAccessIn`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PortalAccessIn {
    /// Seconds until the token and the link expire.
    #[serde(default)]
    expiry: Option<u64>,
    /// Creates the application when the path names none that exists.
    #[serde(default)]
    application: Option<ApplicationIn>,
    /// Recorded with the token and the portal link, so `expire-all` can end just these.
    #[serde(default)]
    session_id: Option<String>,
    /// What the portal may do (all when absent); see [`crate::auth::portal_grants`].
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    /// A portal that may look but change nothing.
    #[serde(default)]
    read_only: Option<bool>,
    /// Accepted for compatibility; hookd has no feature flags.
    #[serde(default)]
    #[allow(dead_code)]
    feature_flags: Option<Vec<String>>,
}

/// Svix `ApplicationTokenExpireIn`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ExpireIn {
    /// Seconds the tokens keep working; none or 0 ends them now.
    #[serde(default)]
    expiry: Option<u64>,
    /// Only the tokens and portal sessions made with one of these `sessionId`s.
    #[serde(default)]
    session_ids: Option<Vec<String>>,
}

/// The name of a portal token, which records the `sessionId` it was made for.
fn portal_token_name(session_id: Option<&str>) -> String {
    match session_id {
        Some(session) => format!("consumer portal session {session}"),
        None => "consumer portal".to_string(),
    }
}

/// `POST /api/v1/auth/app-portal-access/{app_id}`: an application-scoped API token, and a
/// portal link (`{portal.public_url}/portal/open?code=…`) whose one-time code opens a portal
/// session with the capabilities asked for.
async fn portal_access(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<PortalAccessIn>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let expiry = body.expiry.unwrap_or(DEFAULT_PORTAL_EXPIRY_SECS);
    if !PORTAL_EXPIRY.contains(&expiry) {
        return Err(ApiError::field(
            &["body", "expiry"],
            "expiry must be between 3600 seconds (1 hour) and 7776000 seconds (90 days)",
        ));
    }
    if body.session_id.as_ref().is_some_and(|s| s.is_empty() || s.len() > 256) {
        return Err(ApiError::field(
            &["body", "sessionId"],
            "sessionId must be 1 to 256 characters",
        ));
    }
    let read_only = body.read_only.unwrap_or(false);
    let grants = crate::auth::portal_grants(body.capabilities.as_deref(), read_only).map_err(|i| {
        ApiError::field(
            &["body", "capabilities", &i.to_string()],
            "not a capability: use ViewBase, ViewEndpointSecret, ManageEndpointSecret, CreateAttempts or ManageEndpoint",
        )
    })?;
    let app = match (app_for(&s, &caller, &app_id).await, body.application) {
        (Ok(app), _) => app,
        (Err(ApiError::NotFound), Some(app_in)) if app_in.uid.as_deref() == Some(app_id.as_str()) => {
            create_application(&s, caller.env, app_in, true).await?.0
        }
        (Err(e), _) => return Err(e),
    };
    let now = s.clock.now();
    let expires_at = now + chrono::Duration::seconds(expiry as i64);
    let name = portal_token_name(body.session_id.as_deref());
    let new = NewToken {
        env: caller.env,
        app_id: Some(&app.id),
        name: &name,
        expires_at: Some(expires_at),
    };
    let (_, token) = create_token(s.store.as_ref(), new, now).await?;
    let link = PortalLink {
        env: caller.env,
        app_id: &app.id,
        grants: &grants,
        read_only,
        session_id: body.session_id.as_deref(),
        expires_at,
    };
    let code = create_portal_link(s.store.as_ref(), link, now).await?;
    let url = format!("{}/portal/open?code={code}", s.config.portal_base_url());
    let mut response = Json(json!({ "url": url, "token": token })).into_response();
    response.extensions_mut().insert(NotReplayable);
    Ok(response)
}

async fn logout(State(s): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    s.store.delete_token(&caller.token_id).await?;
    s.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}

async fn expire_all(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<ExpireIn>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let app = app_for(&s, &caller, &app_id).await?;
    let at = s.clock.now() + chrono::Duration::seconds((*PORTAL_EXPIRY.end()).min(body.expiry.unwrap_or(0)) as i64);
    let sessions = body.session_ids.filter(|ids| !ids.is_empty());
    let names: Option<Vec<String>> = sessions
        .as_ref()
        .map(|ids| ids.iter().map(|id| portal_token_name(Some(id))).collect());
    s.store.expire_app_tokens(&app.id, names.as_deref(), at).await?;
    s.store.expire_app_sessions(&app.id, sessions.as_deref(), at).await?;
    s.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}
