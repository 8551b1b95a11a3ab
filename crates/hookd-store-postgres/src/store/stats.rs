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

    async fn delivery_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        let sql = "SELECT status, COUNT(*) FROM delivery \
                   WHERE endpoint_id = $1 AND created_at >= $2 AND created_at <= $3 GROUP BY status";
        self.counts(sql, endpoint_id, since, until).await
    }

    async fn attempt_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        let sql = "SELECT status, COUNT(*) FROM attempt \
                   WHERE endpoint_id = $1 AND created_at >= $2 AND created_at <= $3 GROUP BY status";
        self.counts(sql, endpoint_id, since, until).await
    }

    async fn replay_candidates(
        &self,
        query: &ReplayQuery,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let mcols = qualified("m", MESSAGE_COLS);
        let mut q = match &query.kind {
            ReplayKind::Missing => {
                let mut q = Query::new(format!("SELECT {mcols} FROM message m WHERE m.app_id = "));
                q.push_bind(query.app_id.clone())
                    .push(" AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.endpoint_id = ")
                    .push_bind(query.endpoint_id.clone())
                    .push(")");
                q
            }
            ReplayKind::Deliveries {
                statuses,
                event_types,
                channel,
                status_code_class,
            } => {
                let mut q = Query::new(format!(
                    "SELECT {mcols} FROM delivery d JOIN message m ON m.id = d.msg_id WHERE d.endpoint_id = "
                ));
                q.push_bind(query.endpoint_id.clone());
                let codes: Vec<i16> = statuses.iter().map(|s| s.code() as i16).collect();
                q.push(" AND d.status = ANY(").push_bind(codes).push(")");
                let filter = MessageFilter {
                    event_types: event_types.clone(),
                    channel: channel.clone(),
                    ..MessageFilter::default()
                };
                message_filters(&mut q, "m", &filter);
                if let Some(class) = status_code_class {
                    // The class of the delivery's latest response.
                    let (lo, hi) = class_bounds(*class);
                    q.push(
                        " AND (SELECT a.response_status_code FROM attempt a \
                         WHERE a.msg_id = d.msg_id AND a.endpoint_id = d.endpoint_id \
                         ORDER BY a.id DESC LIMIT 1) BETWEEN ",
                    )
                    .push_bind(lo)
                    .push(" AND ")
                    .push_bind(hi);
                }
                q
            }
        };
        q.push(" AND m.created_at >= ")
            .push_bind(micros(query.since))
            .push(" AND m.created_at <= ")
            .push_bind(micros(query.until));
        if let Some(after) = after {
            q.push(" AND m.id > ").push_bind(after.to_string());
        }
        q.push(" ORDER BY m.id ASC LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        self.fetch(q, rows::message).await
    }
}
