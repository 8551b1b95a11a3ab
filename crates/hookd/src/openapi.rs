//! OpenAPI: hookd's own API description with the event catalog as OpenAPI 3.1 `webhooks`, and
//! reading event types out of another document's `webhooks` (`event-type/import/openapi`).

use std::collections::{BTreeSet, HashMap};

use hookd_core::model::EventType;
use hookd_core::validate::FieldError;
use serde_json::{json, Map, Value};

use crate::catalog::newest_schema;
use crate::catalog::EventTypeIn;

/// The hand-kept description of every route; `webhooks` is filled from the catalog.
const API_SPEC: &str = include_str!("../openapi/hookd-api.json");

/// hookd's API description, its `webhooks` describing each of `event_types` (archived ones
/// left out) with its newest schema as the request body.
pub fn spec(event_types: &[EventType]) -> Value {
    let mut doc: Value = serde_json::from_str(API_SPEC).expect("the bundled OpenAPI document is valid JSON");
    let webhooks: Map<String, Value> = event_types
        .iter()
        .filter(|et| !et.archived)
        .map(|et| (et.name.clone(), webhook_item(et)))
        .collect();
    doc["webhooks"] = Value::Object(webhooks);
    doc
}

fn webhook_item(et: &EventType) -> Value {
    let schema = newest_schema(et.schemas.as_ref())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object"}));
    let mut op = json!({
        "operationId": et.name,
        "summary": et.name,
        "description": et.description,
        "deprecated": et.deprecated,
        "requestBody": {
            "required": true,
            "content": {"application/json": {"schema": schema}}
        },
        "responses": {
            "2XX": {"description": "Any 2xx status acknowledges the delivery; anything else is retried."}
        }
    });
    if let Some(group) = &et.group_name {
        op["tags"] = json!([group]);
        op["x-svix-group-name"] = json!(group);
    }
    if let Some(flag) = &et.feature_flag {
        op["x-svix-feature-flags"] = json!([flag]);
    }
    json!({"post": op})
}

/// Parses a document given as JSON or YAML text.
pub fn parse_raw(raw: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(v) => Ok(v),
        Err(json_err) => serde_yaml_ng::from_str::<Value>(raw)
            .map_err(|yaml_err| format!("specRaw is neither JSON ({json_err}) nor YAML ({yaml_err})")),
    }
}

/// The event types a document's `webhooks` (or `x-webhooks`) describe, in name order. Each
/// schema is made self-contained: the component schemas it references travel along in `$defs`.
pub fn event_types_of(doc: &Value) -> Result<Vec<EventTypeIn>, FieldError> {
    let (key, hooks) = match (doc.get("webhooks"), doc.get("x-webhooks")) {
        (Some(h), _) => ("webhooks", h),
        (None, Some(h)) => ("x-webhooks", h),
        (None, None) => {
            return Err(FieldError::new(
                &["spec"],
                "the document has no `webhooks` (or `x-webhooks`) section",
            ))
        }
    };
    let hooks = hooks
        .as_object()
        .ok_or_else(|| FieldError::new(&["spec", key], "must be an object of webhooks by event type name"))?;
    let components = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::with_capacity(hooks.len());
    for (name, item) in hooks {
        let op = ["post", "put"]
            .iter()
            .find_map(|m| item.get(*m))
            .or_else(|| item.as_object().and_then(|o| o.values().find(|v| v.is_object())))
            .ok_or_else(|| FieldError::new(&["spec", key, name], "the webhook has no operation"))?;
        let text = |k: &str| op.get(k).and_then(Value::as_str).map(str::to_string);
        let description = text("description").or_else(|| text("summary")).unwrap_or_default();
        let group_name = op
            .get("x-svix-group-name")
            .and_then(Value::as_str)
            .or_else(|| op.pointer("/tags/0").and_then(Value::as_str))
            .map(str::to_string);
        let feature_flag = op
            .pointer("/x-svix-feature-flags/0")
            .and_then(Value::as_str)
            .map(str::to_string);
        let media = op.pointer("/requestBody/content/application~1json");
        let schemas = match media.and_then(|m| m.get("schema")) {
            Some(schema) => {
                let mut schema =
                    self_contained(schema, &components).map_err(|why| FieldError::new(&["spec", key, name], why))?;
                add_media_examples(&mut schema, media.expect("media holds the schema"));
                Some(json!({ "1": schema }))
            }
            None => None,
        };
        out.push(EventTypeIn {
            name: Some(name.clone()),
            description,
            archived: Some(false),
            deprecated: Some(op.get("deprecated").and_then(Value::as_bool).unwrap_or(false)),
            feature_flag,
            schemas,
            group_name,
        });
    }
    Ok(out)
}

/// Copies the examples given beside a schema (`example`, `examples.*.value`) into the schema's
/// own `examples`, where `send-example` and `hookd trigger` look for them.
fn add_media_examples(schema: &mut Value, media: &Value) {
    if schema.get("examples").is_some() || !schema.is_object() {
        return;
    }
    let mut found: Vec<Value> = media.get("example").cloned().into_iter().collect();
    if let Some(named) = media.get("examples").and_then(Value::as_object) {
        found.extend(named.values().filter_map(|e| e.get("value").cloned()));
    }
    if !found.is_empty() {
        schema["examples"] = Value::Array(found);
    }
}

