//! The event catalog: the built-in event types, seeding them into each environment, examples
//! and fresh envelopes for test events, and the compiled-schema cache that validates payloads.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use hookd_core::model::{Environment, EventType};
use hookd_core::validate::FieldError;
use hookd_store::{PageRequest, Store, StoreResult};
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;
use serde_json::Value;

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

/// The built-in catalog, one JSON file per event type (Svix `EventTypeIn` shape).
const BUILTIN: [(&str, &str); 16] = [
    (
        "subscription.created",
        include_str!("../catalog/subscription.created.json"),
    ),
    (
        "subscription.updated",
        include_str!("../catalog/subscription.updated.json"),
    ),
    (
        "subscription.canceled",
        include_str!("../catalog/subscription.canceled.json"),
    ),
    ("payment.succeeded", include_str!("../catalog/payment.succeeded.json")),
    ("payment.failed", include_str!("../catalog/payment.failed.json")),
    ("content.published", include_str!("../catalog/content.published.json")),
    ("content.failed", include_str!("../catalog/content.failed.json")),
    ("content.scheduled", include_str!("../catalog/content.scheduled.json")),
    ("content.deleted", include_str!("../catalog/content.deleted.json")),
    ("user.created", include_str!("../catalog/user.created.json")),
    ("user.updated", include_str!("../catalog/user.updated.json")),
    ("team.member_added", include_str!("../catalog/team.member_added.json")),
    (
        "team.member_removed",
        include_str!("../catalog/team.member_removed.json"),
    ),
    ("workspace.created", include_str!("../catalog/workspace.created.json")),
    ("workspace.deleted", include_str!("../catalog/workspace.deleted.json")),
    ("analytics.ready", include_str!("../catalog/analytics.ready.json")),
];

/// The built-in event types, parsed. The files are part of the binary and checked by tests,
/// so a parse failure is a build defect.
pub fn builtin() -> Vec<EventTypeIn> {
    BUILTIN
        .iter()
        .map(|(name, text)| {
            let mut et: EventTypeIn =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("built-in catalog file {name}: {e}"));
            et.name = Some((*name).to_string());
            et
        })
        .collect()
}

/// Loads the built-in catalog into `env` when the environment has never had an event type
/// (first start). Event types the operator archived or changed later are left alone.
pub async fn seed(store: &dyn Store, env: Environment, now: DateTime<Utc>) -> StoreResult<usize> {
    let page = PageRequest::first(1, true);
    if !store.list_event_types(env, true, &page).await?.items.is_empty() {
        return Ok(0);
    }
    let types = builtin();
    for input in &types {
        store
            .upsert_event_type(&event_type_from(env, input.clone(), now))
            .await?;
    }
    Ok(types.len())
}

/// One event type as `hookd catalog export` writes it (Svix `EventTypeIn` fields).
pub fn export_entry(et: EventType) -> Value {
    serde_json::json!({
        "name": et.name,
        "description": et.description,
        "groupName": et.group_name,
        "featureFlag": et.feature_flag,
        "deprecated": et.deprecated,
        "archived": et.archived,
        "schemas": et.schemas,
    })
}

/// Parses a catalog file (a JSON array of event types) and checks every entry: a valid name,
/// a description, schemas that compile. The error names each bad entry.
pub fn parse_import(text: &str) -> Result<Vec<EventTypeIn>, String> {
    let types: Vec<EventTypeIn> = serde_json::from_str(text).map_err(|e| format!("not a catalog file: {e}"))?;
    let mut problems = Vec::new();
    for (i, et) in types.iter().enumerate() {
        let name = et.name.as_deref().unwrap_or_default();
        if let Err(e) = hookd_core::validate::check_event_type_name("name", name) {
            problems.push(format!("entry {i} ({name:?}): {}", e.msg));
        }
        if let Some(schemas) = &et.schemas {
            for p in check_schemas(schemas) {
                problems.push(format!("entry {i} ({name}): {}: {}", p.loc.join("."), p.msg));
            }
        }
    }
    if problems.is_empty() {
        Ok(types)
    } else {
        Err(problems.join("\n"))
    }
}

/// Creates or replaces `types` in `env`, keeping the creation time of those that exist.
pub async fn import(
    store: &dyn Store,
    env: Environment,
    types: Vec<EventTypeIn>,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let n = types.len();
    for input in types {
        let mut et = event_type_from(env, input, now);
        if let Some(old) = store.get_event_type(env, &et.name).await? {
            et.created_at = old.created_at;
        }
        store.upsert_event_type(&et).await?;
    }
    Ok(n)
}

