//! Payload expiry, expunging and pruning.

use super::*;

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn expunge_message_content(&self, app_id: &str, msg_id: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE message SET payload = NULL WHERE app_id = $1 AND id = $2")
            .bind(app_id)
            .bind(msg_id)
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn expunge_app_contents(&self, app_id: &str) -> StoreResult<u64> {
        let done = sqlx::query("UPDATE message SET payload = NULL WHERE app_id = $1 AND payload IS NOT NULL")
            .bind(app_id)
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn prune_messages(&self, below: &str, limit: usize) -> StoreResult<u64> {
        // One statement: the chosen messages are locked (others' choices skipped), then their
        // attempts, deliveries and the messages themselves go in one transaction.
        let row = sqlx::query(
            "WITH chosen AS ( \
               SELECT m.id FROM message m WHERE m.id < $1 AND NOT EXISTS ( \
                 SELECT 1 FROM delivery d WHERE d.msg_id = m.id \
                 AND (d.next_attempt_at IS NOT NULL OR d.parked OR (d.lane IS NOT NULL AND d.status IN (1, 3)))) \
               ORDER BY m.id LIMIT $2 FOR UPDATE SKIP LOCKED), \
             a AS (DELETE FROM attempt WHERE msg_id IN (SELECT id FROM chosen)), \
             d AS (DELETE FROM delivery WHERE msg_id IN (SELECT id FROM chosen)), \
             m AS (DELETE FROM message WHERE id IN (SELECT id FROM chosen) RETURNING 1) \
             SELECT COUNT(*) FROM m",
        )
        .bind(below)
        .bind(limit as i64)
        .fetch_one(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(sqlx::Row::try_get::<i64, _>(&row, 0).map_err(map_err)? as u64)
    }

    async fn expunge_attempt_content(&self, msg_id: &str, attempt_id: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE attempt SET response = 'EXPUNGED' WHERE msg_id = $1 AND id = $2")
            .bind(msg_id)
            .bind(attempt_id)
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn expire_payloads(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        // SKIP LOCKED: nodes running the expiry at once split the work instead of waiting.
        let done = sqlx::query(
            // A message with a delivery still waiting for an attempt (due, scheduled or parked)
            // keeps its payload until that delivery is finished.
            "UPDATE message SET payload = NULL WHERE id IN \
             (SELECT id FROM message WHERE expires_at <= $1 AND payload IS NOT NULL \
              AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = message.id \
                              AND (d.next_attempt_at IS NOT NULL OR d.parked OR (d.lane IS NOT NULL AND d.status IN (1, 3)))) \
              LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(micros(now))
        .bind(limit as i64)
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
