//! Endpoints: where an application's messages go, and how they are signed.

use std::collections::BTreeMap;

use hookd_core::id::IdKind;
use hookd_core::model::{Application, Endpoint, Environment, OldSecret};
use hookd_core::validate::{self, FieldError};
use hookd_signing::SigningKey;
use hookd_store::{Page, PageRequest, StoreError};
use serde::Deserialize;

use super::Services;
use super::{ErrorCode, OpsError, OpsResult, Problems};
use crate::operational::OpEvent;

/// A new or replaced endpoint (Svix `EndpointIn` / `EndpointUpsertIn`).
///
/// No `Debug`: it can carry a signing secret and custom header values, which must never reach a log
/// or a panic message.
#[derive(Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    /// Destination URL.
    pub url: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Unique key within the application.
    #[serde(default)]
    pub uid: Option<String>,
    /// Start disabled.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// Event-type filter (`filterTypes` is the old name).
    #[serde(default, alias = "filterTypes")]
    pub event_types: Option<Vec<String>>,
    /// Channel filter.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Messages per second (`rateLimit` is the old name).
    #[serde(default, alias = "rateLimit")]
    pub throttle_rate: Option<u16>,
    /// Signing secret; generated when absent. Ignored when replacing an existing endpoint.
    #[serde(default)]
    pub secret: Option<String>,
    /// String metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Custom headers sent with every delivery.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// Partial update (Svix `EndpointPatch`): absent = unchanged, `null` = cleared.
///
/// No `Debug`: it can carry a signing secret and custom header values, which must never reach a log
/// or a panic message.
#[derive(Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    /// New URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New uid or `null`.
    #[serde(default, deserialize_with = "super::double_option")]
    pub uid: Option<Option<String>>,
    /// Enable or disable.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// New event-type filter or `null` for all types.
    #[serde(default, alias = "filterTypes", deserialize_with = "super::double_option")]
    pub event_types: Option<Option<Vec<String>>>,
    /// New channel filter or `null` for all channels.
    #[serde(default, deserialize_with = "super::double_option")]
    pub channels: Option<Option<Vec<String>>>,
    /// New rate or `null`.
    #[serde(default, alias = "rateLimit", deserialize_with = "super::double_option")]
    pub throttle_rate: Option<Option<u16>>,
    /// New metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Header changes (Svix `EndpointHeadersPatchIn`): a `null` value or a name in
/// `deleteHeaders` removes the header.
///
/// No `Debug`: it can carry custom header values, which must never reach a log or a panic message.
#[derive(Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HeadersPatch {
    /// Headers to set (or remove with `null`).
    #[serde(default)]
    pub headers: BTreeMap<String, Option<String>>,
    /// Headers to remove.
    #[serde(default)]
    pub delete_headers: Vec<String>,
}

pub(crate) fn conflict(e: StoreError) -> OpsError {
    match e {
        StoreError::Conflict(_) => OpsError::Conflict {
            code: ErrorCode::Conflict,
            detail: "An endpoint with that id or uid already exists".into(),
        },
        other => other.into(),
    }
}

/// Checks every field of an endpoint, including that filtered event types exist.
pub(crate) async fn check(state: &Services, env: Environment, e: &Endpoint) -> OpsResult<()> {
    let mut p = Problems::default();
    // https is required in the live environment unless the operator allows plain http.
    let https_only = env == Environment::Live && !state.config.delivery.allow_http;
    // `hookd-listen://…` endpoints are served by a `hookd listen` session, not over the network.
    // A destination that is not reached over HTTP records a readable target instead of a URL.
    let http = e.destination.as_ref().is_none_or(|d| d.kind.over_http());
    if http && !crate::relay::is_session_url(&e.url) {
        p.check(validate::check_endpoint_url("url", &e.url, https_only));
    }
    p.check(validate::check_description("description", &e.description));
    if let Some(uid) = &e.uid {
        p.check(validate::check_uid("uid", uid, IdKind::Endpoint.prefix()));
    }
    if let Some(channels) = &e.channels {
        p.check(validate::check_channels(
            "channels",
            channels,
            validate::MAX_ENDPOINT_CHANNELS,
        ));
    }
    if e.throttle_rate == Some(0) {
        p.check(Err(FieldError::new(
            &["throttleRate"],
            "throttleRate must be at least 1",
        )));
    }
    p.check(validate::check_metadata("metadata", &e.metadata));
    p.check(validate::check_headers("headers", &e.headers));
    if let Some(types) = &e.event_types {
        if types.is_empty() {
            p.check(Err(FieldError::new(
                &["eventTypes"],
                "eventTypes must name at least one event type, or be null",
            )));
        }
        if types.len() > validate::MAX_FILTER_TYPES {
            return Err(OpsError::Invalid(vec![FieldError::new(
                &["eventTypes"],
                format!("at most {} event types", validate::MAX_FILTER_TYPES),
            )]));
        }
        let mut missing = Vec::new();
        for t in types {
            match state.store.get_event_type(env, t).await? {
                Some(et) if !et.archived => {}
                _ => missing.push(t.as_str()),
            }
        }
        if !missing.is_empty() {
            p.check(Err(FieldError::new(
                &["eventTypes"],
                format!("The following event types don't exist: {}", missing.join(", ")),
            )));
        }
    }
    p.finish()
}