/// An event type record from its input form.
pub fn event_type_from(env: Environment, input: EventTypeIn, now: DateTime<Utc>) -> EventType {
    EventType {
        name: input.name.unwrap_or_default(),
        env,
        description: input.description,
        archived: input.archived.unwrap_or(false),
        deprecated: input.deprecated.unwrap_or(false),
        feature_flag: input.feature_flag,
        group_name: input.group_name,
        schemas: input.schemas,
        created_at: now,
        updated_at: now,
    }
}

/// The newest schema version of `schemas` (`{"1": {...}, "2": {...}}` → the `"2"` schema).
pub fn newest_schema(schemas: Option<&Value>) -> Option<&Value> {
    let versions = schemas?.as_object()?;
    versions
        .iter()
        .max_by_key(|(k, _)| k.parse::<u64>().unwrap_or(0))
        .map(|(_, v)| v)
}

/// The `index`-th example of the newest schema version that has one (`examples` array, or a
/// single `example`); only JSON objects qualify, since payloads are objects.
pub fn example_of(schemas: Option<&Value>, index: usize) -> Option<Value> {
    let versions = schemas?.as_object()?;
    let mut keys: Vec<&String> = versions.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.parse::<u64>().unwrap_or(0)));
    keys.into_iter().find_map(|k| {
        let schema = &versions[k];
        let example = match schema.get("examples").and_then(|e| e.as_array()) {
            Some(list) => list.get(index).cloned(),
            None if index == 0 => schema.get("example").cloned(),
            None => None,
        };
        example.filter(|e| e.is_object())
    })
}

/// A new event id in the catalog's `evt_…` form.
pub fn new_event_id() -> String {
    format!("evt_{}", Alphanumeric.sample_string(&mut rand::thread_rng(), 24))
}

