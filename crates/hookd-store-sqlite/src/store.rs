//! The [`Store`] implementation: one method, one statement (or a few in one transaction).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookd_core::model::{Application, Attempt, Endpoint, Environment, EventType, Message, MessageStatus};
use hookd_store::batch::RecordPlan;
use hookd_store::prelude::*;
use hookd_store::{
    AttemptFilter, AttemptRecord, ClaimBounds, ClaimedDelivery, DeliveryState, IdempotencyState, MessageFilter,
    NewDelivery, OutboxEvent, Page, PageRequest, QueueStats, ReplayQuery, SessionRecord, StatusCounts, StoreError,
    StoreResult, TaskFilter, TaskRecord, TaskStatus, TokenRecord, TrafficMinute, CLAIM_SCAN_FACTOR, LATENCY_BUCKETS,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::rows::{
    self, micros, Json, APP_COLS, ATTEMPT_COLS, DELIVERY_COLS, ENDPOINT_COLS, EVENT_TYPE_COLS, MESSAGE_COLS,
    SESSION_COLS, TASK_COLS, TOKEN_COLS, TRAFFIC_ADD, TRAFFIC_COLS,
};
use crate::writer::Isolation;
use crate::{map_err, SqliteStore};
use hookd_store::secrets::{open_endpoint, seal_endpoint};
use hookd_store::sql::{self, Dialect, Param, Sql};

/// The value rusqlite binds for a shared statement's parameter; lists travel as JSON text.
pub(crate) fn value(param: &Param) -> Value {
    match param {
        Param::Int(i) => Value::Integer(*i),
        Param::Text(s) => Value::Text(s.clone()),
        Param::Texts(list) => Value::Text(serde_json::to_string(list).unwrap_or_default()),
        Param::Ints(list) => Value::Text(serde_json::to_string(list).unwrap_or_default()),
    }
}

/// Runs a shared statement ([`hookd_store::sql`]) on `conn`.
fn fetch<T>(
    conn: &Connection,
    q: &Sql,
    map: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(q.text())?;
    let rows = stmt.query_map(params_from_iter(q.params().iter().map(value)), map)?;
    rows.collect()
}

fn expect_one(changed: usize) -> StoreResult<()> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl SqliteStore {
    /// Runs a shared statement ([`hookd_store::sql`]) on a reader.
    async fn list<T: Send + 'static>(
        &self,
        q: Sql,
        map: fn(&rusqlite::Row) -> rusqlite::Result<T>,
    ) -> StoreResult<Vec<T>> {
        self.read(move |c| fetch(c, &q, map)).await
    }

    /// Rows of `table` (`delivery` or `attempt`) of an endpoint created in `[since, until]`,
    /// counted by status.
    async fn count_by_status(
        &self,
        table: &'static str,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        let q = sql::count_by_status(Dialect::Sqlite, table, endpoint_id, since, until);
        let rows = self.list(q, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).await?;
        Ok(sql::status_counts(rows))
    }
}

/// The statement that stores an attempt, for [`insert_attempt`]. One row of values, not
/// `INSERT … SELECT`: a statement that may write several rows makes SQLite keep a statement
/// journal, and releasing it inside a batch's savepoint walks the batch's whole journal, so the
/// cost of a batch of attempts grew with its square. Callers make sure the delivery exists
/// (the writer thread is the only writer, so it cannot vanish in between).
fn attempt_insert(c: &Connection) -> StoreResult<rusqlite::CachedStatement<'_>> {
    c.prepare_cached(&format!(
        "INSERT INTO attempt (delivery_id, app_id, {ATTEMPT_COLS}) \
         VALUES (?1, ?15, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))
    .map_err(map_err)
}

/// Stores one attempt of `delivery_id`, of application `app_id`, with `insert`
/// ([`attempt_insert`]).
fn insert_attempt(
    insert: &mut rusqlite::CachedStatement<'_>,
    delivery_id: &str,
    app_id: &str,
    a: &Attempt,
) -> StoreResult<()> {
    insert
        .execute(params![
            delivery_id,
            a.id,
            a.msg_id,
            a.endpoint_id,
            a.url,
            a.response,
            a.response_status_code,
            a.response_duration_ms,
            a.status.code(),
            a.trigger_type.code(),
            a.attempt_number,
            micros(a.created_at),
            a.request_headers.as_json(),
            Json(&a.response_headers),
            app_id
        ])
        .map_err(map_err)?;
    Ok(())
}

/// Deliveries a message inserts with one statement: a fan-out's rows go in by eights, the rest
/// one by one. One statement of eight rows costs the writer less than eight of one (a
/// statement's start and end, its cursors on the table and its four indexes): alternated,
/// fan-out 100's ingest +10 % and fan-out 10's +3 % (docs/performance.md).
const DELIVERY_CHUNK: usize = 8;

/// `INSERT OR IGNORE` of [`DELIVERY_CHUNK`] deliveries without a FIFO lane: `?1` is their
/// creation time, `?2` the pending status, then seven values per row. `OR IGNORE`, so that
/// SQLite keeps no statement journal for a statement of several rows (its release walks
/// everything the transaction wrote before); a row left out is caught by the count of rows
/// stored instead.
static DELIVERY_CHUNK_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let rows: Vec<String> = (0..DELIVERY_CHUNK)
        .map(|k| {
            let [id, msg, endpoint, app, due, lease, token] = std::array::from_fn(|i| 3 + k * 7 + i);
            format!("(?{id}, ?{msg}, ?{endpoint}, ?{app}, ?2, ?{due}, ?{lease}, ?{token}, ?1, ?1, NULL)")
        })
        .collect();
    format!(
        "INSERT OR IGNORE INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, lease_until, \
         lease_token, created_at, updated_at, lane) VALUES {}",
        rows.join(", ")
    )
});

