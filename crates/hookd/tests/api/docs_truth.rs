//! The documentation names only what exists: every configuration key, environment variable,
//! CLI subcommand and flag, metric, `webhook-*` header and event type that `README.md` and
//! `docs/` mention is in the code, and every configuration key, CLI subcommand and flag, metric
//! and catalog event type of the code is documented.

use std::collections::BTreeSet;

use clap::CommandFactory;
use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// `README.md` and every Markdown file in `docs/`, as (name, text).
fn docs() -> Vec<(String, String)> {
    let mut out = vec![(
        "README.md".to_string(),
        std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap(),
    )];
    for entry in std::fs::read_dir(format!("{ROOT}/docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// All source text that can define a name: the crates' Rust sources and the scripts.
fn sources() -> String {
    fn walk(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("target") {
                    walk(&path, out);
                }
            } else if path
                .extension()
                .is_some_and(|e| e == "rs" || e == "sh" || e == "py" || e == "json")
            {
                out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut out = String::new();
    for dir in ["crates", "scripts", ".ci"] {
        walk(&std::path::Path::new(ROOT).join(dir), &mut out);
    }
    out
}

/// Every maximal run of `allowed` characters in `text` that starts with `prefix`.
fn words(text: &str, prefix: &str, allowed: impl Fn(char) -> bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        if text[..at].chars().next_back().is_some_and(&allowed) {
            continue; // inside a longer word
        }
        let word: String = text[at..].chars().take_while(|c| allowed(*c)).collect();
        out.insert(word);
    }
    out
}

/// Backticked spans of `text` (the text between pairs of single backticks).
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The configuration's keys: `listen`, `delivery.retry_schedule`, …
fn config_keys() -> BTreeSet<String> {
    let config = serde_json::to_value(hookd::Config::default()).unwrap();
    let mut keys = BTreeSet::new();
    for (key, value) in config.as_object().unwrap() {
        match value {
            Value::Object(section) => keys.extend(section.keys().map(|k| format!("{key}.{k}"))),
            _ => {
                keys.insert(key.clone());
            }
        }
    }
    keys
}

/// `HOOKD_DELIVERY__RETRY_SCHEDULE` for `delivery.retry_schedule`.
fn env_var(key: &str) -> String {
    format!("HOOKD_{}", key.replace('.', "__").to_uppercase())
}

#[test]
fn every_configuration_key_is_documented_and_every_documented_key_exists() {
    let keys = config_keys();
    assert!(keys.len() > 40, "{keys:?}");
    let reference = std::fs::read_to_string(format!("{ROOT}/docs/configuration.md")).unwrap();
    for key in &keys {
        assert!(
            reference.contains(&format!("| `{key}` | `{}` |", env_var(key))),
            "docs/configuration.md has no row for {key} (with {})",
            env_var(key)
        );
    }
    let sections: BTreeSet<&str> = keys.iter().filter_map(|k| k.split_once('.').map(|(s, _)| s)).collect();
    // docs/events.md describes payload fields (`metrics.impressions`), not configuration.
    for (file, text) in docs().into_iter().filter(|(f, _)| f != "docs/events.md") {
        for span in code_spans(&text) {
            let Some((section, rest)) = span.split_once('.') else {
                continue;
            };
            let file_name = ["rs", "md", "json", "py", "sh", "toml", "html", "png", "db"].contains(&rest);
            let is_key = sections.contains(section)
                && !file_name
                && !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_key {
                assert!(
                    keys.contains(span),
                    "{file} names the configuration key {span}, which does not exist"
                );
            }
        }
    }
}

#[test]
fn every_environment_variable_the_docs_name_is_read_somewhere() {
    let keys: BTreeSet<String> = config_keys().iter().map(|k| env_var(k)).collect();
    let sources = sources();
    for (file, text) in docs() {
        for var in words(&text, "HOOKD_", |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
        }) {
            let var = var.trim_end_matches('_');
            // A prefix written as `HOOKD_*` or `HOOKD_<KEY>` stands for the family.
            if var == "HOOKD" || keys.contains(var) {
                continue;
            }
            assert!(sources.contains(var), "{file} names {var}, which nothing reads");
        }
    }
}

/// Every subcommand path (`serve`, `token create`, …) with its long flags.
fn subcommands() -> Vec<(String, Vec<String>)> {
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, Vec<String>)>) {
        for sub in cmd.get_subcommands() {
            let name = format!("{prefix}{}", sub.get_name());
            if sub.has_subcommands() {
                walk(sub, &format!("{name} "), out);
            } else {
                let flags = sub
                    .get_arguments()
                    .filter(|a| !a.is_global_set())
                    .filter_map(|a| a.get_long().map(str::to_string))
                    .filter(|f| f != "help" && f != "version")
                    .collect();
                out.push((name, flags));
            }
        }
    }
    let mut out = Vec::new();
    walk(&hookd::cli::Cli::command(), "", &mut out);
    out
}

