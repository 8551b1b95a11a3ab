//! Properties of what hookd reads from a request before anything is stored: the nesting depth
//! of a payload (counted without parsing, so any depth costs one pass) agrees with the parsed
//! document's for any JSON, and any text is counted without panicking.

use proptest::prelude::*;
use serde_json::Value;

/// The depth of a parsed document: arrays and objects count one level each.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// JSON documents with strings full of brackets, quotes and escapes.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[\\[\\]{}\"\\\\a-z ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[\\[\\]{}\"a-z]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_counted_depth_is_the_parsed_depth(doc in json()) {
        let text = serde_json::to_string(&doc).unwrap();
        prop_assert_eq!(hookd::ops::messages::json_depth(&text), depth(&doc), "{}", text);
        let pretty = serde_json::to_string_pretty(&doc).unwrap();
        prop_assert_eq!(hookd::ops::messages::json_depth(&pretty), depth(&doc));
    }

    #[test]
    fn any_text_is_counted_without_panicking(text in ".{0,200}") {
        let counted = hookd::ops::messages::json_depth(&text);
        prop_assert!(counted <= text.len());
    }
}