/// A new delivery's due time and lease end, as stored. A FIFO delivery is never due for the
/// claim (its lane sends it) and holds no lease; one created leased is due again when that
/// lease ends, like a claimed delivery.
fn due_and_lease(d: &NewDelivery) -> (Option<i64>, i64) {
    match d.lane {
        Some(_) => (None, 0),
        None => (
            Some(micros(d.leased_until.unwrap_or(d.due_at))),
            d.leased_until.map(micros).unwrap_or(0),
        ),
    }
}

fn insert_deliveries(c: &Connection, deliveries: &[NewDelivery], created_at: i64) -> StoreResult<()> {
    let laneless = deliveries.iter().all(|d| d.lane.is_none());
    let whole = if laneless {
        deliveries.len() / DELIVERY_CHUNK * DELIVERY_CHUNK
    } else {
        0
    };
    let (chunked, deliveries) = deliveries.split_at(whole);
    if !chunked.is_empty() {
        let mut chunk = c.prepare_cached(&DELIVERY_CHUNK_SQL).map_err(map_err)?;
        chunk.raw_bind_parameter(1, created_at).map_err(map_err)?;
        chunk
            .raw_bind_parameter(2, MessageStatus::Pending.code())
            .map_err(map_err)?;
        for rows in chunked.chunks(DELIVERY_CHUNK) {
            for (k, d) in rows.iter().enumerate() {
                let at = 3 + k * 7;
                let (due, lease) = due_and_lease(d);
                (|| {
                    chunk.raw_bind_parameter(at, &d.id)?;
                    chunk.raw_bind_parameter(at + 1, &d.msg_id)?;
                    chunk.raw_bind_parameter(at + 2, &d.endpoint_id)?;
                    chunk.raw_bind_parameter(at + 3, &d.app_id)?;
                    chunk.raw_bind_parameter(at + 4, due)?;
                    chunk.raw_bind_parameter(at + 5, lease)?;
                    chunk.raw_bind_parameter(at + 6, d.lease_token)
                })()
                .map_err(map_err)?;
            }
            let stored = chunk.raw_execute().map_err(map_err)?;
            if stored != rows.len() {
                // A row was ignored (its message and endpoint, or its id, taken): fail the
                // publish rather than store part of it. Its rows are undone with the batch.
                return Err(StoreError::message(format!(
                    "{stored} of {} deliveries of message {} could be stored",
                    rows.len(),
                    rows[0].msg_id
                )));
            }
        }
    }
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, lease_until, lease_token, \
             created_at, updated_at, lane) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?8, ?8, ?10)",
        )
        .map_err(map_err)?;
    for d in deliveries {
        let (due, lease) = due_and_lease(d);
        stmt.execute(params![
            d.id,
            d.msg_id,
            d.endpoint_id,
            d.app_id,
            MessageStatus::Pending.code(),
            due,
            lease,
            created_at,
            d.lease_token,
            d.lane
        ])
        .map_err(map_err)?;
        if let Some(lane) = d.lane {
            c.prepare_cached("INSERT OR IGNORE INTO fifo_lane (endpoint_id, lane, app_id) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![d.endpoint_id, lane, d.app_id]))
                .map_err(map_err)?;
        }
    }
    Ok(())
}

mod catalog;
mod fifo;
mod idempotency;
mod messages;
mod outbox;
mod polls;
pub(crate) mod queue;
mod retention;
mod sessions;
mod stats;
mod tasks;
mod tokens;