#[test]
fn every_subcommand_and_flag_is_documented_and_every_documented_one_exists() {
    let commands = subcommands();
    assert!(commands.len() > 10, "{commands:?}");
    let reference = std::fs::read_to_string(format!("{ROOT}/docs/configuration.md")).unwrap();
    for (name, flags) in &commands {
        let row = reference
            .lines()
            .find(|l| l.starts_with(&format!("| `hookd {name}")))
            .unwrap_or_else(|| panic!("docs/configuration.md has no row for `hookd {name}`"));
        for flag in flags {
            let database_flag = ["data-dir", "database", "config"].contains(&flag.as_str());
            let named = row.match_indices(&format!("--{flag}")).any(|(at, m)| {
                let after = row[at + m.len()..].chars().next();
                !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            assert!(
                named || (database_flag && row.contains("database flags")),
                "`hookd {name} --{flag}` is not in its row of docs/configuration.md"
            );
        }
    }
    // What the docs call `hookd <subcommand> …` exists.
    let first_words: BTreeSet<String> = commands
        .iter()
        .map(|(n, _)| n.split(' ').next().unwrap().to_string())
        .collect();
    for (file, text) in docs() {
        for span in code_spans(&text) {
            let Some(rest) = span.strip_prefix("hookd ") else {
                continue;
            };
            let word = rest.split_whitespace().next().unwrap_or("");
            // Flags, and lines hookd prints (`hookd listen: connection lost …`).
            if word.starts_with('-') || word.is_empty() || word.ends_with(':') {
                continue;
            }
            assert!(
                first_words.contains(word),
                "{file} shows `{span}`, but hookd has no `{word}` subcommand"
            );
        }
    }
}

#[test]
fn every_metric_is_documented_and_every_documented_name_exists() {
    // The code outside its tests.
    let code: String = [
        include_str!("../../src/metrics.rs"),
        include_str!("../../src/api/metrics.rs"),
    ]
    .iter()
    .map(|text| text.split("#[cfg(test)]").next().unwrap())
    .collect();
    let metric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let metrics: BTreeSet<String> = words(&code, "\"hookd_", |c| metric(c) || c == '"')
        .into_iter()
        .map(|w| w.trim_matches('"').to_string())
        .filter(|w| !w.is_empty())
        .collect();
    assert!(metrics.len() >= 10, "{metrics:?}");
    let operations = std::fs::read_to_string(format!("{ROOT}/docs/operations.md")).unwrap();
    for m in &metrics {
        assert!(
            operations.contains(m.as_str()),
            "docs/operations.md does not document {m}"
        );
    }
    let sources = sources();
    for (file, text) in docs() {
        for name in words(&text, "hookd_", metric) {
            let name = name.trim_end_matches('_');
            assert!(
                sources.contains(name),
                "{file} names {name}, which is nowhere in the code"
            );
        }
    }
}

#[test]
fn every_webhook_header_the_docs_name_exists() {
    let sources = sources();
    let header = |c: char| c.is_ascii_lowercase() || c == '-';
    let mut seen = 0;
    for (file, text) in docs() {
        for name in words(&text, "webhook-", header) {
            let name = name.trim_end_matches('-');
            if name == "webhook" {
                continue;
            }
            seen += 1;
            assert!(
                sources.contains(name),
                "{file} names the header {name}, which hookd never uses"
            );
        }
    }
    assert!(seen > 10);
}

#[test]
fn the_event_reference_documents_exactly_the_built_in_catalog() {
    let catalog: BTreeSet<String> = hookd::catalog::builtin().into_iter().filter_map(|e| e.name).collect();
    assert!(catalog.len() >= 10);
    let reference = std::fs::read_to_string(format!("{ROOT}/docs/events.md")).unwrap();
    let documented: BTreeSet<String> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`').map(str::to_string))
        .collect();
    assert_eq!(
        documented, catalog,
        "docs/events.md's event sections against the built-in catalog"
    );
}
