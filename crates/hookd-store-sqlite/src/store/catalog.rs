//! Applications, endpoints and event types.

use super::*;

#[async_trait]
impl CatalogStore for SqliteStore {
    async fn create_application(&self, app: &Application) -> StoreResult<()> {
        let a = app.clone();
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO application ({APP_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    a.id,
                    a.env.as_str(),
                    a.uid,
                    a.name,
                    Json(&a.metadata),
                    a.throttle_rate,
                    micros(a.created_at),
                    micros(a.updated_at)
                ])
            })
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_application(&self, env: Environment, key: &str) -> StoreResult<Option<Application>> {
        let key = key.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {APP_COLS} FROM application WHERE env = ?1 AND (id = ?2 OR uid = ?2) ORDER BY id = ?2 DESC LIMIT 1"
            ))?
            .query_row(params![env.as_str(), key], rows::application)
            .optional()
        })
        .await
    }

    async fn update_application(&self, app: &Application) -> StoreResult<()> {
        let a = app.clone();
        self.write(move |c| {
            let n = c
                .prepare_cached("UPDATE application SET uid = ?2, name = ?3, metadata = ?4, throttle_rate = ?5, updated_at = ?6 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![a.id, a.uid, a.name, Json(&a.metadata), a.throttle_rate, micros(a.updated_at)]))
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn delete_application(&self, env: Environment, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM application WHERE env = ?1 AND id = ?2",
                    params![env.as_str(), id],
                )
                .map_err(map_err)?;
            expect_one(n)?;
            for statement in sql::delete_application_children(Dialect::Sqlite) {
                c.execute(&statement, [&id]).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn list_applications(&self, env: Environment, page: &PageRequest) -> StoreResult<Page<Application>> {
        let q = sql::list_applications(Dialect::Sqlite, env.as_str(), page);
        Ok(page.finish(self.list(q, rows::application).await?))
    }

    async fn search_applications(&self, env: Environment, text: &str, limit: usize) -> StoreResult<Vec<Application>> {
        let q = sql::search_applications(Dialect::Sqlite, env.as_str(), text, limit);
        self.list(q, rows::application).await
    }

    async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let e = seal_endpoint(self.secrets.as_deref(), e).into_owned();
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO endpoint ({ENDPOINT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    e.id, e.app_id, e.uid, e.url, e.description, e.disabled, e.event_types.as_ref().map(Json),
                    e.channels.as_ref().map(Json), e.throttle_rate, Json(&e.metadata), e.secret, Json(&e.headers),
                    micros(e.created_at), micros(e.updated_at), Json(&e.old_secrets), e.failing_since.map(micros),
                    e.destination.as_ref().map(Json)
                ])
            })
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_endpoint(&self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>> {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ENDPOINT_COLS} FROM endpoint WHERE app_id = ?1 AND (id = ?2 OR uid = ?2) ORDER BY id = ?2 DESC LIMIT 1"
            ))?
            .query_row(params![app_id, key], rows::endpoint)
            .optional()
        })
        .await?
        .map(|e| open_endpoint(self.secrets.as_deref(), e))
        .transpose()
    }

    async fn update_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let e = seal_endpoint(self.secrets.as_deref(), e).into_owned();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE endpoint SET uid = ?3, url = ?4, description = ?5, disabled = ?6, event_types = ?7, channels = ?8, \
                     throttle_rate = ?9, metadata = ?10, secret = ?11, headers = ?12, updated_at = ?13, old_secrets = ?14, \
                     failing_since = ?15, destination = ?16 WHERE app_id = ?1 AND id = ?2",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        e.app_id, e.id, e.uid, e.url, e.description, e.disabled, e.event_types.as_ref().map(Json),
                        e.channels.as_ref().map(Json), e.throttle_rate, Json(&e.metadata), e.secret, Json(&e.headers),
                        micros(e.updated_at), Json(&e.old_secrets), e.failing_since.map(micros), e.destination.as_ref().map(Json)
                    ])
                })
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn delete_endpoint(&self, app_id: &str, id: &str) -> StoreResult<()> {
        let (app_id, id) = (app_id.to_string(), id.to_string());
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM endpoint WHERE app_id = ?1 AND id = ?2",
                    params![app_id, id],
                )
                .map_err(map_err)?;
            expect_one(n)?;
            // Its deliveries go with it; attempts stay as history.
            c.execute("DELETE FROM delivery WHERE endpoint_id = ?1", [&id])
                .map_err(map_err)?;
            c.execute("DELETE FROM poll_consumer WHERE endpoint_id = ?1", [&id])
                .map_err(map_err)?;
            c.execute("DELETE FROM fifo_lane WHERE endpoint_id = ?1", [&id])
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_endpoints(&self, app_id: &str, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        let q = sql::list_endpoints(Dialect::Sqlite, app_id, false, page);
        page.finish(self.list(q, rows::endpoint).await?)
            .try_map(|e| open_endpoint(self.secrets.as_deref(), e))
    }

    async fn list_destinations(&self, app_id: &str, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        let q = sql::list_endpoints(Dialect::Sqlite, app_id, true, page);
        page.finish(self.list(q, rows::endpoint).await?)
            .try_map(|e| open_endpoint(self.secrets.as_deref(), e))
    }

    async fn troubled_endpoints(&self, env: Environment, limit: usize) -> StoreResult<Vec<Endpoint>> {
        let q = sql::troubled_endpoints(Dialect::Sqlite, env.as_str(), limit);
        self.list(q, rows::endpoint)
            .await?
            .into_iter()
            .map(|e| open_endpoint(self.secrets.as_deref(), e))
            .collect()
    }

    async fn all_endpoints_sealed(&self, app_id: &str) -> StoreResult<Vec<Endpoint>> {
        let app_id = app_id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ENDPOINT_COLS} FROM endpoint WHERE app_id = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([app_id], rows::endpoint)?;
            rows.collect::<rusqlite::Result<Vec<Endpoint>>>()
        })
        .await
    }

    fn open_endpoint_secrets(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        open_endpoint(self.secrets.as_deref(), endpoint)
    }

    async fn upsert_event_type(&self, et: &EventType) -> StoreResult<()> {
        let et = et.clone();
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO event_type ({EVENT_TYPE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (env, name) DO UPDATE SET description = excluded.description, archived = excluded.archived, \
                 deprecated = excluded.deprecated, feature_flag = excluded.feature_flag, schemas = excluded.schemas, \
                 updated_at = excluded.updated_at, group_name = excluded.group_name"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    et.env.as_str(), et.name, et.description, et.archived, et.deprecated, et.feature_flag,
                    et.schemas.as_ref().map(Json), micros(et.created_at), micros(et.updated_at), et.group_name
                ])
            })
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_event_type(&self, env: Environment, name: &str) -> StoreResult<Option<EventType>> {
        let name = name.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {EVENT_TYPE_COLS} FROM event_type WHERE env = ?1 AND name = ?2"
            ))?
            .query_row(params![env.as_str(), name], rows::event_type)
            .optional()
        })
        .await
    }

    async fn delete_event_type(&self, env: Environment, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM event_type WHERE env = ?1 AND name = ?2",
                    params![env.as_str(), name],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn list_event_types(
        &self,
        env: Environment,
        include_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<EventType>> {
        let q = sql::list_event_types(Dialect::Sqlite, env.as_str(), include_archived, page);
        Ok(page.finish(self.list(q, rows::event_type).await?))
    }
}