/// A supplied key (`whsec_…` HMAC, or `whsk_…` ed25519) in its stored form, or a new HMAC key.
fn parse_secret(field: &str, secret: Option<&str>) -> OpsResult<String> {
    match secret {
        None => Ok(SigningKey::generate_hmac(&mut rand::thread_rng()).to_string()),
        Some(s) => SigningKey::parse_endpoint_key(s)
            .map(|k| k.to_string())
            .map_err(|e| FieldError::new(&[field], format!("invalid secret: {e}")).into()),
    }
}

/// What receivers verify with: the HMAC secret itself, or the public key of an ed25519 endpoint.
pub fn verification_key(endpoint: &Endpoint) -> OpsResult<String> {
    SigningKey::parse_endpoint_key(&endpoint.secret)
        .map(|k| k.verification_key())
        .map_err(|e| OpsError::Store(hookd_store::StoreError::internal(e)))
}

/// Longest grace period of a rotated-out key, in seconds (7 days).
pub const MAX_GRACE_SECS: u32 = 7 * 24 * 3600;
/// Rotated-out keys that may still be signing at once.
pub const MAX_OLD_SECRETS: usize = 10;

/// A secret rotation (Svix `EndpointSecretRotateIn`).
///
/// No `Debug`: it can carry a signing key, which must never reach a log or a panic message.
#[derive(Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RotateIn {
    /// The new key; generated (of the current key's kind) when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// How long the old key keeps signing, in seconds (default 24 h, at most 7 days).
    #[serde(default)]
    pub grace_period_seconds: Option<u32>,
}

/// Replaces the signing key. The old one keeps signing, next to the new one, for the grace
/// period, so receivers can switch without rejecting a delivery. Returns the new verification key.
pub async fn rotate_secret(state: &Services, app: &Application, key: &str, input: RotateIn) -> OpsResult<String> {
    let e = get_endpoint(state, app, key).await?;
    rotate_endpoint_secret(state, app, e, input).await
}

/// [`rotate_secret`] of an endpoint or destination already read.
pub(crate) async fn rotate_endpoint_secret(
    state: &Services,
    app: &Application,
    mut e: Endpoint,
    input: RotateIn,
) -> OpsResult<String> {
    let was_disabled = e.disabled;
    let grace = input.grace_period_seconds.unwrap_or(24 * 3600);
    if grace > MAX_GRACE_SECS {
        return Err(FieldError::new(
            &["gracePeriodSeconds"],
            format!("gracePeriodSeconds must be at most {MAX_GRACE_SECS}"),
        )
        .into());
    }
    let current = SigningKey::parse_endpoint_key(&e.secret)
        .map_err(|err| OpsError::Store(hookd_store::StoreError::internal(err)))?;
    let new = match input.key.as_deref() {
        Some(k) => parse_secret("key", Some(k))?,
        None => match current {
            SigningKey::Ed25519(_) => SigningKey::generate_ed25519(&mut rand::thread_rng()).to_string(),
            SigningKey::Hmac(_) => SigningKey::generate_hmac(&mut rand::thread_rng()).to_string(),
        },
    };
    let now = state.clock.now();
    e.old_secrets.retain(|o| o.expires_at > now);
    if grace > 0 {
        if e.old_secrets.len() >= MAX_OLD_SECRETS {
            return Err(OpsError::BadRequest {
                code: ErrorCode::LimitReached,
                detail: format!("At most {MAX_OLD_SECRETS} previous keys may still be signing; wait for one to expire or rotate with gracePeriodSeconds 0"),
            });
        }
        let old = std::mem::replace(&mut e.secret, new);
        e.old_secrets.insert(
            0,
            OldSecret {
                key: old,
                expires_at: now + chrono::Duration::seconds(grace.into()),
            },
        );
    } else {
        e.secret = new;
    }
    let saved = save(state, app, e, was_disabled).await?;
    verification_key(&saved)
}

