//! Browser sessions of the dashboard and the consumer portal.

use super::*;

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, s: &SessionRecord, keep: usize) -> StoreResult<()> {
        let mut tx = self.pool.write()?.begin().await.map_err(map_err)?;
        sqlx::query(&format!(
            "INSERT INTO browser_session ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&s.id)
        .bind(&s.hash)
        .bind(s.env.as_str())
        .bind(&s.app_id)
        .bind(json_text(&s.capabilities)?)
        .bind(s.read_only)
        .bind(&s.portal_session)
        .bind(micros(s.created_at))
        .bind(micros(s.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // The group: the application's portal sessions, or the environment's operators.
        sqlx::query(
            "DELETE FROM browser_session WHERE id IN (SELECT id FROM browser_session \
             WHERE app_id IS NOT DISTINCT FROM $1 AND env = $2 ORDER BY created_at DESC, id DESC OFFSET $3)",
        )
        .bind(&s.app_id)
        .bind(s.env.as_str())
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_session(&self, hash: &str, now: DateTime<Utc>) -> StoreResult<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLS} FROM browser_session WHERE hash = $1 AND expires_at > $2");
        self.fetch_optional(sqlx::query(&sql).bind(hash).bind(micros(now)), rows::session)
            .await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM browser_session WHERE id = $1")
            .bind(id)
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn expire_app_sessions(
        &self,
        app_id: &str,
        portal_sessions: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE browser_session SET expires_at = $2 WHERE app_id = $1 AND expires_at > $2 \
             AND ($3::text[] IS NULL OR portal_session = ANY($3))",
        )
        .bind(app_id)
        .bind(micros(at))
        .bind(portal_sessions.map(<[String]>::to_vec))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM browser_session WHERE id IN \
             (SELECT id FROM browser_session WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(micros(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
