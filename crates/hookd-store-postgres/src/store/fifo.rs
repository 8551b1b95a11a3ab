//! FIFO destinations: lanes ordered by the storing transaction's id (below the snapshot's
//! xmin, so a late commit never lands behind what was sent), leased to one node at a time.

use hookd_store::{FifoItem, FifoLane};

use super::*;

#[async_trait]
impl FifoStore for PostgresStore {
    async fn fifo_lanes(&self, now: DateTime<Utc>, limit: usize, skip: &[String]) -> StoreResult<Vec<FifoLane>> {
        let rows = sqlx::query(
            "SELECT l.endpoint_id, l.app_id, l.lane FROM fifo_lane l JOIN endpoint e ON e.id = l.endpoint_id \
             WHERE l.lease_until <= $1 AND NOT e.disabled AND NOT (l.app_id = ANY($3)) \
             AND EXISTS (SELECT 1 FROM delivery d WHERE d.endpoint_id = l.endpoint_id AND d.lane = l.lane \
                         AND d.status IN (1, 3)) \
             AND (l.retry_at <= $1 OR (l.fill > 0 AND (SELECT COUNT(*) FROM (SELECT 1 FROM delivery d \
                  WHERE d.endpoint_id = l.endpoint_id AND d.lane = l.lane AND d.status IN (1, 3) LIMIT 250) f) \
                  >= l.fill)) \
             ORDER BY l.retry_at LIMIT $2",
        )
        .bind(micros(now))
        .bind(limit as i64)
        .bind(skip)
        .fetch_all(self.pool.read())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(FifoLane {
                    endpoint_id: r.try_get(0)?,
                    app_id: r.try_get(1)?,
                    lane: r.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    async fn lease_fifo_lane(
        &self,
        lane: &FifoLane,
        token: i64,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE fifo_lane SET lease_token = $3, lease_until = $4 \
             WHERE endpoint_id = $1 AND lane = $2 AND (lease_until <= $5 OR lease_token = $3)",
        )
        .bind(&lane.endpoint_id)
        .bind(lane.lane)
        .bind(token)
        .bind(micros(until))
        .bind(micros(now))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn fifo_head(&self, lane: &FifoLane, limit: usize) -> StoreResult<Vec<FifoItem>> {
        let sql = format!(
            "SELECT d.id, d.scheduled_attempts, d.total_attempts, {} \
             FROM delivery d JOIN message m ON m.id = d.msg_id \
             WHERE d.endpoint_id = $1 AND d.lane = $2 AND d.status IN (1, 3) \
             AND d.xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY d.xid, d.msg_id LIMIT $3",
            qualified("m", MESSAGE_COLS)
        );
        let rows = sqlx::query(&sql)
            .bind(&lane.endpoint_id)
            .bind(lane.lane)
            .bind(limit as i64)
            .fetch_all(self.pool.read())
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(FifoItem {
                    delivery_id: r.try_get(0)?,
                    scheduled_attempts: r.try_get(1)?,
                    total_attempts: r.try_get(2)?,
                    message: rows::message_at(r, 3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    async fn release_fifo_lane(
        &self,
        lane: &FifoLane,
        token: i64,
        retry_at: DateTime<Utc>,
        fill: usize,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE fifo_lane SET lease_token = 0, lease_until = 0, retry_at = $4, fill = $5 \
             WHERE endpoint_id = $1 AND lane = $2 AND lease_token = $3",
        )
        .bind(&lane.endpoint_id)
        .bind(lane.lane)
        .bind(token)
        .bind(micros(retry_at))
        .bind(fill as i32)
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
