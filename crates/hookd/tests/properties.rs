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

/// Every key of the configuration file, so generated files name real keys.
const CONFIG_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database",
    "delivery.retry_schedule",
    "delivery.timeout_secs",
    "delivery.max_concurrency",
    "delivery.endpoint_concurrency",
    "delivery.app_concurrency",
    "delivery.backlog",
    "delivery.endpoint_backlog",
    "delivery.app_backlog",
    "delivery.poll_interval_ms",
    "delivery.lease_secs",
    "delivery.allowed_subnets",
    "delivery.allow_http",
    "delivery.disable_after_secs",
    "delivery.circuit_breaker_threshold",
    "delivery.circuit_breaker_cooldown_secs",
    "delivery.shutdown_grace_secs",
    "delivery.proxy",
    "delivery.source_address",
    "delivery.engine_nice",
    "api.max_body_bytes",
    "api.rate_limit_per_sec",
    "api.rate_limit_burst",
    "api.request_timeout_secs",
    "storage.sqlite_synchronous",
    "storage.sqlite_cache_mib",
    "storage.postgres_pool_size",
    "storage.postgres_schema",
    "operational_webhook.url",
    "operational_webhook.secret",
    "catalog.validation",
    "catalog.builtin",
    "metrics.enabled",
    "metrics.listen",
    "metrics.token",
    "retention.prune_after_days",
    "secrets.main_key",
    "secrets.previous_keys",
    "sandbox.allow_private_networks",
    "dashboard.enabled",
    "dashboard.session_ttl_secs",
    "dashboard.public_url",
    "portal.public_url",
    "portal.frame_ancestors",
    "portal.primary_color",
    "portal.dark_mode",
    "portal.logo_url",
    "portal.font_family",
    "portal.hide_powered_by",
];

/// A TOML value of any kind, with the edge cases a hand-written file gets wrong.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0i64..100_000).prop_map(|n| n.to_string()),
        Just("0".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        ".{0,40}".prop_map(|s| format!("{:?}", s)),
        prop_oneof![
            Just("127.0.0.1:8071"),
            Just("[::1]:0"),
            Just("off"),
            Just("warn"),
            Just("enforce"),
            Just("full"),
            Just("normal"),
            Just("127.0.0.0/8"),
            Just("10.0.0.0/33"),
            Just("http://127.0.0.1:1/"),
            Just("socks5://127.0.0.1:1"),
            Just("#fff"),
            Just("whsk_AAAA"),
        ]
        .prop_map(|s| format!("{s:?}")),
        proptest::collection::vec(0u32..100_000, 0..5).prop_map(|v| format!("{v:?}")),
        proptest::collection::vec("[a-z0-9./:]{0,12}", 0..4).prop_map(|v| format!("{v:?}")),
    ]
}

/// Loads `text` as a configuration file, then checks it as `hookd serve` does.
fn load_and_check(text: &str) -> Result<hookd::config::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.toml");
    std::fs::write(&path, text).unwrap();
    let config = hookd::config::Config::load(Some(&path)).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// Any text at all is loaded or refused with a message that says it is the configuration.
    #[test]
    fn any_text_as_a_config_file_is_loaded_or_refused_without_panicking(text in "(?s).{0,300}") {
        if let Err(why) = load_and_check(&text) {
            prop_assert!(why.starts_with("configuration"), "{}", why);
        }
    }

    /// A value of any type for any key is accepted, or refused with that key named; an
    /// accepted configuration written back out loads as the same configuration.
    #[test]
    fn a_value_for_a_key_is_accepted_or_refused_by_name(
        key in proptest::sample::select(CONFIG_KEYS),
        value in toml_value(),
    ) {
        let (section, name) = key.split_once('.').map_or((None, key), |(s, n)| (Some(s), n));
        let text = match section {
            Some(section) => format!("[{section}]\n{name} = {value}\n"),
            None => format!("{name} = {value}\n"),
        };
        match load_and_check(&text) {
            Err(why) => prop_assert!(why.contains(name), "{} refused without naming {}: {}", text, key, why),
            Ok(config) => {
                let written = toml::to_string(&config).unwrap();
                let again = load_and_check(&written);
                prop_assert!(again.as_ref().ok() == Some(&config), "{} → {} → {:?}", text, written, again.err());
            }
        }
    }
}

/// JSON documents shaped like JSON Schemas: schema keywords with values of any kind.
fn schema_like() -> impl Strategy<Value = Value> {
    let keyword = proptest::sample::select(vec![
        "type",
        "properties",
        "required",
        "pattern",
        "minimum",
        "maximum",
        "maxLength",
        "items",
        "enum",
        "const",
        "format",
        "$ref",
        "anyOf",
        "allOf",
        "oneOf",
        "not",
        "additionalProperties",
        "patternProperties",
        "minItems",
        "uniqueItems",
        "$schema",
        "$defs",
        "if",
        "then",
        "else",
    ]);
    let leaf = prop_oneof![
        json(),
        proptest::sample::select(vec![
            "object",
            "string",
            "integer",
            "array",
            "null",
            "email",
            "date-time",
            "uri"
        ])
        .prop_map(|s| Value::String(s.into())),
        "[a-z^$.*+?()\\[\\]{}|\\\\#/]{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, move |inner| {
        proptest::collection::btree_map(keyword.clone(), inner, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any document given as an event type's schema compiles or is refused at `schemas.<v>`
    /// (never a panic), and a compiled one checks any payload, pointing into the payload.
    #[test]
    fn any_schema_compiles_or_is_refused_and_checks_any_payload(
        schema in prop_oneof![schema_like(), json()],
        payload in json(),
    ) {
        let refused = hookd::catalog::check_schemas(&serde_json::json!({ "1": schema.clone() }));
        match hookd::catalog::compile(&schema) {
            Ok(validator) => {
                prop_assert!(refused.is_empty());
                let found = hookd::catalog::violations(&validator, &payload);
                prop_assert!(found.len() <= 10);
                for v in &found {
                    prop_assert_eq!(v.loc.first().map(String::as_str), Some("payload"));
                }
            }
            Err(_) => {
                prop_assert_eq!(refused.len(), 1);
                prop_assert_eq!(&refused[0].loc, &vec!["schemas".to_string(), "1".to_string()]);
            }
        }
    }

    /// The validation path agrees with the schema: a payload passes `{"const": payload}` and
    /// any other payload breaks it.
    #[test]
    fn a_payload_passes_its_own_const_schema_and_no_other(payload in json(), other in json()) {
        let validator = hookd::catalog::compile(&serde_json::json!({ "const": payload })).unwrap();
        prop_assert!(hookd::catalog::violations(&validator, &payload).is_empty());
        if other != payload {
            prop_assert!(!hookd::catalog::violations(&validator, &other).is_empty());
        }
    }
}
