//! The [`Store`] implementation: one method, one statement (or a few in one transaction).
//!
//! The SQL follows the SQLite backend's query for query, so that the conformance suite pins
//! both to the same behaviour; where they differ it is for PostgreSQL's sake and says why
//! (row locks for the queue, `ON CONFLICT` for idempotency, arrays to write batches in one
//! statement).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookd_core::model::{Application, Attempt, Endpoint, Environment, EventType, Message, MessageStatus, TriggerType};
use hookd_store::prelude::*;
use hookd_store::secrets::{open_endpoint, seal_endpoint};
use hookd_store::{
    AttemptFilter, AttemptRecord, ClaimBounds, ClaimedDelivery, DeliveryState, IdempotencyState, MessageFilter,
    NewDelivery, OutboxEvent, Page, PageRequest, QueueStats, ReplayKind, ReplayQuery, StatusCounts, StoreResult,
    TaskFilter, TaskRecord, TaskStatus, TokenRecord, CLAIM_SCAN_FACTOR,
};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};

use crate::rows::{
    self, micros, qualified, APP_COLS, ATTEMPT_COLS, DELIVERY_COLS, ENDPOINT_COLS, EVENT_TYPE_COLS, MESSAGE_COLS,
    TASK_COLS, TOKEN_COLS,
};
use crate::{expect_one, map_err, PostgresStore, WORK_CHANNEL};

/// A statement assembled from optional filters; `$n` placeholders are numbered as values are
/// bound.
type Query = QueryBuilder<'static, Postgres>;

/// Appends the keyset condition and ordering on `key`, fetching one row more than the page so
/// [`PageRequest::finish`] can tell whether more follow.
fn page_by(q: &mut Query, key: &str, page: &PageRequest) {
    let asc = page.scan_ascending();
    if let Some(cursor) = &page.cursor {
        let op = if asc { ">" } else { "<" };
        q.push(format!(" AND {key} {op} ")).push_bind(cursor.key.clone());
    }
    let dir = if asc { "ASC" } else { "DESC" };
    q.push(format!(" ORDER BY {key} {dir} LIMIT "))
        .push_bind(page.limit as i64 + 1);
}

/// Appends the message filters on the message table aliased `alias`.
fn message_filters(q: &mut Query, alias: &str, filter: &MessageFilter) {
    if let Some(types) = &filter.event_types {
        // An empty list matches nothing, as `= ANY('{}')` does.
        q.push(format!(" AND {alias}.event_type = ANY("))
            .push_bind(types.clone())
            .push(")");
    }
    if let Some(channel) = &filter.channel {
        // `?` is true when the JSON array holds this string; NULL channels match no channel.
        q.push(format!(" AND {alias}.channels ? ")).push_bind(channel.clone());
    }
    if let Some(before) = filter.before {
        q.push(format!(" AND {alias}.created_at < ")).push_bind(micros(before));
    }
    if let Some(after) = filter.after {
        q.push(format!(" AND {alias}.created_at > ")).push_bind(micros(after));
    }
}

/// Lower and upper bound (inclusive) of a status code class: 0 is "no response", otherwise
/// `class..class + 100`.
fn class_bounds(class: i64) -> (i64, i64) {
    if class == 0 {
        (0, 0)
    } else {
        (class, class + 99)
    }
}

/// `json` serialised for a `$n::jsonb[]` parameter bound as text.
fn json_text<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(hookd_store::StoreError::internal)
}

impl PostgresStore {
    /// Runs `q` and maps every row.
    async fn fetch<T>(&self, mut q: Query, map: impl Fn(&PgRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
        let rows = q.build().fetch_all(self.pool.read()).await.map_err(map_err)?;
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

    /// Runs a `status, COUNT(*) … GROUP BY status` query.
    async fn counts(
        &self,
        sql: &str,
        id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        let rows: Vec<(i16, i64)> = sqlx::query_as(sql)
            .bind(id)
            .bind(micros(since))
            .bind(micros(until))
            .fetch_all(self.pool.read())
            .await
            .map_err(map_err)?;
        let mut out = StatusCounts::default();
        for (status, n) in rows {
            match MessageStatus::from_code(status.into()) {
                Some(MessageStatus::Success) => out.success += n,
                Some(MessageStatus::Pending) => out.pending += n,
                Some(MessageStatus::Sending) => out.sending += n,
                Some(MessageStatus::Fail) => out.fail += n,
                None => {}
            }
        }
        Ok(out)
    }
}

/// What one `record_attempts` batch does to one endpoint's `failing_since`, folded over the
/// batch in order so one statement reproduces the effect of applying each outcome in turn.
#[derive(Clone, Copy)]
enum Health {
    /// A success came last: healthy.
    Clear,
    /// An exhaustion came with no success before it in the batch: failing since then, unless
    /// the endpoint already was.
    SetIfUnset(i64),
    /// An exhaustion followed a success in the batch: failing since then, whatever was stored.
    Set(i64),
}

impl Health {
    /// Mode code for the SQL `CASE`.
    fn mode(self) -> (i16, Option<i64>) {
        match self {
            Health::Clear => (0, None),
            Health::SetIfUnset(at) => (1, Some(at)),
            Health::Set(at) => (2, Some(at)),
        }
    }
}

/// One delivery's state after a batch: its last outcome, plus how many attempts the batch
/// made (a delivery may appear more than once).
struct DeliveryUpdate<'a> {
    last: &'a AttemptRecord,
    attempts: i64,
}

/// Wakes the nodes of this installation (delivered when the surrounding transaction commits).
async fn notify_work<'e, E: sqlx::Executor<'e, Database = Postgres>>(executor: E) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, current_schema())")
        .bind(WORK_CHANNEL)
        .execute(executor)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Adds events to the outbox inside `tx`.
async fn insert_outbox(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, events: &[OutboxEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut data = Vec::with_capacity(events.len());
    for e in events {
        data.push(serde_json::to_string(&e.data).map_err(hookd_store::StoreError::internal)?);
    }
    sqlx::query(
        "INSERT INTO outbox (id, kind, app_id, data, created_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]::jsonb[], $5::bigint[]) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(events.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.app_id.clone()).collect::<Vec<_>>())
    .bind(data)
    .bind(events.iter().map(|e| micros(e.created_at)).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

mod catalog;
mod idempotency;
mod messages;
mod outbox;
mod queue;
mod retention;
mod stats;
mod tasks;
mod tokens;
