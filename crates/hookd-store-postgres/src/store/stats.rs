//! Queue counts, endpoint statistics and replay candidates.

use super::*;

#[async_trait]
impl StatsStore for PostgresStore {
    async fn queue_stats(&self, now: DateTime<Utc>, cap: usize) -> StoreResult<QueueStats> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        // The first `cap` entries of the due index: due deliveries come first (a claimed one is
        // due only at its lease's end), so the due count and the oldest due time are exact
        // below the cap.
        let row = sqlx::query(
            "SELECT \
               COUNT(*) FILTER (WHERE next_attempt_at <= $1 AND lease_until <= $1), \
               COUNT(*) FILTER (WHERE lease_until > $1), \
               COUNT(*) FILTER (WHERE next_attempt_at > $1 AND lease_until <= $1), \
               MIN(next_attempt_at) FILTER (WHERE next_attempt_at <= $1 AND lease_until <= $1), \
               (SELECT COUNT(*) FROM (SELECT 1 FROM delivery WHERE parked LIMIT $2) p), \
               (SELECT COUNT(*) FROM endpoint WHERE disabled), \
               COUNT(*) \
             FROM (SELECT next_attempt_at, lease_until FROM delivery \
                   WHERE next_attempt_at IS NOT NULL ORDER BY next_attempt_at LIMIT $2) w",
        )
        .bind(micros(now))
        .bind(cap)
        .fetch_one(self.pool.read())
        .await
        .map_err(map_err)?;
        let count =
            |i: usize| -> StoreResult<u64> { Ok(sqlx::Row::try_get::<i64, _>(&row, i).map_err(map_err)? as u64) };
        Ok(QueueStats {
            due: count(0)?,
            claimed: count(1)?,
            scheduled: count(2)?,
            oldest_due_at: sqlx::Row::try_get::<Option<i64>, _>(&row, 3)
                .map_err(map_err)?
                .map(crate::rows::from_micros),
            parked: count(4)?,
            disabled_endpoints: count(5)?,
            capped: count(6)? >= cap as u64 || count(4)? >= cap as u64,
        })
    }

    async fn add_traffic(&self, minutes: &[TrafficMinute]) -> StoreResult<()> {
        let slots: Vec<String> = (1..=7 + LATENCY_BUCKETS).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO traffic_minute ({TRAFFIC_COLS}) VALUES ({}) \
             ON CONFLICT (env, minute) DO UPDATE SET {TRAFFIC_ADD}",
            slots.join(", ")
        );
        // Minutes in order, so two nodes adding the same minutes lock their rows in one order.
        let mut minutes = minutes.to_vec();
        minutes.sort_by_key(|m| (m.env.as_str(), m.minute));
        let mut tx = self.pool.bookkeeping().begin().await.map_err(map_err)?;
        for m in &minutes {
            let mut q = sqlx::query(&sql).bind(m.env.as_str());
            for v in [m.minute, m.messages, m.deliveries, m.attempts, m.succeeded, m.failed]
                .into_iter()
                .chain(m.latency)
            {
                q = q.bind(v);
            }
            q.execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn traffic(&self, env: Environment, from: i64, until: i64) -> StoreResult<Vec<TrafficMinute>> {
        let found = sqlx::query(&format!(
            "SELECT {TRAFFIC_COLS} FROM traffic_minute WHERE env = $1 AND minute >= $2 AND minute < $3 ORDER BY minute"
        ))
        .bind(env.as_str())
        .bind(from)
        .bind(until)
        .fetch_all(self.pool.read())
        .await
        .map_err(map_err)?;
        found.iter().map(|r| rows::traffic(r).map_err(map_err)).collect()
    }

    async fn prune_traffic(&self, before: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM traffic_minute WHERE minute < $1")
            .bind(before)
            .execute(self.pool.bookkeeping())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn delivery_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        let q = sql::count_by_status(Dialect::Postgres, "delivery", endpoint_id, since, until);
        let rows = self.list(q, status_row).await?;
        Ok(sql::status_counts(rows))
    }

    async fn attempt_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        let q = sql::count_by_status(Dialect::Postgres, "attempt", endpoint_id, since, until);
        let rows = self.list(q, status_row).await?;
        Ok(sql::status_counts(rows))
    }

    async fn replay_candidates(
        &self,
        query: &ReplayQuery,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        self.list(
            sql::replay_candidates(Dialect::Postgres, query, after, limit),
            rows::message,
        )
        .await
    }
}
