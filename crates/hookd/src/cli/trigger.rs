//! `hookd trigger EVENT_TYPE --app APP`: publish a test event built from the catalog example
//! (a new envelope each time), optionally with other `data` or single fields changed, and show
//! where it went.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::ClientArgs;

/// Flags of `hookd trigger`.
#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// Event type to publish, e.g. content.published.
    pub event_type: String,
    /// Application (id or uid) to publish to.
    #[arg(long)]
    pub app: String,
    /// JSON file whose content replaces the example's `data`.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Set one field: `data.plan.amount=2900` (the value is JSON when it parses, else a string).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Channels of the message (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub channels: Vec<String>,
    /// Server and token.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Publishes and prints the message id and its destinations.
pub async fn run(args: TriggerArgs) -> anyhow::Result<()> {
    let et = args
        .client
        .call(Method::GET, &format!("/api/v1/event-type/{}", args.event_type), None)
        .await?;
    let mut payload = crate::catalog::example_of(et.get("schemas"), 0).with_context(|| {
        format!(
            "event type {} has no example in its schema; add one or publish with the API",
            args.event_type
        )
    })?;
    crate::catalog::refresh_envelope(&mut payload, chrono::Utc::now());
    if let Some(file) = &args.data {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        payload["data"] = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    }
    for assignment in &args.set {
        set_field(&mut payload, assignment)?;
    }
    let mut body = json!({"eventType": args.event_type, "payload": payload});
    if !args.channels.is_empty() {
        body["channels"] = json!(args.channels);
    }
    let msg = args
        .client
        .call(Method::POST, &format!("/api/v1/app/{}/msg", args.app), Some(&body))
        .await?;
    let msg_id = msg["id"].as_str().unwrap_or_default().to_string();
    println!(
        "published {msg_id} ({}, event {})",
        args.event_type,
        payload["id"].as_str().unwrap_or("-")
    );
    let destinations = wait_for_outcomes(&args, &msg_id).await?;
    if destinations.is_empty() {
        println!("  no endpoint of {} receives {}", args.app, args.event_type);
    }
    for d in destinations {
        println!(
            "  -> {}  {}  {}",
            d["id"].as_str().unwrap_or_default(),
            d["url"].as_str().unwrap_or_default(),
            d["statusText"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// The message's destinations once each has a first result (`sending` means it failed and a
/// retry is scheduled), or after a few seconds.
async fn wait_for_outcomes(args: &TriggerArgs, msg_id: &str) -> anyhow::Result<Vec<Value>> {
    let path = format!("/api/v1/app/{}/msg/{msg_id}/endpoint", args.app);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let list = args.client.call(Method::GET, &path, None).await?;
        let items = list["data"].as_array().cloned().unwrap_or_default();
        // `pending` = not tried yet; anything else has a first result.
        let settled = items.iter().all(|d| d["statusText"].as_str() != Some("pending"));
        if settled || tokio::time::Instant::now() >= deadline {
            return Ok(items);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Applies `a.b.c=value` to `payload`, creating objects on the way.
fn set_field(payload: &mut Value, assignment: &str) -> anyhow::Result<()> {
    let (path, raw) = assignment
        .split_once('=')
        .with_context(|| format!("--set {assignment}: expected PATH=VALUE"))?;
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let mut at = payload;
    let segments: Vec<&str> = path.split('.').collect();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            anyhow::bail!("--set {assignment}: empty path segment");
        }
        let last = i + 1 == segments.len();
        at = match at {
            Value::Array(items) => {
                let idx: usize = seg
                    .parse()
                    .ok()
                    .filter(|i| *i < items.len())
                    .with_context(|| format!("--set {assignment}: `{seg}` is not an index of the array"))?;
                &mut items[idx]
            }
            Value::Object(map) => map.entry(seg.to_string()).or_insert(Value::Null),
            other => {
                *other = json!({});
                other
                    .as_object_mut()
                    .expect("just made an object")
                    .entry(seg.to_string())
                    .or_insert(Value::Null)
            }
        };
        if last {
            *at = value;
            return Ok(());
        }
    }
    anyhow::bail!("--set {assignment}: empty path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_changes_nested_fields_with_json_or_string_values() {
        let mut p = json!({"data": {"plan": {"amount": 100}, "items": [{"q": 1}]}});
        set_field(&mut p, "data.plan.amount=2900").unwrap();
        set_field(&mut p, "data.plan.name=Pro plan").unwrap();
        set_field(&mut p, "data.items.0.q=5").unwrap();
        set_field(&mut p, "data.new.deep=true").unwrap();
        set_field(&mut p, "metadata.user_id=null").unwrap();
        assert_eq!(
            p,
            json!({"data": {"plan": {"amount": 2900, "name": "Pro plan"}, "items": [{"q": 5}], "new": {"deep": true}},
                   "metadata": {"user_id": null}})
        );
        assert!(set_field(&mut p, "no-equals").is_err());
        assert!(set_field(&mut p, "data.items.7.q=1").is_err());
        assert!(set_field(&mut p, "data..x=1").is_err());
    }
}
