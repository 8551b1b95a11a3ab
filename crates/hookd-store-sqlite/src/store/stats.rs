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
                 FROM (SELECT next_attempt_at, lease_until FROM delivery INDEXED BY delivery_due_claim \
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
        let (query, after) = (query.clone(), after.map(String::from));
        self.read(move |c| {
            let mcols: Vec<String> = MESSAGE_COLS.split(", ").map(|col| format!("m.{col}")).collect();
            let mut q = match &query.kind {
                ReplayKind::Missing => {
                    let mut q = Query::new(&format!(
                        "SELECT {} FROM message m WHERE m.app_id = ? AND NOT EXISTS \
                         (SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.endpoint_id = ?)",
                        mcols.join(", ")
                    ));
                    q.params.extend([text(&query.app_id), text(&query.endpoint_id)]);
                    q
                }
                ReplayKind::Deliveries { statuses, event_types, channel, status_code_class } => {
                    let mut q = Query::new(&format!(
                        "SELECT {} FROM delivery d JOIN message m ON m.id = d.msg_id WHERE d.endpoint_id = ?",
                        mcols.join(", ")
                    ));
                    q.params.push(text(&query.endpoint_id));
                    let codes: Vec<String> = statuses.iter().map(|s| s.code().to_string()).collect();
                    q.and(&format!("d.status IN ({})", if codes.is_empty() { "-1".into() } else { codes.join(", ") }), []);
                    message_filters(&mut q, "m", &MessageFilter { event_types: event_types.clone(), channel: channel.clone(), ..MessageFilter::default() });
                    if let Some(class) = status_code_class {
                        // The class of the delivery's latest response.
                        let (lo, hi) = if *class == 0 { (0, 1) } else { (*class, class + 100) };
                        q.and(
                            "(SELECT a.response_status_code FROM attempt a WHERE a.msg_id = d.msg_id AND a.endpoint_id = d.endpoint_id \
                             ORDER BY a.id DESC LIMIT 1) BETWEEN ? AND ?",
                            [Value::Integer(lo), Value::Integer(hi - 1)],
                        );
                    }
                    q
                }
            };
            q.and("m.created_at >= ? AND m.created_at <= ?", [Value::Integer(micros(query.since)), Value::Integer(micros(query.until))]);
            if let Some(after) = after {
                q.and("m.id > ?", [Value::Text(after)]);
            }
            q.sql.push_str(&format!(" ORDER BY m.id ASC LIMIT {limit}"));
            q.fetch(c, rows::message)
        })
        .await
    }
}