/// Gives an envelope-shaped example (one with `id` and `timestamp`) a new event id and the
/// current time, so each test event is a distinct event. Other payloads are left as they are.
pub fn refresh_envelope(payload: &mut Value, now: DateTime<Utc>) {
    let Some(obj) = payload.as_object_mut() else {
        return;
    };
    if obj.contains_key("id") {
        obj.insert("id".into(), Value::String(new_event_id()));
    }
    if obj.contains_key("timestamp") {
        obj.insert(
            "timestamp".into(),
            Value::String(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
        );
    }
}

/// Compiles a JSON Schema, or says why it is not one.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}

/// Checks every schema version of an event type compiles; problems point at `schemas.<v>`.
pub fn check_schemas(schemas: &Value) -> Vec<FieldError> {
    let Some(versions) = schemas.as_object() else {
        return vec![FieldError::new(
            &["schemas"],
            "schemas must be an object of JSON Schemas keyed by version",
        )];
    };
    versions
        .iter()
        .filter_map(|(version, schema)| {
            compile(schema)
                .err()
                .map(|why| FieldError::new(&["schemas", version], format!("not a valid JSON Schema: {why}")))
        })
        .collect()
}

/// Where a payload breaks its schema: `loc` runs `payload, …` into the payload (the API adds
/// the leading `body`).
pub fn violations(validator: &jsonschema::Validator, payload: &Value) -> Vec<FieldError> {
    validator
        .iter_errors(payload)
        .take(10)
        .map(|e| {
            let mut loc = vec!["payload".to_string()];
            loc.extend(e.instance_path().iter().map(|s| s.to_string()));
            FieldError {
                loc,
                msg: e.to_string(),
            }
        })
        .collect()
}

/// Most event types whose schema (or lack of one) is remembered at once.
const MAX_CACHED_SCHEMAS: usize = 10_000;

/// A compiled schema, or none for an event type without one (or with no such type).
type Compiled = Option<Arc<jsonschema::Validator>>;

/// Compiled schemas by environment and event type, so each schema is compiled once.
///
/// Invalidated by event type writes on this node; the time-to-live bounds staleness for
/// writes made by other nodes sharing the database.
pub struct SchemaCache {
    store: Arc<dyn Store>,
    ttl: Duration,
    entries: RwLock<HashMap<(Environment, String), (Instant, Compiled)>>,
}

impl SchemaCache {
    /// An empty cache.
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> SchemaCache {
        SchemaCache {
            store,
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The compiled newest schema of `name` in `env`. Archived types and types whose schema
    /// does not compile (stored before validation existed) validate nothing.
    pub async fn get(&self, env: Environment, name: &str) -> StoreResult<Compiled> {
        let key = (env, name.to_string());
        if let Some((at, compiled)) = self.entries.read().expect("schema cache lock").get(&key) {
            if at.elapsed() < self.ttl {
                return Ok(compiled.clone());
            }
        }
        let compiled = self
            .store
            .get_event_type(env, name)
            .await?
            .filter(|et| !et.archived)
            .and_then(|et| newest_schema(et.schemas.as_ref()).and_then(|s| compile(s).ok()))
            .map(Arc::new);
        let mut entries = self.entries.write().expect("schema cache lock");
        if entries.len() >= MAX_CACHED_SCHEMAS {
            // Publishers may use any number of event type names: start over rather than grow.
            entries.clear();
        }
        entries.insert(key, (Instant::now(), compiled.clone()));
        Ok(compiled)
    }

    /// Forgets `name` in `env` after a write.
    pub fn invalidate(&self, env: Environment, name: &str) {
        self.entries
            .write()
            .expect("schema cache lock")
            .remove(&(env, name.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_builtin_catalog_has_the_sixteen_events_each_with_a_valid_example() {
        let types = builtin();
        assert_eq!(types.len(), 16);
        for et in &types {
            let name = et.name.as_deref().unwrap();
            assert!(!et.description.trim().is_empty(), "{name} has no description");
            assert!(et.group_name.is_some(), "{name} has no group");
            let schema = newest_schema(et.schemas.as_ref()).unwrap_or_else(|| panic!("{name} has no schema"));
            assert_eq!(
                schema.get("$schema").and_then(Value::as_str),
                Some("https://json-schema.org/draft/2020-12/schema"),
                "{name} must declare draft 2020-12"
            );
            let validator = compile(schema).unwrap_or_else(|e| panic!("{name}: {e}"));
            let example = example_of(et.schemas.as_ref(), 0).unwrap_or_else(|| panic!("{name} has no example"));
            assert_eq!(
                violations(&validator, &example),
                vec![],
                "{name}'s example breaks its schema"
            );
            assert_eq!(example["type"], json!(name), "{name}'s example has the wrong type");

            // The schema constrains: the wrong type and a missing `data` are refused.
            let mut wrong_type = example.clone();
            wrong_type["type"] = json!("something.else");
            assert!(!validator.is_valid(&wrong_type), "{name} accepts any type");
            let mut no_data = example.clone();
            no_data.as_object_mut().unwrap().remove("data");
            assert!(!validator.is_valid(&no_data), "{name} accepts a payload without data");

            // A refreshed example is still valid.
            let mut fresh = example.clone();
            refresh_envelope(&mut fresh, Utc::now());
            assert_ne!(fresh["id"], example["id"]);
            assert!(validator.is_valid(&fresh), "{name}: a fresh envelope breaks the schema");
        }
    }

    #[test]
    fn violations_point_into_the_payload() {
        let schema = json!({
            "type": "object",
            "properties": {"data": {"type": "object", "properties": {"amount": {"type": "integer", "minimum": 0}}}}
        });
        let validator = compile(&schema).unwrap();
        let found = violations(&validator, &json!({"data": {"amount": -5}}));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].loc, vec!["payload", "data", "amount"]);
        assert!(found[0].msg.contains("-5"), "{}", found[0].msg);
    }

    #[test]
    fn schemas_that_do_not_compile_are_reported_by_version() {
        let problems = check_schemas(&json!({"1": {"type": "object"}, "2": {"type": 12}}));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].loc, vec!["schemas", "2"]);
        assert_eq!(check_schemas(&json!([])).len(), 1);
    }

    #[test]
    fn examples_come_from_the_newest_schema_version() {
        let schemas = json!({
            "1": {"examples": [{"v": 1}]},
            "2": {"examples": [{"v": 2}, {"v": 22}]},
        });
        assert_eq!(example_of(Some(&schemas), 0), Some(json!({"v": 2})));
        assert_eq!(example_of(Some(&schemas), 1), Some(json!({"v": 22})));
        assert_eq!(
            example_of(Some(&json!({"1": {"example": {"a": 1}}})), 0),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            example_of(Some(&json!({"1": {"examples": ["not an object"]}})), 0),
            None
        );
        assert_eq!(example_of(None, 0), None);
        assert_eq!(newest_schema(Some(&schemas)), Some(&schemas["2"]));
    }

    #[test]
    fn only_envelope_fields_are_refreshed() {
        let now = Utc::now();
        let mut p = json!({"id": "evt_1", "timestamp": "2020-01-01T00:00:00Z", "data": {"x": 1}});
        refresh_envelope(&mut p, now);
        assert!(p["id"].as_str().unwrap().starts_with("evt_"));
        assert_ne!(p["id"], json!("evt_1"));
        assert_eq!(p["timestamp"], json!(now.to_rfc3339_opts(SecondsFormat::Secs, true)));
        assert_eq!(p["data"], json!({"x": 1}));
        let mut other = json!({"hello": "world"});
        refresh_envelope(&mut other, now);
        assert_eq!(other, json!({"hello": "world"}));
    }
}
