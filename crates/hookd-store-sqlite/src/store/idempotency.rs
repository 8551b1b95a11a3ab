//! Idempotency keys.

use super::*;

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn delete_expired_idempotency(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM idempotency WHERE key IN \
                 (SELECT key FROM idempotency WHERE expires_at <= ?1 LIMIT ?2)",
                params![micros(now), limit as i64],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn idempotency_begin(
        &self,
        key: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
        let key = key.to_string();
        self.write_bookkeeping(Isolation::None, move |c| {
            let existing: Option<(i64, Option<Vec<u8>>, i64, i64)> = c
                .prepare_cached("SELECT status, body, created_at, expires_at FROM idempotency WHERE key = ?1")
                .and_then(|mut s| {
                    s.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .optional()
                })
                .map_err(map_err)?;
            match existing {
                Some((status, body, _, expires)) if status > 0 && expires > micros(now) => {
                    return Ok(IdempotencyState::Completed {
                        status: status as u16,
                        body: body.unwrap_or_default(),
                    })
                }
                Some((0, _, created, expires)) if created >= micros(stale_before) && expires > micros(now) => {
                    return Ok(IdempotencyState::InProgress)
                }
                _ => {}
            }
            c.execute(
                "INSERT INTO idempotency (key, status, body, created_at, expires_at) VALUES (?1, 0, NULL, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET status = 0, body = NULL, created_at = ?2, expires_at = ?3",
                params![key, micros(now), micros(expires_at)],
            )
            .map_err(map_err)?;
            Ok(IdempotencyState::Started)
        })
        .await
    }

    async fn idempotency_complete(
        &self,
        key: &str,
        claimed_at: DateTime<Utc>,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()> {
        let (key, body) = (key.to_string(), body.to_vec());
        self.write_bookkeeping(Isolation::None, move |c| {
            c.execute(
                "UPDATE idempotency SET status = ?2, body = ?3 WHERE key = ?1 AND status = 0 AND created_at = ?4",
                params![key, status, body, micros(claimed_at)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn idempotency_release(&self, key: &str, claimed_at: DateTime<Utc>) -> StoreResult<()> {
        let key = key.to_string();
        self.write_bookkeeping(Isolation::None, move |c| {
            c.execute(
                "DELETE FROM idempotency WHERE key = ?1 AND status = 0 AND created_at = ?2",
                params![key, micros(claimed_at)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }
}
