//! Idempotency keys.

use super::*;

#[async_trait]
impl IdempotencyStore for PostgresStore {
    async fn delete_expired_idempotency(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM idempotency WHERE key IN \
             (SELECT key FROM idempotency WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(micros(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn idempotency_begin(
        &self,
        key: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
        // Bookkeeping of the request, not its effect: never opens or needs the gate.
        // Nodes race for a key here, so the claim is one statement: the insert wins for a new
        // key, and for an existing one the update happens only if the key may be taken over
        // (its entry expired, or it is an in-progress claim gone stale). Either way the row is
        // locked until this transaction ends, so when the claim fails, the read below sees
        // exactly what beat us.
        let mut tx = self.pool.bookkeeping().begin().await.map_err(map_err)?;
        let claimed = sqlx::query(
            "INSERT INTO idempotency (key, status, body, created_at, expires_at) VALUES ($1, 0, NULL, $2, $4) \
             ON CONFLICT (key) DO UPDATE SET status = 0, body = NULL, created_at = EXCLUDED.created_at, \
             expires_at = EXCLUDED.expires_at \
             WHERE idempotency.expires_at <= $2 OR (idempotency.status = 0 AND idempotency.created_at < $3) \
             RETURNING key",
        )
        .bind(key)
        .bind(micros(now))
        .bind(micros(stale_before))
        .bind(micros(expires_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let state = if claimed.is_some() {
            IdempotencyState::Started
        } else {
            let (status, body): (i32, Option<Vec<u8>>) =
                sqlx::query_as("SELECT status, body FROM idempotency WHERE key = $1")
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
            match u16::try_from(status) {
                Ok(0) | Err(_) => IdempotencyState::InProgress,
                Ok(status) => IdempotencyState::Completed {
                    status,
                    body: body.unwrap_or_default(),
                },
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(state)
    }

    async fn idempotency_complete(
        &self,
        key: &str,
        claimed_at: DateTime<Utc>,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()> {
        // Bookkeeping of the request, not its effect: never opens or needs the gate.
        sqlx::query("UPDATE idempotency SET status = $2, body = $3 WHERE key = $1 AND status = 0 AND created_at = $4")
            .bind(key)
            .bind(i32::from(status))
            .bind(body)
            .bind(micros(claimed_at))
            .execute(self.pool.bookkeeping())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn idempotency_release(&self, key: &str, claimed_at: DateTime<Utc>) -> StoreResult<()> {
        // Bookkeeping of the request, not its effect: never opens or needs the gate.
        sqlx::query("DELETE FROM idempotency WHERE key = $1 AND status = 0 AND created_at = $2")
            .bind(key)
            .bind(micros(claimed_at))
            .execute(self.pool.bookkeeping())
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
