//! Background tasks.

use super::*;

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, t: &TaskRecord) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO task ({TASK_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    t.id,
                    t.app_id,
                    t.endpoint_id,
                    t.kind,
                    t.status.as_str(),
                    Json(&t.data),
                    micros(t.created_at),
                    micros(t.updated_at)
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn fail_stale_tasks(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(
                "UPDATE task SET status = 'failed', updated_at = ?2, \
                 data = json_set(data, '$.error', 'its node stopped before it finished; start it again') \
                 WHERE status = 'running' AND updated_at < ?1",
                params![micros(before), micros(now)],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn update_task(
        &self,
        id: &str,
        status: TaskStatus,
        data: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (id, data) = (id.to_string(), data.clone());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE task SET status = ?2, data = ?3, updated_at = ?4 WHERE id = ?1",
                    params![id, status.as_str(), Json(&data), micros(now)],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn get_task(&self, env: Environment, id: &str) -> StoreResult<Option<TaskRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            let cols: Vec<String> = TASK_COLS.split(", ").map(|col| format!("t.{col}")).collect();
            c.prepare_cached(&format!(
                "SELECT {} FROM task t JOIN application a ON a.id = t.app_id WHERE t.id = ?1 AND a.env = ?2",
                cols.join(", ")
            ))?
            .query_row(params![id, env.as_str()], rows::task)
            .optional()
        })
        .await
    }

    async fn list_tasks(
        &self,
        env: Environment,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<TaskRecord>> {
        let q = sql::list_tasks(Dialect::Sqlite, env.as_str(), filter, page);
        Ok(page.finish(self.list(q, rows::task).await?))
    }
}