const COMPONENT_PREFIX: &str = "#/components/schemas/";

/// `schema` with every `#/components/schemas/X` reference rewritten to `#/$defs/X` and the
/// referenced components (transitively) copied into `$defs`.
fn self_contained(schema: &Value, components: &Map<String, Value>) -> Result<Value, String> {
    let mut needed = BTreeSet::new();
    let mut queue = vec![schema.clone()];
    while let Some(s) = queue.pop() {
        for name in references(&s) {
            if needed.insert(name.clone()) {
                let component = components
                    .get(&name)
                    .ok_or_else(|| format!("references the missing component schema `{name}`"))?;
                queue.push(component.clone());
            }
        }
    }
    let mut out = rewrite(schema.clone());
    if !needed.is_empty() {
        let defs: HashMap<String, Value> = needed
            .into_iter()
            .map(|n| {
                let body = rewrite(components[&n].clone());
                (n, body)
            })
            .collect();
        let obj = out
            .as_object_mut()
            .ok_or("a schema that references components must be an object")?;
        let slot = obj.entry("$defs").or_insert_with(|| json!({}));
        for (n, body) in defs {
            slot[n] = body;
        }
    }
    Ok(out)
}

fn references(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(o) => {
                if let Some(name) = o
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix(COMPONENT_PREFIX))
                {
                    out.push(name.to_string());
                }
                stack.extend(o.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

fn rewrite(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| match (k.as_str(), &v) {
                    ("$ref", Value::String(r)) if r.starts_with(COMPONENT_PREFIX) => {
                        let name = &r[COMPONENT_PREFIX.len()..];
                        (k, Value::String(format!("#/$defs/{name}")))
                    }
                    _ => (k, rewrite(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(rewrite).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_become_event_types_with_self_contained_schemas() {
        let doc = json!({
            "openapi": "3.1.0",
            "webhooks": {
                "invoice.paid": {"post": {
                    "summary": "Invoice paid",
                    "description": "Sent when an invoice is paid.",
                    "tags": ["billing"],
                    "deprecated": true,
                    "requestBody": {"content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Invoice"},
                        "example": {"id": "inv_1", "lines": []}
                    }}}
                }},
                "ping": {"post": {"summary": "Ping"}}
            },
            "components": {"schemas": {
                "Invoice": {"type": "object", "properties": {"lines": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}}}},
                "Line": {"type": "object", "properties": {"amount": {"type": "integer"}}},
                "Unused": {"type": "string"}
            }}
        });
        let types = event_types_of(&doc).unwrap();
        assert_eq!(types.len(), 2);
        let paid = &types[0];
        assert_eq!(paid.name.as_deref(), Some("invoice.paid"));
        assert_eq!(paid.description, "Sent when an invoice is paid.");
        assert_eq!(paid.group_name.as_deref(), Some("billing"));
        assert_eq!(paid.deprecated, Some(true));
        let schema = &paid.schemas.as_ref().unwrap()["1"];
        assert_eq!(schema["$ref"], json!("#/$defs/Invoice"));
        assert_eq!(
            schema["$defs"]["Invoice"]["properties"]["lines"]["items"]["$ref"],
            json!("#/$defs/Line")
        );
        assert!(schema["$defs"].get("Unused").is_none());
        assert_eq!(schema["examples"], json!([{"id": "inv_1", "lines": []}]));
        let validator = crate::catalog::compile(schema).unwrap();
        assert!(validator.is_valid(&json!({"lines": [{"amount": 5}]})));
        assert!(!validator.is_valid(&json!({"lines": [{"amount": "five"}]})));
        assert_eq!(types[1].description, "Ping");
        assert!(types[1].schemas.is_none());
    }

    #[test]
    fn broken_documents_say_what_is_wrong() {
        assert!(event_types_of(&json!({"openapi": "3.1.0"})).is_err());
        let missing = json!({"webhooks": {"a.b": {"post": {"requestBody": {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Nope"}}}}}}}});
        let err = event_types_of(&missing).unwrap_err();
        assert_eq!(err.loc, vec!["spec", "webhooks", "a.b"]);
        assert!(err.msg.contains("Nope"));
        assert!(parse_raw("webhooks:\n  a.b:\n    post:\n      summary: hi\n").is_ok());
        assert!(parse_raw("{not json: [").is_err());
    }

    #[test]
    fn the_served_spec_round_trips_the_catalog() {
        let now = chrono::Utc::now();
        let mut catalog: Vec<EventType> = crate::catalog::builtin()
            .into_iter()
            .map(|i| crate::catalog::event_type_from(hookd_core::model::Environment::Live, i, now))
            .collect();
        catalog.sort_by(|a, b| a.name.cmp(&b.name));
        let doc = spec(&catalog);
        assert_eq!(doc["openapi"], json!("3.1.0"));
        let back = event_types_of(&doc).unwrap();
        assert_eq!(back.len(), 16);
        for (original, imported) in catalog.iter().zip(&back) {
            assert_eq!(imported.name.as_deref(), Some(original.name.as_str()));
            assert_eq!(imported.description, original.description);
            assert_eq!(imported.group_name, original.group_name);
            assert_eq!(imported.schemas, original.schemas, "{}", original.name);
        }
    }
}
