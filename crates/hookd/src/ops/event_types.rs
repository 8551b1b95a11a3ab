//! Event types: the catalog of what publishers send and endpoints subscribe to.

use hookd_core::model::{Environment, EventType};
use hookd_core::validate;
use hookd_store::{Page, PageRequest};
use serde::{Deserialize, Serialize};

use super::Services;
use super::{ErrorCode, OpsError, OpsResult, Problems};

pub use crate::catalog::EventTypeIn;

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
    state: &Services,
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
pub async fn create_event_type(state: &Services, env: Environment, input: EventTypeIn) -> OpsResult<EventType> {
    let name = input.name.clone().unwrap_or_default();
    let existing = state.store.get_event_type(env, &name).await?;
    if existing.as_ref().is_some_and(|e| !e.archived) {
        return Err(OpsError::Conflict {
            code: ErrorCode::EventTypeExists,
            detail: "An event_type with this name already exists".into(),
        });
    }
    save(state, env, name, input, existing).await
}

/// One event type by name.
pub async fn get_event_type(state: &Services, env: Environment, name: &str) -> OpsResult<EventType> {
    state
        .store
        .get_event_type(env, name)
        .await?
        .ok_or(OpsError::NotFound("event type"))
}

/// Creates or replaces by name (bool = created).
pub async fn upsert_event_type(
    state: &Services,
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
    state: &Services,
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
pub async fn delete_event_type(state: &Services, env: Environment, name: &str, expunge: bool) -> OpsResult<()> {
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
    state: &Services,
    env: Environment,
    include_archived: bool,
    page: &PageRequest,
) -> OpsResult<Page<EventType>> {
    Ok(state.store.list_event_types(env, include_archived, page).await?)
}

/// `event-type/import/openapi` input (Svix `EventTypeImportOpenApiIn`): the document as JSON
/// (`spec`) or as JSON or YAML text (`specRaw`).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImportOpenApiIn {
    /// The parsed document.
    #[serde(default)]
    pub spec: Option<serde_json::Value>,
    /// The document as text.
    #[serde(default)]
    pub spec_raw: Option<String>,
    /// Report what would change without changing it.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Archive every event type the document does not describe.
    #[serde(default)]
    pub replace_all: Option<bool>,
}

/// An event type as read from a document (Svix `EventTypeFromOpenApi`).
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeFromOpenApi {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Schemas by version.
    pub schemas: Option<serde_json::Value>,
    /// Deprecated.
    pub deprecated: bool,
    /// Group.
    pub group_name: Option<String>,
    /// Feature flags.
    pub feature_flags: Option<Vec<String>>,
}

/// What an import changed (Svix `EventTypeImportOpenApiOutData`).
#[derive(Debug, Serialize)]
pub struct ImportOpenApiOut {
    /// Names created, updated, restored or (with `replaceAll`) archived.
    pub modified: Vec<String>,
    /// With `dryRun`: what would be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_modify: Option<Vec<EventTypeFromOpenApi>>,
}

/// Creates or updates the event types a document's `webhooks` describe. Types that already
/// match are left alone; archived ones are restored; `replaceAll` archives the rest.
pub async fn import_openapi(state: &Services, env: Environment, input: ImportOpenApiIn) -> OpsResult<ImportOpenApiOut> {
    let doc = match (input.spec, input.spec_raw) {
        (Some(spec), None) => spec,
        (None, Some(raw)) => crate::openapi::parse_raw(&raw).map_err(|detail| OpsError::BadRequest {
            code: ErrorCode::InvalidSpec,
            detail,
        })?,
        _ => {
            return Err(OpsError::BadRequest {
                code: ErrorCode::InvalidSpec,
                detail: "give the document as exactly one of `spec` and `specRaw`".into(),
            })
        }
    };
    let imported = crate::openapi::event_types_of(&doc)?;
    let mut p = Problems::default();
    for et in &imported {
        let name = et.name.as_deref().unwrap_or_default();
        if let Err(mut e) = validate::check_event_type_name("name", name) {
            e.loc = vec!["spec".into(), "webhooks".into(), name.into()];
            p.check(Err(e));
        }
        if let Some(schemas) = &et.schemas {
            for mut problem in crate::catalog::check_schemas(schemas) {
                problem
                    .loc
                    .splice(0..0, ["spec".to_string(), "webhooks".to_string(), name.to_string()]);
                p.check(Err(problem));
            }
        }
    }
    p.finish()?;

    let existing: std::collections::HashMap<String, EventType> = all_event_types(state.store.as_ref(), env, true)
        .await?
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect();
    let named: std::collections::HashSet<String> = imported.iter().filter_map(|e| e.name.clone()).collect();
    let retired: Vec<EventType> = if input.replace_all.unwrap_or(false) {
        existing
            .values()
            .filter(|e| !e.archived && !named.contains(&e.name))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let changes: Vec<EventTypeIn> = imported
        .into_iter()
        .filter(|new| {
            existing.get(new.name.as_deref().unwrap_or_default()).is_none_or(|old| {
                old.archived
                    || old.description != new.description
                    || old.schemas != new.schemas
                    || Some(old.deprecated) != new.deprecated
                    || old.group_name != new.group_name
                    || old.feature_flag != new.feature_flag
            })
        })
        .collect();
    if input.dry_run.unwrap_or(false) {
        let to_modify = changes
            .into_iter()
            .map(|e| EventTypeFromOpenApi {
                name: e.name.unwrap_or_default(),
                description: e.description,
                schemas: e.schemas,
                deprecated: e.deprecated.unwrap_or(false),
                group_name: e.group_name,
                feature_flags: e.feature_flag.map(|f| vec![f]),
            })
            .collect();
        return Ok(ImportOpenApiOut {
            modified: Vec::new(),
            to_modify: Some(to_modify),
        });
    }
    let mut modified = Vec::new();
    for input in changes {
        let name = input.name.clone().unwrap_or_default();
        let old = existing.get(&name).cloned();
        save(state, env, name.clone(), input, old).await?;
        modified.push(name);
    }
    for mut et in retired {
        et.archived = true;
        et.updated_at = state.clock.now();
        state.store.upsert_event_type(&et).await?;
        state.schemas.invalidate(env, &et.name);
        modified.push(et.name);
    }
    Ok(ImportOpenApiOut {
        modified,
        to_modify: None,
    })
}

/// Every event type of `env` in name order (archived ones only with `include_archived`).
pub async fn all_event_types(
    store: &dyn hookd_store::Store,
    env: Environment,
    include_archived: bool,
) -> OpsResult<Vec<EventType>> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(250, true);
    loop {
        let batch = store.list_event_types(env, include_archived, &page).await?;
        let last = batch.items.last().map(|e| e.name.clone());
        all.extend(batch.items);
        match (batch.has_more, last) {
            (true, Some(key)) => page.cursor = Some(hookd_store::Cursor { key, backwards: false }),
            _ => return Ok(all),
        }
    }
}
