//! API tokens.

use super::*;

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(&self, t: &TokenRecord) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO token (id, hash, env, app_id, description, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![t.id, t.hash, t.env.as_str(), t.app_id, t.description, micros(t.created_at), t.expires_at.map(micros)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = hash.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {TOKEN_COLS} FROM token WHERE hash = ?1"))?
                .query_row([hash], rows::token)
                .optional()
        })
        .await
    }

    async fn get_token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {TOKEN_COLS} FROM token WHERE id = ?1"))?
                .query_row([id], rows::token)
                .optional()
        })
        .await
    }

    async fn delete_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM token WHERE expires_at IS NOT NULL AND expires_at < ?1",
                [micros(now)],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.read(move |c| {
            let mut s = c.prepare_cached(&format!("SELECT {TOKEN_COLS} FROM token ORDER BY id"))?;
            let rows = s.query_map([], rows::token)?;
            rows.collect()
        })
        .await
    }

    async fn delete_token(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |c| {
            c.execute("DELETE FROM token WHERE id = ?1", [id])
                .map(|n| n > 0)
                .map_err(map_err)
        })
        .await
    }

    async fn expire_app_tokens(&self, app_id: &str, names: Option<&[String]>, at: DateTime<Utc>) -> StoreResult<u64> {
        let (app_id, at) = (app_id.to_string(), micros(at));
        let names = names.map(<[String]>::to_vec);
        self.write(move |c| {
            let sql = "UPDATE token SET expires_at = ?2 WHERE app_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
            match names {
                None => c.execute(sql, params![app_id, at]).map(|n| n as u64).map_err(map_err),
                Some(names) => {
                    let mut stmt = c
                        .prepare_cached(&format!("{sql} AND description = ?3"))
                        .map_err(map_err)?;
                    let mut changed = 0;
                    for name in names {
                        changed += stmt.execute(params![app_id, at, name]).map_err(map_err)? as u64;
                    }
                    Ok(changed)
                }
            }
        })
        .await
    }
}
