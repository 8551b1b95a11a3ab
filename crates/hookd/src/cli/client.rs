//! Talking to a running hookd from the CLI (`listen`, `trigger`): where it is and the token.

use anyhow::Context;
use serde_json::Value;

/// `--server` and `--token`, shared by the commands that use the API.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// hookd's base URL.
    #[arg(long, env = "HOOKD_SERVER", default_value = "http://127.0.0.1:8071")]
    pub server: String,
    /// API token (`hk_…`).
    #[arg(long, env = "HOOKD_TOKEN", hide_env_values = true)]
    pub token: String,
}

impl ClientArgs {
    /// `server` without a trailing slash.
    pub fn base(&self) -> &str {
        self.server.trim_end_matches('/')
    }

    /// Sends a JSON request to `path` (under the base URL) and returns the JSON answer; a
    /// non-2xx answer is an error carrying hookd's `code` and `detail`.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let mut req = client
            .request(method, format!("{}{path}", self.base()))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach hookd at {}", self.base()))?;
        let status = resp.status();
        let text = resp.text().await?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            anyhow::bail!("{} {}: {}", status.as_u16(), path, describe_error(&value));
        }
        Ok(value)
    }
}

/// hookd's error body in one line.
pub fn describe_error(body: &Value) -> String {
    match (body.get("code"), body.get("detail")) {
        (Some(code), Some(detail)) => format!(
            "{} ({})",
            detail.as_str().unwrap_or_default(),
            code.as_str().unwrap_or_default()
        ),
        (None, Some(Value::Array(items))) => items
            .iter()
            .map(|i| {
                let loc: Vec<String> = i["loc"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .map(|s| s.as_str().map(String::from).unwrap_or_else(|| s.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                format!("{}: {}", loc.join("."), i["msg"].as_str().unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.to_string(),
    }
}
