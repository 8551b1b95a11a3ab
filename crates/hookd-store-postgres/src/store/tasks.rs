//! Background tasks.

use super::*;

#[async_trait]
impl TaskStore for PostgresStore {
    async fn create_task(&self, t: &TaskRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO task ({TASK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&t.id)
        .bind(&t.app_id)
        .bind(&t.endpoint_id)
        .bind(&t.kind)
        .bind(t.status.as_str())
        .bind(Json(&t.data))
        .bind(micros(t.created_at))
        .bind(micros(t.updated_at))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn fail_stale_tasks(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE task SET status = 'failed', updated_at = $2, \
             data = jsonb_set(data, '{error}', '\"its node stopped before it finished; start it again\"') \
             WHERE status = 'running' AND updated_at < $1",
        )
        .bind(micros(before))
        .bind(micros(now))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn update_task(
        &self,
        id: &str,
        status: TaskStatus,
        data: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let done = sqlx::query("UPDATE task SET status = $2, data = $3, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(status.as_str())
            .bind(Json(data))
            .bind(micros(now))
            .execute(self.pool.write()?)
            .await
            .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn get_task(&self, env: Environment, id: &str) -> StoreResult<Option<TaskRecord>> {
        let sql = format!(
            "SELECT {} FROM task t JOIN application a ON a.id = t.app_id WHERE t.id = $1 AND a.env = $2",
            qualified("t", TASK_COLS)
        );
        self.fetch_optional(sqlx::query(&sql).bind(id).bind(env.as_str()), rows::task)
            .await
    }

    async fn list_tasks(
        &self,
        env: Environment,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<TaskRecord>> {
        let q = sql::list_tasks(Dialect::Postgres, env.as_str(), filter, page);
        Ok(page.finish(self.list(q, rows::task).await?))
    }
}
