//! Messages, deliveries and attempts as the API reads them; manual resends.

use super::*;

#[async_trait]
impl MessageStore for PostgresStore {
    async fn create_message(&self, m: &Message, deliveries: &[NewDelivery]) -> StoreResult<()> {
        // Grouped with other publishes into one transaction (see `ingest`).
        self.ingest.create(m, deliveries).await
    }

    async fn get_message(&self, app_id: &str, key: &str) -> StoreResult<Option<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM message WHERE app_id = $1 AND (id = $2 OR event_id = $2) \
             ORDER BY id = $2 DESC LIMIT 1"
        );
        self.fetch_optional(sqlx::query(&sql).bind(app_id).bind(key), rows::message)
            .await
    }

    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        let q = sql::list_messages(Dialect::Postgres, app_id, filter, page);
        Ok(page.finish(self.list(q, rows::message).await?))
    }

    async fn schedule_manual(&self, d: &NewDelivery, now: DateTime<Utc>) -> StoreResult<String> {
        // A delivery still on its schedule is simply made due now; a finished one gets one
        // manual attempt, after which it stays finished with that attempt's outcome.
        let mut tx = self.pool.write()?.begin().await.map_err(map_err)?;
        let id: String = sqlx::query_scalar(
            "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, next_trigger, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 1, $5, 1, $5, $5) \
             ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET next_attempt_at = EXCLUDED.next_attempt_at, \
             parked = FALSE, reviewed_at = NULL, \
             next_trigger = CASE WHEN delivery.lease_until > EXCLUDED.updated_at THEN 2 \
               WHEN delivery.status IN (1, 3) THEN delivery.next_trigger ELSE 1 END, \
             updated_at = EXCLUDED.updated_at \
             RETURNING id",
        )
        .bind(&d.id)
        .bind(&d.msg_id)
        .bind(&d.endpoint_id)
        .bind(&d.app_id)
        .bind(micros(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        notify_work(&mut *tx).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn get_delivery(&self, msg_id: &str, endpoint_id: &str) -> StoreResult<Option<DeliveryState>> {
        let sql = format!("SELECT {DELIVERY_COLS} FROM delivery WHERE msg_id = $1 AND endpoint_id = $2");
        self.fetch_optional(sqlx::query(&sql).bind(msg_id).bind(endpoint_id), rows::delivery)
            .await
    }

    async fn list_message_deliveries(&self, msg_id: &str, page: &PageRequest) -> StoreResult<Page<DeliveryState>> {
        let q = sql::list_message_deliveries(Dialect::Postgres, msg_id, page);
        Ok(page.finish(self.list(q, rows::delivery).await?))
    }

    async fn list_endpoint_deliveries(
        &self,
        endpoint_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<(DeliveryState, Message)>> {
        let q = sql::list_endpoint_deliveries(Dialect::Postgres, endpoint_id, filter, page);
        let rows = self
            .list(q, |r| Ok((rows::delivery(r)?, rows::message_at(r, 8)?)))
            .await?;
        Ok(page.finish(rows))
    }

    async fn list_attempts(&self, filter: &AttemptFilter, page: &PageRequest) -> StoreResult<Page<Attempt>> {
        let q = sql::list_attempts(Dialect::Postgres, filter, page);
        Ok(page.finish(self.list(q, rows::attempt).await?))
    }

    async fn get_attempt(&self, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>> {
        let sql = format!("SELECT {ATTEMPT_COLS} FROM attempt WHERE id = $1 AND msg_id = $2");
        self.fetch_optional(sqlx::query(&sql).bind(attempt_id).bind(msg_id), rows::attempt)
            .await
    }

    async fn mark_reviewed(&self, endpoint_id: &str, msg_ids: &[String], at: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE delivery SET reviewed_at = $3 WHERE endpoint_id = $1 AND status = $4 AND msg_id = ANY($2)",
        )
        .bind(endpoint_id)
        .bind(msg_ids)
        .bind(micros(at))
        .bind(MessageStatus::Fail.code() as i16)
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
