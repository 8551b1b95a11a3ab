//! Browser sessions of the dashboard and the consumer portal.

use super::*;

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: &SessionRecord, keep: usize) -> StoreResult<()> {
        let s = s.clone();
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO browser_session ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    s.id,
                    s.hash,
                    s.env.as_str(),
                    s.app_id,
                    Json(&s.capabilities),
                    s.read_only,
                    s.portal_session,
                    micros(s.created_at),
                    micros(s.expires_at)
                ],
            )
            .map_err(map_err)?;
            // The group: the application's portal sessions, or the environment's operators.
            c.execute(
                "DELETE FROM browser_session WHERE id IN (SELECT id FROM browser_session \
                 WHERE app_id IS ?1 AND env = ?2 ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?3)",
                params![s.app_id, s.env.as_str(), keep],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn find_session(&self, hash: &str, now: DateTime<Utc>) -> StoreResult<Option<SessionRecord>> {
        let hash = hash.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {SESSION_COLS} FROM browser_session WHERE hash = ?1 AND expires_at > ?2"
            ))?
            .query_row(params![hash, micros(now)], rows::session)
            .optional()
        })
        .await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |c| {
            c.execute("DELETE FROM browser_session WHERE id = ?1", [id])
                .map(|n| n > 0)
                .map_err(map_err)
        })
        .await
    }

    async fn expire_app_sessions(
        &self,
        app_id: &str,
        portal_sessions: Option<&[String]>,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let app_id = app_id.to_string();
        let only = portal_sessions
            .map(|ids| serde_json::to_string(ids).map_err(StoreError::internal))
            .transpose()?;
        self.write(move |c| {
            c.execute(
                "UPDATE browser_session SET expires_at = ?2 WHERE app_id = ?1 AND expires_at > ?2 \
                 AND (?3 IS NULL OR portal_session IN (SELECT value FROM json_each(?3)))",
                params![app_id, micros(at), only],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |c| {
            c.execute(
                "DELETE FROM browser_session WHERE id IN \
                 (SELECT id FROM browser_session WHERE expires_at <= ?1 LIMIT ?2)",
                params![micros(now), limit],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }
}
