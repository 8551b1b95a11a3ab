//! Polling destinations: the application's stream ordered by the storing transaction's id, read
//! only below the oldest transaction still running, and consumer positions.

use hookd_store::{PollCursor, PollRecord, PolledMessage, StoreError};

use super::*;

/// A transaction id (`xid8`) read as text.
fn seq_at(row: &PgRow, idx: usize) -> Result<i64, sqlx::Error> {
    let text: String = row.try_get(idx)?;
    text.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

#[async_trait]
impl PollStore for PostgresStore {
    async fn poll_messages(&self, app_id: &str, after: &PollCursor, limit: usize) -> StoreResult<Vec<PolledMessage>> {
        let sql = format!(
            "SELECT xid::text, {MESSAGE_COLS} FROM message \
             WHERE app_id = $1 AND (xid, id) > ($2::text::xid8, $3) \
             AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid, id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(app_id)
            .bind(after.seq.to_string())
            .bind(&after.id)
            .bind(limit as i64)
            .fetch_all(self.pool.read())
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let message = rows::message_at(r, 1)?;
                Ok(PolledMessage {
                    cursor: PollCursor {
                        seq: seq_at(r, 0)?,
                        id: message.id.clone(),
                    },
                    message,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    async fn poll_cursor_at(&self, app_id: &str, at: DateTime<Utc>) -> StoreResult<PollCursor> {
        let bound = hookd_core::id::IdKind::Message.lower_bound(at);
        // The earliest stored of the first committed messages at or after `at`, or else the
        // oldest transaction still running: every later message is stored by it or a newer one.
        let row = sqlx::query(
            "SELECT COALESCE((SELECT MIN(xid)::text FROM (SELECT xid FROM message WHERE app_id = $1 AND id >= $2 \
             AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY id LIMIT $3) AS first), \
             pg_snapshot_xmin(pg_current_snapshot())::text)",
        )
        .bind(app_id)
        .bind(bound)
        .bind(hookd_store::POLL_SEEK_WINDOW)
        .fetch_one(self.pool.read())
        .await
        .map_err(map_err)?;
        Ok(PollCursor {
            seq: seq_at(&row, 0).map_err(map_err)?,
            id: String::new(),
        })
    }

    async fn poll_consumer(&self, endpoint_id: &str, consumer_id: &str) -> StoreResult<Option<PollCursor>> {
        self.fetch_optional(
            sqlx::query("SELECT seq, msg_id FROM poll_consumer WHERE endpoint_id = $1 AND consumer_id = $2")
                .bind(endpoint_id)
                .bind(consumer_id),
            |r| {
                Ok(PollCursor {
                    seq: r.try_get(0)?,
                    id: r.try_get(1)?,
                })
            },
        )
        .await
    }

    async fn record_poll(&self, poll: &PollRecord) -> StoreResult<()> {
        let mut tx = self.pool.write()?.begin().await.map_err(map_err)?;
        let at = micros(poll.at);
        if let Some((consumer_id, cursor)) = &poll.consumer {
            // Consumers of one destination are counted under a lock on the destination's row,
            // so two new consumers cannot both take the last place.
            sqlx::query("SELECT 1 FROM endpoint WHERE id = $1 FOR UPDATE")
                .bind(&poll.endpoint_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            let (known, count): (bool, i64) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM poll_consumer WHERE endpoint_id = $1 AND consumer_id = $2), \
                 (SELECT COUNT(*) FROM poll_consumer WHERE endpoint_id = $1)",
            )
            .bind(&poll.endpoint_id)
            .bind(consumer_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            if !known && count as usize >= poll.max_consumers {
                return Err(StoreError::Conflict("consumers"));
            }
            sqlx::query(
                "INSERT INTO poll_consumer (endpoint_id, consumer_id, app_id, seq, msg_id, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (endpoint_id, consumer_id) \
                 DO UPDATE SET seq = $4, msg_id = $5, updated_at = $6",
            )
            .bind(&poll.endpoint_id)
            .bind(consumer_id)
            .bind(&poll.app_id)
            .bind(cursor.seq)
            .bind(&cursor.id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for (delivery_id, a) in &poll.attempts {
            let (delivery_id, number): (String, i64) = sqlx::query_as(
                "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, scheduled_attempts, total_attempts, \
                 next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 0, 0, 1, NULL, $5, $5) \
                 ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 0, \
                 total_attempts = delivery.total_attempts + 1, updated_at = $5 RETURNING id, total_attempts::bigint",
            )
            .bind(delivery_id)
            .bind(&a.msg_id)
            .bind(&poll.endpoint_id)
            .bind(&poll.app_id)
            .bind(at)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            let a = hookd_store::storable_attempt(a);
            sqlx::query(&format!(
                "INSERT INTO attempt (delivery_id, app_id, {ATTEMPT_COLS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ))
            .bind(&delivery_id)
            .bind(&poll.app_id)
            .bind(&a.id)
            .bind(&a.msg_id)
            .bind(&a.endpoint_id)
            .bind(&a.url)
            .bind(&a.response)
            .bind(a.response_status_code)
            .bind(a.response_duration_ms)
            .bind(a.status.code() as i16)
            .bind(a.trigger_type.code() as i16)
            .bind(number)
            .bind(micros(a.created_at))
            .bind(Json(&a.request_headers))
            .bind(Json(&a.response_headers))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
}
