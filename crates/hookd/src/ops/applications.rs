//! Applications: one per consumer of webhooks.

use std::collections::BTreeMap;

use hookd_core::id::IdKind;
use hookd_core::model::{Application, Environment};
use hookd_core::validate;
use hookd_store::{Page, PageRequest, StoreError};
use serde::Deserialize;

use super::Services;
use super::{ErrorCode, OpsError, OpsResult, Problems};

/// Fields of a new or replaced application (Svix `ApplicationIn`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    /// Display name (required, non-empty).
    pub name: String,
    /// Optional unique key.
    #[serde(default)]
    pub uid: Option<String>,
    /// String metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Messages per second for its endpoints (`rateLimit` is the old name).
    #[serde(default, alias = "rateLimit")]
    pub throttle_rate: Option<u16>,
}

/// Partial update (Svix `ApplicationPatch`): absent = unchanged, `null` = cleared.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New uid, or `null` to clear.
    #[serde(default, deserialize_with = "super::double_option")]
    pub uid: Option<Option<String>>,
    /// New metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// New rate, or `null` to clear.
    #[serde(default, alias = "rateLimit", deserialize_with = "super::double_option")]
    pub throttle_rate: Option<Option<u16>>,
}

fn check(name: &str, uid: Option<&str>, metadata: &BTreeMap<String, String>, throttle: Option<u16>) -> OpsResult<()> {
    let mut p = Problems::default();
    if name.is_empty() {
        p.check(Err(validate::FieldError::new(
            &["name"],
            "Application names must be at least one character",
        )));
    }
    if let Some(uid) = uid {
        p.check(validate::check_uid("uid", uid, IdKind::Application.prefix()));
    }
    p.check(validate::check_metadata("metadata", metadata));
    if throttle == Some(0) {
        p.check(Err(validate::FieldError::new(
            &["throttleRate"],
            "throttleRate must be at least 1",
        )));
    }
    p.finish()
}

fn conflict(e: StoreError) -> OpsError {
    match e {
        StoreError::Conflict(_) => OpsError::Conflict {
            code: ErrorCode::Conflict,
            detail: "An application with that id or uid already exists".into(),
        },
        other => other.into(),
    }
}

/// Creates an application; with `get_if_exists`, an existing one with the same uid is returned
/// instead (the bool says whether it was created).
pub async fn create_application(
    state: &Services,
    env: Environment,
    input: ApplicationIn,
    get_if_exists: bool,
) -> OpsResult<(Application, bool)> {
    let metadata = input.metadata.unwrap_or_default();
    check(&input.name, input.uid.as_deref(), &metadata, input.throttle_rate)?;
    if get_if_exists {
        if let Some(uid) = &input.uid {
            if let Some(existing) = state.store.get_application(env, uid).await? {
                return Ok((existing, false));
            }
        }
    }
    let now = state.clock.now();
    let app = Application {
        id: IdKind::Application.generate(now, &mut rand::thread_rng()),
        env,
        uid: input.uid,
        name: input.name,
        metadata,
        throttle_rate: input.throttle_rate,
        created_at: now,
        updated_at: now,
    };
    match state.store.create_application(&app).await {
        Ok(()) => Ok((app, true)),
        Err(StoreError::Conflict(_)) if get_if_exists => {
            // Lost a race with an identical create: return the winner.
            let uid = app.uid.as_deref().unwrap_or_default();
            let existing = state
                .store
                .get_application(env, uid)
                .await?
                .ok_or(OpsError::NotFound("application"))?;
            Ok((existing, false))
        }
        Err(e) => Err(conflict(e)),
    }
}

/// The application addressed by id or uid.
pub async fn get_application(state: &Services, env: Environment, key: &str) -> OpsResult<Application> {
    state
        .store
        .get_application(env, key)
        .await?
        .ok_or(OpsError::NotFound("application"))
}

/// Replaces an application, creating it when `key` matches none (the bool says created).
pub async fn upsert_application(
    state: &Services,
    env: Environment,
    key: &str,
    input: ApplicationIn,
) -> OpsResult<(Application, bool)> {
    match state.apps.get(env, key).await? {
        None => create_application(state, env, input, false).await,
        Some(mut app) => {
            let metadata = input.metadata.unwrap_or_default();
            check(&input.name, input.uid.as_deref(), &metadata, input.throttle_rate)?;
            app.name = input.name;
            app.uid = input.uid;
            app.metadata = metadata;
            app.throttle_rate = input.throttle_rate;
            app.updated_at = state.clock.now();
            state.store.update_application(&app).await.map_err(conflict)?;
            state.apps.invalidate(&app.id);
            Ok((app, false))
        }
    }
}

/// Applies a partial update.
pub async fn patch_application(
    state: &Services,
    env: Environment,
    key: &str,
    patch: ApplicationPatch,
) -> OpsResult<Application> {
    let mut app = get_application(state, env, key).await?;
    if let Some(name) = patch.name {
        app.name = name;
    }
    if let Some(uid) = patch.uid {
        app.uid = uid;
    }
    if let Some(metadata) = patch.metadata {
        app.metadata = metadata;
    }
    if let Some(rate) = patch.throttle_rate {
        app.throttle_rate = rate;
    }
    check(&app.name, app.uid.as_deref(), &app.metadata, app.throttle_rate)?;
    app.updated_at = state.clock.now();
    state.store.update_application(&app).await.map_err(conflict)?;
    state.apps.invalidate(&app.id);
    Ok(app)
}

/// Deletes an application and everything under it.
pub async fn delete_application(state: &Services, env: Environment, key: &str) -> OpsResult<()> {
    let app = get_application(state, env, key).await?;
    state.store.delete_application(env, &app.id).await?;
    state.apps.invalidate(&app.id);
    state.endpoints.invalidate(&app.id);
    Ok(())
}

/// A page of applications.
pub async fn list_applications(state: &Services, env: Environment, page: &PageRequest) -> OpsResult<Page<Application>> {
    Ok(state.store.list_applications(env, page).await?)
}
