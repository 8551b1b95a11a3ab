//! Payload expiry, expunging and pruning.

use super::*;

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn expunge_message_content(&self, app_id: &str, msg_id: &str) -> StoreResult<()> {
        let (app_id, msg_id) = (app_id.to_string(), msg_id.to_string());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE message SET payload = NULL WHERE app_id = ?1 AND id = ?2",
                    params![app_id, msg_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn expunge_app_contents(&self, app_id: &str) -> StoreResult<u64> {
        let app_id = app_id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE message SET payload = NULL WHERE app_id = ?1 AND payload IS NOT NULL",
                [app_id],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn prune_messages(&self, below: &str, limit: usize) -> StoreResult<u64> {
        let below = below.to_string();
        self.write(move |c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT m.id FROM message m WHERE m.id < ?1 AND NOT EXISTS (\
                       SELECT 1 FROM delivery d WHERE d.msg_id = m.id \
                       AND (d.next_attempt_at IS NOT NULL OR d.parked = 1 OR (d.lane IS NOT NULL AND d.status IN (1, 3)))) \
                     ORDER BY m.id LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![below, limit as i64], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .map_err(map_err)?;
            for id in &ids {
                for sql in [
                    "DELETE FROM attempt WHERE msg_id = ?1",
                    "DELETE FROM delivery WHERE msg_id = ?1",
                    "DELETE FROM message WHERE id = ?1",
                ] {
                    c.prepare_cached(sql)
                        .and_then(|mut s| s.execute([id]))
                        .map_err(map_err)?;
                }
            }
            Ok(ids.len() as u64)
        })
        .await
    }

    async fn expunge_attempt_content(&self, msg_id: &str, attempt_id: &str) -> StoreResult<()> {
        let (msg_id, attempt_id) = (msg_id.to_string(), attempt_id.to_string());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE attempt SET response = 'EXPUNGED' WHERE msg_id = ?1 AND id = ?2",
                    params![msg_id, attempt_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn expire_payloads(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(
                // A message with a delivery still waiting for an attempt (due, scheduled or
                // parked) keeps its payload until that delivery is finished.
                "UPDATE message SET payload = NULL WHERE id IN \
                 (SELECT id FROM message WHERE expires_at <= ?1 AND payload IS NOT NULL \
                  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = message.id \
                                  AND (d.next_attempt_at IS NOT NULL OR d.parked = 1 OR (d.lane IS NOT NULL AND d.status IN (1, 3)))) \
                  LIMIT ?2)",
                params![micros(now), limit as i64],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }
}
