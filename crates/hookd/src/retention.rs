//! Payload retention: a message's payload is removed once its `payloadRetentionPeriod` (days,
//! default 90) has passed. The message, its deliveries and its attempts stay listed; its payload
//! then reads `{"expired": true}`, resends answer `400 missing_payload`, and retries still due
//! end as failed instead of sending nothing.
//!
//! [`run_once`] does one pass; [`run`] repeats it every [`INTERVAL`] until shutdown. Several
//! nodes may run it at once (the PostgreSQL backend skips rows another node is expiring).

use std::sync::Arc;
use std::time::Duration;

use hookd_store::{Store, StoreResult};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// Time between passes.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Payloads removed per statement, so one pass never holds the database for long.
const BATCH: usize = 5_000;

/// Removes every payload whose retention ended by now; returns how many.
pub async fn run_once(store: &dyn Store, clock: &dyn Clock) -> StoreResult<u64> {
    let now = clock.now();
    let mut total = 0;
    loop {
        let n = store.expire_payloads(now, BATCH).await?;
        total += n;
        if (n as usize) < BATCH {
            return Ok(total);
        }
    }
}

/// Runs [`run_once`] every [`INTERVAL`] until `shutdown`.
pub async fn run(store: Arc<dyn Store>, clock: Arc<dyn Clock>, shutdown: CancellationToken) {
    loop {
        match run_once(store.as_ref(), clock.as_ref()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "removed payloads past their retention"),
            Err(e) => tracing::warn!(error = %e, "payload expiry failed; retrying at the next pass"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}