/// Creates an endpoint in `app`.
pub async fn create_endpoint(state: &Services, app: &Application, input: EndpointIn) -> OpsResult<Endpoint> {
    let now = state.clock.now();
    let secret = parse_secret("secret", input.secret.as_deref())?;
    let endpoint = Endpoint {
        id: IdKind::Endpoint.generate(now, &mut rand::thread_rng()),
        app_id: app.id.clone(),
        uid: input.uid,
        url: input.url,
        description: input.description.unwrap_or_default(),
        disabled: input.disabled.unwrap_or(false),
        event_types: input.event_types,
        channels: input.channels,
        throttle_rate: input.throttle_rate,
        metadata: input.metadata.unwrap_or_default(),
        secret,
        headers: input.headers.unwrap_or_default(),
        old_secrets: Vec::new(),
        failing_since: None,
        created_at: now,
        updated_at: now,
        destination: None,
    };
    insert(state, app, endpoint).await
}

/// Checks and stores a new endpoint or destination, and says so to operational webhooks.
pub(crate) async fn insert(state: &Services, app: &Application, endpoint: Endpoint) -> OpsResult<Endpoint> {
    check(state, app.env, &endpoint).await?;
    state.store.create_endpoint(&endpoint).await.map_err(conflict)?;
    state.endpoints.invalidate(&app.id);
    state
        .notifier
        .notify(OpEvent::endpoint("endpoint.created", app, &endpoint))
        .await;
    Ok(endpoint)
}

/// The plain HTTP endpoint addressed by id or uid (destinations are not found here).
pub async fn get_endpoint(state: &Services, app: &Application, key: &str) -> OpsResult<Endpoint> {
    match state.store.get_endpoint(&app.id, key).await? {
        Some(e) if e.destination.is_none() => Ok(e),
        _ => Err(OpsError::NotFound("endpoint")),
    }
}

/// The endpoint or destination addressed by id or uid, for what both have: attempts,
/// attempted messages and statistics.
pub async fn get_target(state: &Services, app: &Application, key: &str) -> OpsResult<Endpoint> {
    state
        .store
        .get_endpoint(&app.id, key)
        .await?
        .ok_or(OpsError::NotFound("endpoint"))
}

/// Validates and stores a changed endpoint. Enabling a disabled endpoint resumes the
/// deliveries that were parked while it was disabled.
pub(crate) async fn save(
    state: &Services,
    app: &Application,
    mut endpoint: Endpoint,
    was_disabled: bool,
) -> OpsResult<Endpoint> {
    check(state, app.env, &endpoint).await?;
    endpoint.updated_at = state.clock.now();
    if was_disabled && !endpoint.disabled {
        // Enabled again by someone: the auto-disable clock starts afresh.
        endpoint.failing_since = None;
    }
    state.store.update_endpoint(&endpoint).await.map_err(conflict)?;
    state.endpoints.invalidate(&app.id);
    state
        .notifier
        .notify(OpEvent::endpoint("endpoint.updated", app, &endpoint))
        .await;
    match (was_disabled, endpoint.disabled) {
        (false, true) => {
            state
                .notifier
                .notify(OpEvent::endpoint("endpoint.disabled", app, &endpoint))
                .await
        }
        (true, false) => {
            state
                .notifier
                .notify(OpEvent::endpoint("endpoint.enabled", app, &endpoint))
                .await
        }
        _ => {}
    }
    if was_disabled && !endpoint.disabled {
        let resumed = state.store.unpark_endpoint(&endpoint.id, state.clock.now()).await?;
        if resumed > 0 {
            tracing::info!(endpoint = %endpoint.id, resumed, "endpoint enabled; parked deliveries resume");
            state.dispatcher.wake();
        }
    }
    Ok(endpoint)
}

