//! API tokens.

use super::*;

#[async_trait]
impl TokenStore for PostgresStore {
    async fn create_token(&self, t: &TokenRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO token ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&t.id)
        .bind(&t.hash)
        .bind(t.env.as_str())
        .bind(&t.app_id)
        .bind(&t.description)
        .bind(micros(t.created_at))
        .bind(t.expires_at.map(micros))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM token WHERE hash = $1");
        self.fetch_optional(sqlx::query(&sql).bind(hash), rows::token).await
    }

    async fn get_token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM token WHERE id = $1");
        self.fetch_optional(sqlx::query(&sql).bind(id), rows::token).await
    }

    async fn delete_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM token WHERE expires_at IS NOT NULL AND expires_at < $1")
            .bind(micros(now))
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let q = hookd_store::sql::Sql::new(Dialect::Postgres, format!("SELECT {TOKEN_COLS} FROM token ORDER BY id"));
        self.list(q, rows::token).await
    }

    async fn delete_token(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM token WHERE id = $1")
            .bind(id)
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn expire_app_tokens(&self, app_id: &str, names: Option<&[String]>, at: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE token SET expires_at = $2 WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2) \
             AND ($3::text[] IS NULL OR description = ANY($3))",
        )
        .bind(app_id)
        .bind(micros(at))
        .bind(names)
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
