//! Event types: the catalog of what publishers send and endpoints subscribe to.

use hookd_core::model::{Environment, EventType};
use hookd_core::validate;
use hookd_store::{Page, PageRequest};
use serde::Deserialize;

use super::{OpsError, OpsResult, Problems};
use crate::state::AppState;

/// A new event type (Svix `EventTypeIn`); for PUT the name comes from the path.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    /// Dotted name (taken from the path on PUT).
    #[serde(default)]
    pub name: Option<String>,
    /// What the event means.
    pub description: String,
    /// Hidden from lists and subscriptions.
    #[serde(default)]
    pub archived: Option<bool>,
    /// Discouraged.
    #[serde(default)]
    pub deprecated: Option<bool>,
    /// Visibility flag.
    #[serde(default)]
    pub feature_flag: Option<String>,
    /// JSON Schemas by version.
    #[serde(default)]
    pub schemas: Option<serde_json::Value>,
    /// Group it is listed under.
    #[serde(default)]
    pub group_name: Option<String>,
}

/// Partial update (Svix `EventTypePatch`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Archive or restore.
    #[serde(default)]
    pub archived: Option<bool>,
    /// Deprecate or not.
    #[serde(default)]
    pub deprecated: Option<bool>,
    /// New flag or `null`.
    #[serde(default, deserialize_with = "super::double_option")]
    pub feature_flag: Option<Option<String>>,
    /// New schemas or `null`.
    #[serde(default, deserialize_with = "super::double_option")]
    pub schemas: Option<Option<serde_json::Value>>,
    /// New group or `null`.
    #[serde(default, deserialize_with = "super::double_option")]
    pub group_name: Option<Option<String>>,
}

fn check(et: &EventType) -> OpsResult<()> {
    let mut p = Problems::default();
    p.check(validate::check_event_type_name("name", &et.name));
    p.check(validate::check_description("description", &et.description));
    if let Some(schemas) = &et.schemas {
        for problem in crate::catalog::check_schemas(schemas) {
            p.check(Err(problem));
        }
    }
    p.finish()
}

/// Stores `input` under `name`, keeping the original creation time of a type it replaces.
async fn save(
    state: &AppState,
    env: Environment,
    name: String,
    input: EventTypeIn,
    existing: Option<EventType>,
) -> OpsResult<EventType> {
    let now = state.clock.now();
    let mut et = crate::catalog::event_type_from(
        env,
        EventTypeIn {
            name: Some(name),
            ..input
        },
        now,
    );
    if let Some(e) = existing {
        et.created_at = e.created_at;
    }
    check(&et)?;
    state.store.upsert_event_type(&et).await?;
    state.schemas.invalidate(env, &et.name);
    Ok(et)
}

/// Creates an event type; re-creating an archived one restores it. 409 when it exists.
pub async fn create_event_type(state: &AppState, env: Environment, input: EventTypeIn) -> OpsResult<EventType> {
    let name = input.name.clone().unwrap_or_default();
    let existing = state.store.get_event_type(env, &name).await?;
    if existing.as_ref().is_some_and(|e| !e.archived) {
        return Err(OpsError::Conflict {
            code: "event_type_exists",
            detail: "An event_type with this name already exists".into(),
        });
    }
    save(state, env, name, input, existing).await
}

/// One event type by name.
pub async fn get_event_type(state: &AppState, env: Environment, name: &str) -> OpsResult<EventType> {
    state
        .store
        .get_event_type(env, name)
        .await?
        .ok_or(OpsError::NotFound("event type"))
}

/// Creates or replaces by name (bool = created).
pub async fn upsert_event_type(
    state: &AppState,
    env: Environment,
    name: &str,
    input: EventTypeIn,
) -> OpsResult<(EventType, bool)> {
    let existing = state.store.get_event_type(env, name).await?;
    let created = existing.is_none();
    Ok((save(state, env, name.to_string(), input, existing).await?, created))
}

/// Applies a partial update.
pub async fn patch_event_type(
    state: &AppState,
    env: Environment,
    name: &str,
    patch: EventTypePatch,
) -> OpsResult<EventType> {
    let mut et = get_event_type(state, env, name).await?;
    if let Some(d) = patch.description {
        et.description = d;
    }
    if let Some(a) = patch.archived {
        et.archived = a;
    }
    if let Some(d) = patch.deprecated {
        et.deprecated = d;
    }
    if let Some(f) = patch.feature_flag {
        et.feature_flag = f;
    }
    if let Some(s) = patch.schemas {
        et.schemas = s;
    }
    if let Some(g) = patch.group_name {
        et.group_name = g;
    }
    check(&et)?;
    et.updated_at = state.clock.now();
    state.store.upsert_event_type(&et).await?;
    state.schemas.invalidate(env, &et.name);
    Ok(et)
}

/// Archives an event type, or deletes it for good with `expunge`.
pub async fn delete_event_type(state: &AppState, env: Environment, name: &str, expunge: bool) -> OpsResult<()> {
    let mut et = get_event_type(state, env, name).await?;
    if expunge {
        state.store.delete_event_type(env, name).await?;
        state.schemas.invalidate(env, name);
    } else {
        et.archived = true;
        et.updated_at = state.clock.now();
        state.store.upsert_event_type(&et).await?;
        state.schemas.invalidate(env, &et.name);
    }
    Ok(())
}

/// A page of event types ordered by name.
pub async fn list_event_types(
    state: &AppState,
    env: Environment,
    include_archived: bool,
    page: &PageRequest,
) -> OpsResult<Page<EventType>> {
    Ok(state.store.list_event_types(env, include_archived, page).await?)
}
