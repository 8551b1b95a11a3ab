//! The operational-webhook outbox.

use super::*;

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn add_outbox(&self, events: &[OutboxEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "{OUTBOX_ROWS}($1::text[], $2::text[], $3::text[], $4::text[]::jsonb[], $5::bigint[]) \
             ON CONFLICT (id) DO NOTHING"
        );
        bind_outbox(sqlx::query(&sql), &events.iter().collect::<Vec<_>>())?
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn outbox_events(&self, limit: usize) -> StoreResult<Vec<OutboxEvent>> {
        let rows =
            sqlx::query("SELECT id, kind, app_id, data::text, created_at FROM outbox ORDER BY created_at, id LIMIT $1")
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.pool.read())
                .await
                .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                use sqlx::Row as _;
                let data: String = r.try_get(3).map_err(map_err)?;
                Ok(OutboxEvent {
                    id: r.try_get(0).map_err(map_err)?,
                    kind: r.try_get(1).map_err(map_err)?,
                    app_id: r.try_get(2).map_err(map_err)?,
                    data: serde_json::from_str(&data).map_err(hookd_store::StoreError::internal)?,
                    created_at: rows::from_micros(r.try_get(4).map_err(map_err)?),
                })
            })
            .collect()
    }

    async fn remove_outbox(&self, ids: &[String]) -> StoreResult<()> {
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
