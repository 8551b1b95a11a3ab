//! The [`Store`] implementation: one method, one statement (or a few in one transaction).
//!
//! Listings, filters, pages and status counts are the shared statements of
//! [`hookd_store::sql`]; what is written here is PostgreSQL's own: row locks for the queue,
//! `ON CONFLICT` for idempotency, arrays to write batches in one statement.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookd_core::model::{Application, Attempt, Endpoint, Environment, EventType, Message, MessageStatus};
use hookd_store::batch::RecordPlan;
use hookd_store::prelude::*;
use hookd_store::secrets::{open_endpoint, seal_endpoint};
use hookd_store::sql::{self, Dialect, Param, Sql};
use hookd_store::{
    AttemptFilter, AttemptRecord, ClaimBounds, ClaimedDelivery, DeliveryState, IdempotencyState, MessageFilter,
    NewDelivery, OutboxEvent, Page, PageRequest, QueueStats, ReplayQuery, SessionRecord, StatusCounts, StoreResult,
    TaskFilter, TaskRecord, TaskStatus, TokenRecord, TrafficMinute, CLAIM_SCAN_FACTOR, LATENCY_BUCKETS,
};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, Row};

use crate::rows::{
    self, micros, qualified, APP_COLS, ATTEMPT_COLS, DELIVERY_COLS, ENDPOINT_COLS, EVENT_TYPE_COLS, MESSAGE_COLS,
    SESSION_COLS, TASK_COLS, TOKEN_COLS, TRAFFIC_ADD, TRAFFIC_COLS,
};
use crate::{expect_one, map_err, PostgresStore, WORK_CHANNEL};

/// A `(status, count)` row of [`sql::count_by_status`].
fn status_row(r: &PgRow) -> Result<(i64, i64), sqlx::Error> {
    Ok((r.try_get::<i16, _>(0)?.into(), r.try_get::<i64, _>(1)?))
}

/// `json` serialised for a `$n::jsonb[]` parameter bound as text.
fn json_text<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(hookd_store::StoreError::internal)
}

impl PostgresStore {
    /// Runs `q` and maps every row.
    /// Runs a shared statement ([`hookd_store::sql`]) on the read pool.
    async fn list<T>(&self, q: Sql, map: impl Fn(&PgRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
        let mut query = sqlx::query(q.text());
        for param in q.params() {
            query = match param {
                Param::Int(i) => query.bind(*i),
                Param::Text(s) => query.bind(s.clone()),
                Param::Texts(list) => query.bind(list.clone()),
                Param::Ints(list) => query.bind(list.clone()),
            };
        }
        let rows = query.fetch_all(self.pool.read()).await.map_err(map_err)?;
        rows.iter().map(|r| map(r).map_err(map_err)).collect()
    }

    /// Runs `query` expecting at most one row.
    async fn fetch_optional<T>(
        &self,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
        map: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
    ) -> StoreResult<Option<T>> {
        let row = query.fetch_optional(self.pool.read()).await.map_err(map_err)?;
        row.as_ref().map(map).transpose().map_err(map_err)
    }
}

/// Wakes the nodes of this installation (delivered when the surrounding transaction commits).
pub(crate) async fn notify_work<'e, E: sqlx::Executor<'e, Database = Postgres>>(executor: E) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, current_schema())")
        .bind(WORK_CHANNEL)
        .execute(executor)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// The outbox's rows for `events`, as the five arrays (`id`, `kind`, `app_id`, `data`,
/// `created_at`) that [`OUTBOX_ROWS`] unnests, bound in that order.
fn bind_outbox<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    events: &[&OutboxEvent],
) -> StoreResult<sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>> {
    let mut data = Vec::with_capacity(events.len());
    for e in events {
        data.push(serde_json::to_string(&e.data).map_err(hookd_store::StoreError::internal)?);
    }
    Ok(query
        .bind(events.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.app_id.clone()).collect::<Vec<_>>())
        .bind(data)
        .bind(events.iter().map(|e| micros(e.created_at)).collect::<Vec<_>>()))
}

/// The outbox's insert, up to its `UNNEST` of the arrays [`bind_outbox`] binds: the statement
/// adds the parameter numbers (`$1`…`$5` alone, later ones inside a larger statement) and
/// `ON CONFLICT (id) DO NOTHING`, so an event already stored is kept as it is.
const OUTBOX_ROWS: &str = "INSERT INTO outbox (id, kind, app_id, data, created_at) SELECT * FROM UNNEST";

mod catalog;
mod fifo;
mod idempotency;
mod messages;
mod outbox;
mod polls;
mod queue;
mod retention;
mod sessions;
mod stats;
mod tasks;
mod tokens;
