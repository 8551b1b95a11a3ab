//! Data-driven tests from the Standard Webhooks reference vectors.
//!
//! Every case in the JSON is executed; unknown `expect` values or case keys
//! fail the run so that newly added vectors cannot be skipped silently.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hookd_signing::{verify, Secret, SecretError, VerifyError, WebhookHeaders};
use serde_json::Value;
use sha2::Sha256;

const VECTORS: &str = include_str!("data/standard-webhooks-vectors.json");
const TOLERANCE: i64 = hookd_signing::DEFAULT_TOLERANCE_SECS;
/// Fixed "now": verification takes time as an input, so no clock is needed.
const NOW: i64 = 1_700_000_000;
const HEADER_NAMES: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("vector file is valid JSON")
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .map(|x| x.as_str().unwrap_or_else(|| panic!("{key} must be a string")))
}

/// Independent oracle (straight from the spec) for signatures over an
/// arbitrary timestamp string, including ones `Secret::sign` cannot express.
fn oracle_sig(key: &[u8], id: &str, ts: &str, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(payload);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[test]
fn vector_file_resolves() {
    let v = vectors();
    assert_eq!(v["constants"]["secret_prefix"], hookd_signing::SECRET_PREFIX);
    assert_eq!(v["constants"]["library_timestamp_tolerance_seconds"], TOLERANCE);
}

#[test]
fn sign_vectors() {
    let v = vectors();
    let cases = v["sign_vectors"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let id = str_field(case, "id").unwrap();
        let secret = Secret::parse(str_field(case, "secret").unwrap()).unwrap();
        assert_eq!(
            secret.as_bytes().len() as u64,
            case["secret_decoded_len_bytes"].as_u64().unwrap(),
            "{id}"
        );
        let msg_id = str_field(case, "msg_id").unwrap();
        let ts = case["timestamp"].as_i64().unwrap();
        let payload = str_field(case, "payload").unwrap().as_bytes();
        let expected = str_field(case, "expected_signature").unwrap();

        assert_eq!(secret.sign(msg_id, ts, payload), expected, "{id}");
        assert_eq!(
            hookd_signing::signature_header(&[&secret], msg_id, ts, payload),
            expected,
            "{id}"
        );
        let headers = WebhookHeaders {
            id: msg_id.into(),
            timestamp: ts.to_string(),
            signature: expected.into(),
        };
        assert_eq!(verify(&secret, &headers, payload, ts, TOLERANCE), Ok(()), "{id}");
    }
}

const CASE_KEYS: &[&str] = &[
    "name",
    "secret",
    "msg_id",
    "payload",
    "timestamp",
    "signature_header",
    "join_with",
    "omit_header",
    "header_names",
    "expect",
    "found_in",
];

/// Resolves a `signature_header` token against the correct signature.
fn resolve_sig(token: &str, valid: &str) -> String {
    if token == "valid_sig" {
        return valid.to_owned();
    }
    if let Some(range) = token.strip_prefix("valid_sig[").and_then(|r| r.strip_suffix(']')) {
        let (a, b) = range.split_once(':').expect("slice syntax valid_sig[a:b]");
        return valid[a.parse::<usize>().unwrap()..b.parse::<usize>().unwrap()].to_owned();
    }
    assert!(
        !token.starts_with("valid_sig"),
        "unrecognised signature token {token:?}"
    );
    token.to_owned()
}

fn run_verify_case(defaults: &Value, case: &Value) -> Result<(), String> {
    if let Some(key) = case
        .as_object()
        .unwrap()
        .keys()
        .find(|k| !CASE_KEYS.contains(&k.as_str()))
    {
        return Err(format!("unrecognised key {key:?}"));
    }
    let field = |k| str_field(case, k).or_else(|| str_field(defaults, k)).unwrap();
    let secret = Secret::parse(field("secret")).map_err(|e| e.to_string())?;
    let msg_id = field("msg_id");
    let payload = field("payload").as_bytes();

    let ts = match str_field(case, "timestamp").unwrap_or("now") {
        "now" => NOW.to_string(),
        t => match t.strip_prefix("now").map(|d| d.parse::<i64>()) {
            Some(Ok(delta)) => (NOW + delta).to_string(), // "now-301" / "now+301"
            Some(Err(_)) => return Err(format!("bad relative timestamp {t:?}")),
            None => t.to_owned(),
        },
    };
    let valid = oracle_sig(secret.as_bytes(), msg_id, &ts, payload);
    let signature = match case.get("signature_header") {
        None => valid.clone(),
        Some(Value::String(s)) => resolve_sig(s, &valid),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| resolve_sig(p.as_str().unwrap(), &valid))
            .collect::<Vec<_>>()
            .join(str_field(case, "join_with").unwrap_or(" ")),
        Some(other) => return Err(format!("bad signature_header {other}")),
    };

    let names: Vec<&str> = match case.get("header_names") {
        Some(list) => list.as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect(),
        None => HEADER_NAMES.to_vec(),
    };
    let omit = str_field(case, "omit_header");
    let pairs = names
        .iter()
        .zip([msg_id, ts.as_str(), signature.as_str()])
        .filter(|(n, _)| Some(**n) != omit)
        .map(|(n, v)| (*n, v));
    let result = WebhookHeaders::from_pairs(pairs).and_then(|h| verify(&secret, &h, payload, NOW, TOLERANCE));

    let expected = match str_field(case, "expect").unwrap() {
        "ok" => Ok(()),
        "error:invalid_signature" => Err(VerifyError::InvalidSignature),
        "error:timestamp_too_old" => Err(VerifyError::TimestampTooOld),
        "error:timestamp_too_new" => Err(VerifyError::TimestampTooNew),
        "error:invalid_timestamp" => Err(VerifyError::InvalidTimestamp),
        "error:missing_header" => {
            let omitted = omit.ok_or("missing_header case without omit_header")?;
            let name = HEADER_NAMES
                .into_iter()
                .find(|n| *n == omitted)
                .ok_or("unknown omit_header")?;
            Err(VerifyError::MissingHeader(name))
        }
        other => return Err(format!("unrecognised expect {other:?}")),
    };
    if result == expected {
        Ok(())
    } else {
        Err(format!("expected {expected:?}, got {result:?}"))
    }
}

