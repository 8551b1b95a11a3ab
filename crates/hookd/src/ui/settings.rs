//! The environment's event catalog and its API tokens.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use hookd_store::TokenRecord;
use serde::Deserialize;

use super::pages::{forbidden, Chrome};
use super::session::Operator;
use super::{render, unavailable, Posted};
use crate::auth::{create_token, NewToken};
use crate::ops::OpsError;
use crate::state::AppState;

struct EventTypeView {
    name: String,
    description: String,
    deprecated: bool,
    schema: Option<String>,
}

struct CatalogGroup {
    name: String,
    types: Vec<EventTypeView>,
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage {
    chrome: Chrome,
    groups: Vec<CatalogGroup>,
}

/// `GET /catalog`: the environment's event types by group, each with its schemas (and the
/// examples they carry).
pub async fn catalog(State(state): State<AppState>, op: super::session::Viewer) -> Response {
    let types = match crate::ops::event_types::all_event_types(state.store.as_ref(), op.env, false).await {
        Ok(types) => types,
        Err(OpsError::Store(e)) => return unavailable(&e),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let mut groups: BTreeMap<(bool, String), Vec<EventTypeView>> = BTreeMap::new();
    for t in types {
        let key = match &t.group_name {
            Some(g) => (false, g.clone()),
            None => (true, "Other".to_string()),
        };
        groups.entry(key).or_default().push(EventTypeView {
            schema: t.schemas.as_ref().and_then(|s| serde_json::to_string_pretty(s).ok()),
            name: t.name,
            description: t.description,
            deprecated: t.deprecated,
        });
    }
    let page = CatalogPage {
        chrome: Chrome::new(&op, "catalog"),
        groups: groups
            .into_iter()
            .map(|((_, name), types)| CatalogGroup { name, types })
            .collect(),
    };
    render(StatusCode::OK, &page)
}

struct TokenRow {
    id: String,
    description: String,
    scope: String,
    created: String,
    expires: String,
}

impl TokenRow {
    fn from(t: &TokenRecord) -> TokenRow {
        TokenRow {
            id: t.id.clone(),
            description: t.description.clone(),
            scope: match &t.app_id {
                Some(app) => format!("application {app}"),
                None => "admin".to_string(),
            },
            created: t.created_at.format("%Y-%m-%d %H:%M").to_string(),
            expires: t
                .expires_at
                .map(|e| e.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "never".to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    rows: Vec<TokenRow>,
    created: Option<String>,
    error: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    op: &Operator,
    status: StatusCode,
    created: Option<String>,
    error: Option<String>,
) -> Response {
    let tokens = match state.store.list_tokens().await {
        Ok(tokens) => tokens,
        Err(e) => return unavailable(&e),
    };
    let page = TokensPage {
        chrome: Chrome::new(op, "tokens"),
        rows: tokens.iter().filter(|t| t.env == op.env).map(TokenRow::from).collect(),
        created,
        error,
    };
    render(status, &page)
}

/// `GET /tokens`: the environment's API tokens (admin and application-scoped).
pub async fn tokens(State(state): State<AppState>, op: Operator) -> Response {
    tokens_page(&state, &op, StatusCode::OK, None, None).await
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct NewTokenIn {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// Days until it stops working; empty: never.
    #[serde(default)]
    expires_in_days: String,
}

/// `POST /tokens`: a new admin token of the environment; its secret is shown once.
pub async fn create(State(state): State<AppState>, op: Operator, Form(input): Form<NewTokenIn>) -> Response {
    if !op.csrf_ok(&input.csrf) {
        return forbidden();
    }
    let name = input.name.trim();
    let days = input.expires_in_days.trim();
    let days = if days.is_empty() {
        None
    } else {
        match days.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => Some(d),
            _ => {
                let error = Some("Expires in: a whole number of days, 1 to 3650, or empty for never".to_string());
                return tokens_page(&state, &op, StatusCode::UNPROCESSABLE_ENTITY, None, error).await;
            }
        }
    };
    if name.is_empty() || name.len() > 256 {
        let error = Some("Name: 1 to 256 characters, to tell the token apart later".to_string());
        return tokens_page(&state, &op, StatusCode::UNPROCESSABLE_ENTITY, None, error).await;
    }
    let now = state.clock.now();
    let new = NewToken {
        env: op.env,
        app_id: None,
        name,
        expires_at: days.map(|d| now + chrono::Duration::days(d)),
    };
    match create_token(state.store.as_ref(), new, now).await {
        Ok((_, secret)) => tokens_page(&state, &op, StatusCode::OK, Some(secret), None).await,
        Err(e) => unavailable(&e),
    }
}

/// `POST /tokens/{id}/revoke`: the token stops working at once on this node (within a second
/// on the others).
pub async fn revoke(State(state): State<AppState>, Path(id): Path<String>, Posted { op, .. }: Posted) -> Response {
    match state.store.get_token(&id).await {
        Ok(Some(t)) if t.env == op.env => {}
        Ok(_) => return (StatusCode::NOT_FOUND, "no such token in this environment").into_response(),
        Err(e) => return unavailable(&e),
    }
    if let Err(e) = state.store.delete_token(&id).await {
        return unavailable(&e);
    }
    state.tokens.clear();
    Redirect::to("/tokens").into_response()
}
