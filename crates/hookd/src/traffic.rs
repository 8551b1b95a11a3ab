//! Traffic counted per environment and minute, for the dashboard's charts: messages published,
//! deliveries fanned out, attempts, successes, deliveries failed for good, and the
//! publish-to-delivered latency of scheduled deliveries as a histogram.
//!
//! Counting happens in memory, where the work is done (the API after a message commits, the
//! dispatcher after an attempt); [`run`] adds the counts to the database every few seconds
//! (`traffic_minute`, one additive row per environment and minute however many nodes add to
//! it). Pages read the stored minutes plus what this node has not stored yet, so charts read
//! hundreds of rows, never the attempt log. A crash loses at most the last few seconds of
//! counts; messages and attempts themselves are never affected.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hookd_core::model::Environment;
use hookd_store::{StatsStore, StoreResult, TrafficMinute};
use tokio_util::sync::CancellationToken;

/// Days of traffic kept for the charts; the retention pass deletes older minutes.
pub const KEEP_DAYS: i64 = 30;

/// How often counts are stored.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Most minutes held in memory while the database refuses them (two environments, one day):
/// beyond it the oldest are dropped, so an outage cannot grow memory.
pub const MOST_PENDING: usize = 2 * 24 * 60;

/// Counts not stored yet, by environment and minute.
#[derive(Debug, Default)]
pub struct Traffic {
    pending: Mutex<BTreeMap<(Environment, i64), TrafficMinute>>,
}

/// Minutes since the epoch of `at`.
pub fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

impl Traffic {
    fn count(&self, env: Environment, at: DateTime<Utc>, f: impl FnOnce(&mut TrafficMinute)) {
        self.count_minute(env, minute_of(at), f);
    }

    /// Changes the pending counts of one minute, dropping the oldest beyond [`MOST_PENDING`].
    fn count_minute(&self, env: Environment, minute: i64, f: impl FnOnce(&mut TrafficMinute)) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        f(pending
            .entry((env, minute))
            .or_insert_with(|| TrafficMinute::new(env, minute)));
        while pending.len() > MOST_PENDING {
            let oldest = *pending
                .iter()
                .min_by_key(|((_, m), _)| *m)
                .map(|(k, _)| k)
                .expect("not empty");
            pending.remove(&oldest);
        }
    }

    /// A message published at `at`, fanned out to `deliveries` endpoints.
    pub fn message(&self, env: Environment, at: DateTime<Utc>, deliveries: usize) {
        self.count(env, at, |t| {
            t.messages += 1;
            t.deliveries += deliveries as i64;
        });
    }

    /// An attempt made at `at`: whether it succeeded, whether its delivery failed for good,
    /// and, for a scheduled delivery it completed, the publish-to-delivered time.
    pub fn attempt(
        &self,
        env: Environment,
        at: DateTime<Utc>,
        succeeded: bool,
        failed_for_good: bool,
        latency_ms: Option<i64>,
    ) {
        self.count(env, at, |t| {
            t.attempts += 1;
            t.succeeded += i64::from(succeeded);
            t.failed += i64::from(failed_for_good);
            if let Some(ms) = latency_ms {
                t.latency[TrafficMinute::bucket(ms)] += 1;
            }
        });
    }

    /// What this node counted in `[from, until)` (minutes) and has not stored yet.
    pub fn unstored(&self, env: Environment, from: i64, until: i64) -> Vec<TrafficMinute> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.range((env, from)..(env, until)).map(|(_, t)| *t).collect()
    }

    /// Adds the counts to the database; on failure they are kept for the next try.
    pub async fn flush(&self, store: &dyn StatsStore) -> StoreResult<()> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if taken.is_empty() {
            return Ok(());
        }
        let minutes: Vec<TrafficMinute> = taken.values().copied().collect();
        if let Err(e) = store.add_traffic(&minutes).await {
            for t in minutes {
                self.count_minute(t.env, t.minute, |m| m.add(&t));
            }
            return Err(e);
        }
        Ok(())
    }
}

/// Stores the counts every [`FLUSH_EVERY`] until `shutdown`, then once more.
pub async fn run(traffic: Arc<Traffic>, store: Arc<dyn StatsStore>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = traffic.flush(store.as_ref()).await {
            tracing::warn!(error = %e, "cannot store traffic counts; keeping them for the next try");
        }
    }
    if let Err(e) = traffic.flush(store.as_ref()).await {
        tracing::warn!(error = %e, "cannot store the last traffic counts");
    }
}

/// A percentile (`q` in 0..=1) of a latency histogram: the upper bound of the bucket holding
/// that rank, in milliseconds (`None` for an empty histogram, `i64::MAX` beyond the last bound).
pub fn percentile(histogram: &[i64], q: f64) -> Option<i64> {
    let total: i64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(hookd_store::LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(i64::MAX));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn counts_land_in_their_environment_and_minute() {
        let traffic = Traffic::default();
        let t = Utc.with_ymd_and_hms(2026, 12, 3, 10, 15, 30).unwrap();
        traffic.message(Environment::Live, t, 3);
        traffic.message(Environment::Live, t, 2);
        traffic.attempt(Environment::Live, t, true, false, Some(40));
        traffic.attempt(Environment::Live, t + chrono::Duration::seconds(40), false, true, None);
        traffic.message(Environment::Test, t, 1);
        let m = minute_of(t);
        let live = traffic.unstored(Environment::Live, m, m + 2);
        assert_eq!(live.len(), 2);
        assert_eq!((live[0].messages, live[0].deliveries, live[0].attempts), (2, 5, 1));
        assert_eq!(live[0].latency[TrafficMinute::bucket(40)], 1);
        assert_eq!((live[1].attempts, live[1].succeeded, live[1].failed), (1, 0, 1));
        assert_eq!(traffic.unstored(Environment::Test, m, m + 1)[0].messages, 1);
        assert!(traffic.unstored(Environment::Live, m + 2, m + 10).is_empty());
    }

    #[test]
    fn memory_is_bounded_when_nothing_is_stored() {
        let traffic = Traffic::default();
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for i in 0..(MOST_PENDING as i64 + 10) {
            traffic.message(Environment::Live, start + chrono::Duration::minutes(i), 1);
        }
        let kept = traffic.unstored(Environment::Live, 0, i64::MAX);
        assert_eq!(kept.len(), MOST_PENDING);
        assert_eq!(kept[0].minute, minute_of(start) + 10, "the oldest went first");
    }

    #[test]
    fn percentiles_are_read_from_bucket_bounds() {
        let mut h = [0i64; hookd_store::LATENCY_BUCKETS];
        assert_eq!(percentile(&h, 0.5), None);
        h[TrafficMinute::bucket(3)] = 90; // ≤ 5 ms
        h[TrafficMinute::bucket(80)] = 9; // ≤ 100 ms
        h[TrafficMinute::bucket(1_000_000)] = 1; // beyond the last bound
        assert_eq!(percentile(&h, 0.5), Some(5));
        assert_eq!(percentile(&h, 0.95), Some(100));
        assert_eq!(percentile(&h, 0.99), Some(100));
        assert_eq!(percentile(&h, 1.0), Some(i64::MAX));
    }
}