/// Replaces an endpoint's settings, creating it when `key` matches none (bool = created).
pub async fn upsert_endpoint(
    state: &Services,
    app: &Application,
    key: &str,
    input: EndpointIn,
) -> OpsResult<(Endpoint, bool)> {
    let Some(mut endpoint) = state.store.get_endpoint(&app.id, key).await? else {
        return Ok((create_endpoint(state, app, input).await?, true));
    };
    if endpoint.destination.is_some() {
        return Err(OpsError::Conflict {
            code: ErrorCode::Conflict,
            detail: "A destination has that id or uid; change it through /destination".into(),
        });
    }
    let was_disabled = endpoint.disabled;
    endpoint.url = input.url;
    endpoint.description = input.description.unwrap_or_default();
    endpoint.uid = input.uid;
    endpoint.disabled = input.disabled.unwrap_or(false);
    endpoint.event_types = input.event_types;
    endpoint.channels = input.channels;
    endpoint.throttle_rate = input.throttle_rate;
    endpoint.metadata = input.metadata.unwrap_or_default();
    Ok((save(state, app, endpoint, was_disabled).await?, false))
}

/// Applies a partial update.
pub async fn patch_endpoint(
    state: &Services,
    app: &Application,
    key: &str,
    patch: EndpointPatch,
) -> OpsResult<Endpoint> {
    let mut e = get_endpoint(state, app, key).await?;
    let was_disabled = e.disabled;
    if let Some(url) = patch.url {
        e.url = url;
    }
    if let Some(description) = patch.description {
        e.description = description;
    }
    if let Some(uid) = patch.uid {
        e.uid = uid;
    }
    if let Some(disabled) = patch.disabled {
        e.disabled = disabled;
    }
    if let Some(types) = patch.event_types {
        e.event_types = types;
    }
    if let Some(channels) = patch.channels {
        e.channels = channels;
    }
    if let Some(rate) = patch.throttle_rate {
        e.throttle_rate = rate;
    }
    if let Some(metadata) = patch.metadata {
        e.metadata = metadata;
    }
    save(state, app, e, was_disabled).await
}

/// Deletes an endpoint; its pending deliveries are dropped with it.
pub async fn delete_endpoint(state: &Services, app: &Application, key: &str) -> OpsResult<()> {
    remove(state, app, get_endpoint(state, app, key).await?).await
}

/// Deletes an endpoint or destination already read, and says so to operational webhooks.
pub(crate) async fn remove(state: &Services, app: &Application, e: Endpoint) -> OpsResult<()> {
    state.store.delete_endpoint(&app.id, &e.id).await?;
    state.endpoints.invalidate(&app.id);
    state
        .notifier
        .notify(OpEvent::endpoint("endpoint.deleted", app, &e))
        .await;
    Ok(())
}

/// A page of endpoints.
pub async fn list_endpoints(state: &Services, app: &Application, page: &PageRequest) -> OpsResult<Page<Endpoint>> {
    Ok(state.store.list_endpoints(&app.id, page).await?)
}

/// Custom headers split into shown ones and the names of withheld (sensitive) ones.
pub fn visible_headers(e: &Endpoint) -> (BTreeMap<String, String>, Vec<String>) {
    let mut shown = BTreeMap::new();
    let mut sensitive = Vec::new();
    for (name, value) in &e.headers {
        if validate::is_sensitive_header(name) {
            sensitive.push(name.clone());
        } else {
            shown.insert(name.clone(), value.clone());
        }
    }
    (shown, sensitive)
}

/// Replaces all custom headers.
pub async fn set_headers(
    state: &Services,
    app: &Application,
    key: &str,
    headers: BTreeMap<String, String>,
) -> OpsResult<()> {
    let mut e = get_endpoint(state, app, key).await?;
    let was_disabled = e.disabled;
    e.headers = headers;
    save(state, app, e, was_disabled).await.map(drop)
}

/// Merges header changes.
pub async fn patch_headers(state: &Services, app: &Application, key: &str, patch: HeadersPatch) -> OpsResult<()> {
    let mut e = get_endpoint(state, app, key).await?;
    let was_disabled = e.disabled;
    for (name, value) in patch.headers {
        // Header names are case-insensitive: replace any spelling of the same name.
        e.headers.retain(|k, _| !k.eq_ignore_ascii_case(&name));
        if let Some(v) = value {
            e.headers.insert(name, v);
        }
    }
    for name in patch.delete_headers {
        e.headers.retain(|k, _| !k.eq_ignore_ascii_case(&name));
    }
    save(state, app, e, was_disabled).await.map(drop)
}
