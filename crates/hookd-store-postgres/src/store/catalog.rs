//! Applications, endpoints and event types.

use super::*;

#[async_trait]
impl CatalogStore for PostgresStore {
    async fn create_application(&self, a: &Application) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO application ({APP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&a.id)
        .bind(a.env.as_str())
        .bind(&a.uid)
        .bind(&a.name)
        .bind(Json(&a.metadata))
        .bind(a.throttle_rate.map(i32::from))
        .bind(micros(a.created_at))
        .bind(micros(a.updated_at))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_application(&self, env: Environment, key: &str) -> StoreResult<Option<Application>> {
        // An id wins over a uid that happens to equal it.
        let sql = format!(
            "SELECT {APP_COLS} FROM application WHERE env = $1 AND (id = $2 OR uid = $2) ORDER BY id = $2 DESC LIMIT 1"
        );
        self.fetch_optional(sqlx::query(&sql).bind(env.as_str()).bind(key), rows::application)
            .await
    }

    async fn update_application(&self, a: &Application) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE application SET uid = $2, name = $3, metadata = $4, throttle_rate = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(&a.id)
        .bind(&a.uid)
        .bind(&a.name)
        .bind(Json(&a.metadata))
        .bind(a.throttle_rate.map(i32::from))
        .bind(micros(a.updated_at))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn delete_application(&self, env: Environment, id: &str) -> StoreResult<()> {
        let mut tx = self.pool.write()?.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM application WHERE env = $1 AND id = $2")
            .bind(env.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        expect_one(done.rows_affected())?;
        for statement in sql::delete_application_children(Dialect::Postgres) {
            sqlx::query(&statement)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_applications(&self, env: Environment, page: &PageRequest) -> StoreResult<Page<Application>> {
        let q = sql::list_applications(Dialect::Postgres, env.as_str(), page);
        Ok(page.finish(self.list(q, rows::application).await?))
    }

    async fn search_applications(&self, env: Environment, text: &str, limit: usize) -> StoreResult<Vec<Application>> {
        let q = sql::search_applications(Dialect::Postgres, env.as_str(), text, limit);
        self.list(q, rows::application).await
    }

    async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let sealed = seal_endpoint(self.secrets.as_deref(), e);
        let e = sealed.as_ref();
        sqlx::query(&format!(
            "INSERT INTO endpoint ({ENDPOINT_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(&e.id)
        .bind(&e.app_id)
        .bind(&e.uid)
        .bind(&e.url)
        .bind(&e.description)
        .bind(e.disabled)
        .bind(e.event_types.as_ref().map(Json))
        .bind(e.channels.as_ref().map(Json))
        .bind(e.throttle_rate.map(i32::from))
        .bind(Json(&e.metadata))
        .bind(&e.secret)
        .bind(Json(&e.headers))
        .bind(micros(e.created_at))
        .bind(micros(e.updated_at))
        .bind(Json(&e.old_secrets))
        .bind(e.failing_since.map(micros))
        .bind(e.destination.as_ref().map(Json))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_endpoint(&self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLS} FROM endpoint WHERE app_id = $1 AND (id = $2 OR uid = $2) ORDER BY id = $2 DESC LIMIT 1"
        );
        self.fetch_optional(sqlx::query(&sql).bind(app_id).bind(key), rows::endpoint)
            .await?
            .map(|e| open_endpoint(self.secrets.as_deref(), e))
            .transpose()
    }

    async fn update_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let sealed = seal_endpoint(self.secrets.as_deref(), e);
        let e = sealed.as_ref();
        let done = sqlx::query(
            "UPDATE endpoint SET uid = $3, url = $4, description = $5, disabled = $6, event_types = $7, channels = $8, \
             throttle_rate = $9, metadata = $10, secret = $11, headers = $12, updated_at = $13, old_secrets = $14, \
             failing_since = $15, destination = $16 WHERE app_id = $1 AND id = $2",
        )
        .bind(&e.app_id)
        .bind(&e.id)
        .bind(&e.uid)
        .bind(&e.url)
        .bind(&e.description)
        .bind(e.disabled)
        .bind(e.event_types.as_ref().map(Json))
        .bind(e.channels.as_ref().map(Json))
        .bind(e.throttle_rate.map(i32::from))
        .bind(Json(&e.metadata))
        .bind(&e.secret)
        .bind(Json(&e.headers))
        .bind(micros(e.updated_at))
        .bind(Json(&e.old_secrets))
        .bind(e.failing_since.map(micros))
        .bind(e.destination.as_ref().map(Json))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn delete_endpoint(&self, app_id: &str, id: &str) -> StoreResult<()> {
        let mut tx = self.pool.write()?.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM endpoint WHERE app_id = $1 AND id = $2")
            .bind(app_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        expect_one(done.rows_affected())?;
        // Its deliveries go with it (so no node claims them again); attempts stay as history.
        sqlx::query("DELETE FROM delivery WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for table in ["poll_consumer", "fifo_lane"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE endpoint_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_endpoints(&self, app_id: &str, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        let q = sql::list_endpoints(Dialect::Postgres, app_id, false, page);
        page.finish(self.list(q, rows::endpoint).await?)
            .try_map(|e| open_endpoint(self.secrets.as_deref(), e))
    }

    async fn list_destinations(&self, app_id: &str, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        let q = sql::list_endpoints(Dialect::Postgres, app_id, true, page);
        page.finish(self.list(q, rows::endpoint).await?)
            .try_map(|e| open_endpoint(self.secrets.as_deref(), e))
    }

    async fn troubled_endpoints(&self, env: Environment, limit: usize) -> StoreResult<Vec<Endpoint>> {
        let q = sql::troubled_endpoints(Dialect::Postgres, env.as_str(), limit);
        self.list(q, rows::endpoint)
            .await?
            .into_iter()
            .map(|e| open_endpoint(self.secrets.as_deref(), e))
            .collect()
    }

    async fn all_endpoints_sealed(&self, app_id: &str) -> StoreResult<Vec<Endpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLS} FROM endpoint WHERE app_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(app_id)
            .fetch_all(self.pool.read())
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(rows::endpoint)
            .collect::<Result<_, _>>()
            .map_err(map_err)
    }

    fn open_endpoint_secrets(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        open_endpoint(self.secrets.as_deref(), endpoint)
    }

    async fn upsert_event_type(&self, et: &EventType) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO event_type ({EVENT_TYPE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (env, name) DO UPDATE SET description = EXCLUDED.description, archived = EXCLUDED.archived, \
             deprecated = EXCLUDED.deprecated, feature_flag = EXCLUDED.feature_flag, schemas = EXCLUDED.schemas, \
             updated_at = EXCLUDED.updated_at, group_name = EXCLUDED.group_name"
        ))
        .bind(et.env.as_str())
        .bind(&et.name)
        .bind(&et.description)
        .bind(et.archived)
        .bind(et.deprecated)
        .bind(&et.feature_flag)
        .bind(et.schemas.as_ref().map(Json))
        .bind(micros(et.created_at))
        .bind(micros(et.updated_at))
        .bind(&et.group_name)
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_event_type(&self, env: Environment, name: &str) -> StoreResult<Option<EventType>> {
        let sql = format!("SELECT {EVENT_TYPE_COLS} FROM event_type WHERE env = $1 AND name = $2");
        self.fetch_optional(sqlx::query(&sql).bind(env.as_str()).bind(name), rows::event_type)
            .await
    }

    async fn delete_event_type(&self, env: Environment, name: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM event_type WHERE env = $1 AND name = $2")
            .bind(env.as_str())
            .bind(name)
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn list_event_types(
        &self,
        env: Environment,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<EventType>> {
        let q = sql::list_event_types(Dialect::Postgres, env.as_str(), include_archived, page);
        Ok(page.finish(self.list(q, rows::event_type).await?))
    }
}
