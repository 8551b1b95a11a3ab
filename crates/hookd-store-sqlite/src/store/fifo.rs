//! FIFO destinations: lanes in rowid (commit) order, leased to one worker at a time.

use hookd_store::{FifoItem, FifoLane};

use super::*;

#[async_trait]
impl FifoStore for SqliteStore {
    async fn fifo_lanes(&self, now: DateTime<Utc>, limit: usize, skip: &[String]) -> StoreResult<Vec<FifoLane>> {
        let now = micros(now);
        let skip = serde_json::to_string(skip).map_err(StoreError::internal)?;
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT l.endpoint_id, l.app_id, l.lane FROM fifo_lane l JOIN endpoint e ON e.id = l.endpoint_id \
                 WHERE l.lease_until <= ?1 AND e.disabled = 0 \
                 AND l.app_id NOT IN (SELECT value FROM json_each(?3)) \
                 AND EXISTS (SELECT 1 FROM delivery d INDEXED BY delivery_lane WHERE d.endpoint_id = l.endpoint_id \
                             AND d.lane = l.lane AND d.status IN (1, 3)) \
                 AND (l.retry_at <= ?1 OR (l.fill > 0 AND (SELECT COUNT(*) FROM (SELECT 1 FROM delivery d \
                      INDEXED BY delivery_lane WHERE d.endpoint_id = l.endpoint_id AND d.lane = l.lane \
                      AND d.status IN (1, 3) LIMIT 250)) >= l.fill)) \
                 ORDER BY l.retry_at LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now, limit as i64, skip], |r| {
                Ok(FifoLane {
                    endpoint_id: r.get(0)?,
                    app_id: r.get(1)?,
                    lane: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn lease_fifo_lane(
        &self,
        lane: &FifoLane,
        token: i64,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let lane = lane.clone();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE fifo_lane SET lease_token = ?3, lease_until = ?4 \
                     WHERE endpoint_id = ?1 AND lane = ?2 AND (lease_until <= ?5 OR lease_token = ?3)",
                )
                .and_then(|mut s| s.execute(params![lane.endpoint_id, lane.lane, token, micros(until), micros(now)]))
                .map_err(map_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn fifo_head(&self, lane: &FifoLane, limit: usize) -> StoreResult<Vec<FifoItem>> {
        let lane = lane.clone();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT d.id, d.scheduled_attempts, d.total_attempts, {} \
                 FROM delivery d INDEXED BY delivery_lane JOIN message m ON m.id = d.msg_id \
                 WHERE d.endpoint_id = ?1 AND d.lane = ?2 AND d.status IN (1, 3) ORDER BY d.rowid LIMIT ?3",
                sql::qualified("m", MESSAGE_COLS)
            ))?;
            let rows = stmt.query_map(params![lane.endpoint_id, lane.lane, limit as i64], |r| {
                Ok(FifoItem {
                    delivery_id: r.get(0)?,
                    scheduled_attempts: r.get(1)?,
                    total_attempts: r.get(2)?,
                    message: rows::message_at(r, 3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn release_fifo_lane(
        &self,
        lane: &FifoLane,
        token: i64,
        retry_at: DateTime<Utc>,
        fill: usize,
    ) -> StoreResult<()> {
        let lane = lane.clone();
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE fifo_lane SET lease_token = 0, lease_until = 0, retry_at = ?4, fill = ?5 \
                 WHERE endpoint_id = ?1 AND lane = ?2 AND lease_token = ?3",
            )
            .and_then(|mut s| {
                s.execute(params![
                    lane.endpoint_id,
                    lane.lane,
                    token,
                    micros(retry_at),
                    fill as i64
                ])
            })
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }
}
