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

/// A running task saves its progress at least every batch of a few hundred messages; one
/// silent for this long belongs to a node that died.
pub const STALE_TASK: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// Time between passes.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Payloads removed per statement, so one pass never holds the database for long.
const BATCH: usize = 5_000;

/// Removes every payload whose retention ended by now, and every expired idempotency key,
/// token and browser session; returns how many payloads.
pub async fn run_once(store: &dyn Store, clock: &dyn Clock) -> StoreResult<u64> {
    let now = clock.now();
    let mut total = 0;
    loop {
        let n = store.expire_payloads(now, BATCH).await?;
        total += n;
        if (n as usize) < BATCH {
            break;
        }
    }
    // Keys are replayed for 24 hours; after that their rows are only weight. Expired tokens
    // are refused already; their rows go too.
    while store.delete_expired_idempotency(now, BATCH).await? as usize == BATCH {}
    store.delete_expired_tokens(now).await?;
    // Expired dashboard and portal sessions sign no one in already; their rows go too.
    while store.delete_expired_sessions(now, BATCH).await? as usize == BATCH {}
    // The dashboard charts at most the last 30 days.
    let oldest = now - chrono::Duration::days(crate::traffic::KEEP_DAYS);
    store.prune_traffic(crate::traffic::minute_of(oldest)).await?;
    // A task whose node died stays `running` with no progress saved: report it failed.
    store.fail_stale_tasks(now - STALE_TASK, now).await?;
    Ok(total)
}

/// Deletes messages created more than `days` ago whose deliveries are all finished (with their
/// deliveries and attempts), in batches so delivery never waits long for the database; returns
/// how many. Messages with a delivery still waiting or parked are kept: nothing unsent is lost.
pub async fn prune(store: &dyn Store, clock: &dyn Clock, days: u32) -> StoreResult<u64> {
    let below = hookd_core::id::IdKind::Message.lower_bound(clock.now() - chrono::Duration::days(i64::from(days)));
    let mut total = 0;
    loop {
        let n = store.prune_messages(&below, PRUNE_BATCH).await?;
        total += n;
        if (n as usize) < PRUNE_BATCH {
            return Ok(total);
        }
        // Let deliveries in between batches.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Messages deleted per statement.
const PRUNE_BATCH: usize = 500;

/// Runs [`run_once`] every [`INTERVAL`] until `shutdown`.
/// With `prune_after_days`, each pass also deletes finished messages older than that.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    prune_after_days: Option<u32>,
    shutdown: CancellationToken,
) {
    loop {
        match run_once(store.as_ref(), clock.as_ref()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "removed payloads past their retention"),
            Err(e) => tracing::warn!(error = %e, "payload expiry failed; retrying at the next pass"),
        }
        if let Some(days) = prune_after_days {
            match prune(store.as_ref(), clock.as_ref(), days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deleted = n,
                    days,
                    "deleted finished messages past retention.prune_after_days"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning failed; retrying at the next pass"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}
