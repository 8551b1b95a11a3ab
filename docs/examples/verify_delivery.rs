use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hookd_signing::{verify, Secret, VerifyError, WebhookHeaders};

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Checks one delivery. `headers` is the request's `http::HeaderMap` (as in axum and hyper),
/// `body` the raw bytes. Returns the `webhook-id` to deduplicate on.
pub fn verify_delivery(
    secret: &Secret,
    headers: &http::HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<String, VerifyError> {
    // Finds webhook-id / webhook-timestamp / webhook-signature, case-insensitively.
    let pairs = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let parsed = WebhookHeaders::from_pairs(pairs)?;
    // ±300 s (hookd_signing::DEFAULT_TOLERANCE_SECS); signatures compared in constant time.
    verify(secret, &parsed, body, now, 300)?;
    Ok(parsed.id)
}

/// Remembers the `webhook-id`s already processed, so a replayed (or redelivered) request is
/// recognised. In production keep them in your database, in the same transaction as the work;
/// this in-memory version keeps each id for a day.
#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayGuard {
    /// True the first time `id` is seen, false for a repeat.
    pub fn first_time(&self, id: &str, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap();
        seen.retain(|_, at| now - *at <= 24 * 60 * 60);
        seen.insert(id.to_string(), now).is_none()
    }
}
