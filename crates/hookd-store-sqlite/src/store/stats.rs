//! Queue counts, endpoint statistics and replay candidates.

use super::*;

#[async_trait]
impl StatsStore for SqliteStore {
    async fn queue_stats(&self, now: DateTime<Utc>, cap: usize) -> StoreResult<QueueStats> {
        let now = micros(now);
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        self.read(move |c| {
            // The first `cap` entries of the due index: due deliveries come first (a claimed
            // one is due only at its lease's end), so the due count and the oldest due time
            // are exact below the cap.
            c.prepare_cached(
                "SELECT \
                   COALESCE(SUM(next_attempt_at <= ?1 AND lease_until <= ?1), 0), \
                   COALESCE(SUM(lease_until > ?1), 0), \
                   COALESCE(SUM(next_attempt_at > ?1 AND lease_until <= ?1), 0), \
                   MIN(CASE WHEN lease_until <= ?1 THEN next_attempt_at END), \
                   (SELECT COUNT(*) FROM (SELECT 1 FROM delivery WHERE parked = 1 LIMIT ?2)), \
                   (SELECT COUNT(*) FROM endpoint WHERE disabled = 1), \
                   COUNT(*) \
                 FROM (SELECT next_attempt_at, lease_until FROM delivery INDEXED BY delivery_due \
                       WHERE next_attempt_at IS NOT NULL ORDER BY next_attempt_at LIMIT ?2)",
            )?
            .query_row(params![now, cap], |r| {
                let (pending, parked) = (r.get::<_, i64>(6)?, r.get::<_, i64>(4)?);
                Ok(QueueStats {
                    capped: pending >= cap || parked >= cap,
                    due: r.get::<_, i64>(0)? as u64,
                    claimed: r.get::<_, i64>(1)? as u64,
                    scheduled: r.get::<_, i64>(2)? as u64,
                    oldest_due_at: r
                        .get::<_, Option<i64>>(3)?
                        .filter(|t| *t <= now)
                        .map(crate::rows::from_micros),
                    parked: r.get::<_, i64>(4)? as u64,
                    disabled_endpoints: r.get::<_, i64>(5)? as u64,
                })
            })
        })
        .await
    }

    async fn add_traffic(&self, minutes: &[TrafficMinute]) -> StoreResult<()> {
        let minutes = minutes.to_vec();
        self.write_bookkeeping(Isolation::Savepoint, move |c| {
            let slots: Vec<String> = (1..=7 + LATENCY_BUCKETS).map(|i| format!("?{i}")).collect();
            let mut stmt = c
                .prepare_cached(&format!(
                    "INSERT INTO traffic_minute ({TRAFFIC_COLS}) VALUES ({}) \
                     ON CONFLICT (env, minute) DO UPDATE SET {TRAFFIC_ADD}",
                    slots.join(", ")
                ))
                .map_err(map_err)?;
            for m in &minutes {
                let counts = [m.minute, m.messages, m.deliveries, m.attempts, m.succeeded, m.failed];
                let values = std::iter::once(rusqlite::types::Value::Text(m.env.as_str().to_string()))
                    .chain(counts.into_iter().chain(m.latency).map(rusqlite::types::Value::Integer));
                stmt.execute(rusqlite::params_from_iter(values)).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn traffic(&self, env: Environment, from: i64, until: i64) -> StoreResult<Vec<TrafficMinute>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TRAFFIC_COLS} FROM traffic_minute WHERE env = ?1 AND minute >= ?2 AND minute < ?3 ORDER BY minute"
            ))?
            .query_map(params![env.as_str(), from, until], rows::traffic)?
            .collect()
        })
        .await
    }

    async fn prune_traffic(&self, before: i64) -> StoreResult<u64> {
        self.write_bookkeeping(Isolation::Savepoint, move |c| {
            c.execute("DELETE FROM traffic_minute WHERE minute < ?1", [before])
                .map(|n| n as u64)
                .map_err(map_err)
        })
        .await
    }

    async fn delivery_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        self.count_by_status("delivery", endpoint_id, since, until).await
    }

    async fn attempt_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        self.count_by_status("attempt", endpoint_id, since, until).await
    }

    async fn replay_candidates(
        &self,
        query: &ReplayQuery,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        self.list(
            sql::replay_candidates(Dialect::Sqlite, query, after, limit),
            rows::message,
        )
        .await
    }
}
