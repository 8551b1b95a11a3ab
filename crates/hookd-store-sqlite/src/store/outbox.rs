//! The operational-webhook outbox.

use super::*;

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn add_outbox(&self, events: &[OutboxEvent]) -> StoreResult<()> {
        let events = events.to_vec();
        self.write(move |c| insert_outbox(c, events.iter())).await
    }

    async fn outbox_events(&self, limit: usize) -> StoreResult<Vec<OutboxEvent>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, kind, app_id, data, created_at FROM outbox ORDER BY created_at, id LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                let data: String = r.get(3)?;
                Ok(OutboxEvent {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    app_id: r.get(2)?,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                    created_at: rows::from_micros(r.get(4)?),
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }

    async fn remove_outbox(&self, ids: &[String]) -> StoreResult<()> {
        let ids = ids.to_vec();
        self.write(move |c| {
            let mut stmt = c.prepare_cached("DELETE FROM outbox WHERE id = ?1").map_err(map_err)?;
            for id in &ids {
                stmt.execute([id]).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }
}

/// Stores operational events in the outbox, leaving any whose id is already there as it is
/// (the same event, carried again), as PostgreSQL does.
pub(super) fn insert_outbox<'a>(c: &Connection, events: impl Iterator<Item = &'a OutboxEvent>) -> StoreResult<()> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO outbox (id, kind, app_id, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .map_err(map_err)?;
    for e in events {
        stmt.execute(params![e.id, e.kind, e.app_id, Json(&e.data), micros(e.created_at)])
            .map_err(map_err)?;
    }
    Ok(())
}
