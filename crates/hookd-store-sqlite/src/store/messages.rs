//! Messages, deliveries and attempts as the API reads them; manual resends.

use super::*;

#[async_trait]
impl MessageStore for SqliteStore {
    async fn create_message(&self, m: &Message, deliveries: &[NewDelivery]) -> StoreResult<()> {
        // One application's burst takes at most its share of the writer's queue.
        let _place = self.inner.publishes.publish_place(&m.app_id)?;
        let (m, deliveries) = (m.clone(), deliveries.to_vec());
        // No savepoint: the message's insert is the only statement that can fail for a reason
        // of its own (its event id taken), and SQLite undoes a failed statement by itself.
        self.write_as(Isolation::None, move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO message ({MESSAGE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    m.id,
                    m.app_id,
                    m.event_id,
                    m.event_type,
                    m.channels.as_ref().map(Json),
                    m.payload,
                    micros(m.created_at),
                    micros(m.expires_at)
                ])
            })
            .map_err(map_err)?;
            insert_deliveries(c, &deliveries, micros(m.created_at))
        })
        .await
    }

    async fn get_message(&self, app_id: &str, key: &str) -> StoreResult<Option<Message>> {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM message WHERE app_id = ?1 AND (id = ?2 OR event_id = ?2) ORDER BY id = ?2 DESC LIMIT 1"
            ))?
            .query_row(params![app_id, key], rows::message)
            .optional()
        })
        .await
    }

    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        let q = sql::list_messages(Dialect::Sqlite, app_id, filter, page);
        Ok(page.finish(self.list(q, rows::message).await?))
    }

    async fn schedule_manual(&self, d: &NewDelivery, now: DateTime<Utc>) -> StoreResult<String> {
        let d = d.clone();
        self.write(move |c| {
            // A delivery still on its schedule is simply made due now; a finished one gets one
            // manual attempt, after which it stays finished with that attempt's outcome. The id
            // is read afterwards rather than with `RETURNING`, which would keep a statement
            // journal whose release walks the whole transaction (see `claim_due_within`).
            c.prepare_cached(
                "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, next_trigger, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, 1, ?5, ?5) \
                 ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET next_attempt_at = ?5, parked = 0, reviewed_at = NULL, \
                 next_trigger = CASE WHEN lease_until > ?5 THEN 2 WHEN status IN (1, 3) THEN next_trigger ELSE 1 END, \
                 updated_at = ?5",
            )
            .and_then(|mut s| s.execute(params![d.id, d.msg_id, d.endpoint_id, d.app_id, micros(now)]))
            .and_then(|_| {
                c.prepare_cached("SELECT id FROM delivery WHERE msg_id = ?1 AND endpoint_id = ?2")?
                    .query_row(params![d.msg_id, d.endpoint_id], |r| r.get(0))
            })
            .map_err(map_err)
        })
        .await
    }

    async fn get_delivery(&self, msg_id: &str, endpoint_id: &str) -> StoreResult<Option<DeliveryState>> {
        let (msg_id, endpoint_id) = (msg_id.to_string(), endpoint_id.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {DELIVERY_COLS} FROM delivery WHERE msg_id = ?1 AND endpoint_id = ?2"
            ))?
            .query_row(params![msg_id, endpoint_id], rows::delivery)
            .optional()
        })
        .await
    }

    async fn list_message_deliveries(&self, msg_id: &str, page: &PageRequest) -> StoreResult<Page<DeliveryState>> {
        let q = sql::list_message_deliveries(Dialect::Sqlite, msg_id, page);
        Ok(page.finish(self.list(q, rows::delivery).await?))
    }

    async fn list_endpoint_deliveries(
        &self,
        endpoint_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<(DeliveryState, Message)>> {
        let q = sql::list_endpoint_deliveries(Dialect::Sqlite, endpoint_id, filter, page);
        let rows = self
            .list(q, |r| Ok((rows::delivery(r)?, rows::message_at(r, 8)?)))
            .await?;
        Ok(page.finish(rows))
    }

    async fn list_attempts(&self, filter: &AttemptFilter, page: &PageRequest) -> StoreResult<Page<Attempt>> {
        let q = sql::list_attempts(Dialect::Sqlite, filter, page);
        Ok(page.finish(self.list(q, rows::attempt).await?))
    }

    async fn get_attempt(&self, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>> {
        let (msg_id, attempt_id) = (msg_id.to_string(), attempt_id.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ATTEMPT_COLS} FROM attempt WHERE id = ?1 AND msg_id = ?2"
            ))?
            .query_row(params![attempt_id, msg_id], rows::attempt)
            .optional()
        })
        .await
    }

    async fn mark_reviewed(&self, endpoint_id: &str, msg_ids: &[String], at: DateTime<Utc>) -> StoreResult<u64> {
        let endpoint_id = endpoint_id.to_string();
        let ids = serde_json::to_string(msg_ids).map_err(StoreError::internal)?;
        self.write(move |c| {
            c.execute(
                "UPDATE delivery SET reviewed_at = ?3 WHERE endpoint_id = ?1 AND status = ?4 \
                 AND msg_id IN (SELECT value FROM json_each(?2))",
                params![endpoint_id, ids, micros(at), MessageStatus::Fail.code()],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }
}