#[test]
fn verify_cases() {
    let v = vectors();
    let defaults = &v["verify_cases"]["defaults"];
    let cases = v["verify_cases"]["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_verify_case(defaults, case)
                .err()
                .map(|e| format!("{}: {e}", case["name"]))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn secret_cases() {
    let v = vectors();
    for case in v["secret_cases"].as_array().unwrap() {
        let input = str_field(case, "secret").unwrap();
        let result = Secret::parse(input);
        match str_field(case, "expect").unwrap() {
            "error:empty_secret" => assert_eq!(result, Err(SecretError::Empty), "{input:?}"),
            e if e.starts_with("ok") => assert!(result.is_ok(), "{input:?}: {result:?}"),
            other => panic!("unrecognised expect {other:?}"),
        }
    }
}

#[test]
fn php_signing_input_timestamps_are_invalid() {
    let v = vectors();
    let secret = Secret::parse(str_field(&v["verify_cases"]["defaults"], "secret").unwrap()).unwrap();
    for case in v["signing_input_cases_php"].as_array().unwrap() {
        let ts = str_field(case, "timestamp").unwrap();
        let expect = str_field(case, "expect").unwrap();
        assert!(expect.starts_with("error:signing"), "unrecognised expect {expect:?}");
        // Correctly signed, so only the timestamp can cause the rejection.
        let headers = WebhookHeaders {
            id: "msg_1".into(),
            timestamp: ts.into(),
            signature: oracle_sig(secret.as_bytes(), "msg_1", ts, b"{}"),
        };
        assert_eq!(
            verify(&secret, &headers, b"{}", NOW, TOLERANCE),
            Err(VerifyError::InvalidTimestamp),
            "{ts:?}"
        );
    }
}
