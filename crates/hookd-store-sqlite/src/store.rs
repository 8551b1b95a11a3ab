//! The [`Store`] implementation: one method, one statement (or a few in one transaction).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookd_core::model::{Application, Attempt, Endpoint, Environment, EventType, Message, MessageStatus, TriggerType};
use hookd_store::prelude::*;
use hookd_store::{
    AttemptFilter, AttemptRecord, ClaimBounds, ClaimedDelivery, DeliveryState, IdempotencyState, MessageFilter,
    NewDelivery, OutboxEvent, Page, PageRequest, QueueStats, ReplayKind, ReplayQuery, StatusCounts, StoreError,
    StoreResult, TaskFilter, TaskRecord, TaskStatus, TokenRecord, CLAIM_SCAN_FACTOR,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::rows::{
    self, micros, Json, APP_COLS, ATTEMPT_COLS, DELIVERY_COLS, ENDPOINT_COLS, EVENT_TYPE_COLS, MESSAGE_COLS, TASK_COLS,
    TOKEN_COLS,
};
use crate::{map_err, SqliteStore};
use hookd_store::secrets::{open_endpoint, seal_endpoint};

/// A statement assembled from optional filters, with its positional parameters.
struct Query {
    sql: String,
    params: Vec<Value>,
}

impl Query {
    fn new(select: &str) -> Query {
        Query {
            sql: select.to_string(),
            params: Vec::new(),
        }
    }

    /// Appends ` AND <clause>` whose `?` placeholders take `values` in order.
    fn and(&mut self, clause: &str, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.sql.push_str(" AND ");
        self.sql.push_str(clause);
        self.params.extend(values);
        self
    }

    /// Adds `column IN (?, ?, …)`.
    fn and_in(&mut self, column: &str, values: &[String]) -> &mut Self {
        let marks = vec!["?"; values.len().max(1)].join(", ");
        let clause = format!("{column} IN ({marks})");
        if values.is_empty() {
            return self.and("0", []);
        }
        self.and(&clause, values.iter().map(|v| Value::Text(v.clone())))
    }

    /// Keyset condition and ordering on `key_column`, fetching one row more than the page.
    fn page(&mut self, key_column: &str, page: &PageRequest) -> &mut Self {
        let asc = page.scan_ascending();
        if let Some(cursor) = &page.cursor {
            let op = if asc { ">" } else { "<" };
            self.and(&format!("{key_column} {op} ?"), [Value::Text(cursor.key.clone())]);
        }
        let dir = if asc { "ASC" } else { "DESC" };
        self.sql
            .push_str(&format!(" ORDER BY {key_column} {dir} LIMIT {}", page.limit + 1));
        self
    }

    fn fetch<T>(
        &self,
        conn: &Connection,
        map: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let mut stmt = conn.prepare_cached(&self.sql)?;
        let rows = stmt.query_map(params_from_iter(self.params.iter()), map)?;
        rows.collect()
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn message_filters(q: &mut Query, alias: &str, filter: &MessageFilter) {
    if let Some(types) = &filter.event_types {
        q.and_in(&format!("{alias}.event_type"), types);
    }
    if let Some(channel) = &filter.channel {
        q.and(
            &format!("EXISTS (SELECT 1 FROM json_each({alias}.channels) WHERE json_each.value = ?)"),
            [text(channel)],
        );
    }
    if let Some(before) = filter.before {
        q.and(&format!("{alias}.created_at < ?"), [Value::Integer(micros(before))]);
    }
    if let Some(after) = filter.after {
        q.and(&format!("{alias}.created_at > ?"), [Value::Integer(micros(after))]);
    }
}

fn expect_one(changed: usize) -> StoreResult<()> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl SqliteStore {
    /// Rows of `table` (`delivery` or `attempt`) of an endpoint created in `[since, until]`,
    /// counted by status.
    async fn count_by_status(
        &self,
        table: &'static str,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        let id = endpoint_id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT status, COUNT(*) FROM {table} WHERE endpoint_id = ?1 AND created_at >= ?2 AND created_at <= ?3 \
                 GROUP BY status"
            ))?;
            let rows = stmt.query_map(params![id, micros(since), micros(until)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            counts(rows)
        })
        .await
    }
}

fn counts(rows: impl Iterator<Item = rusqlite::Result<(i64, i64)>>) -> rusqlite::Result<StatusCounts> {
    let mut out = StatusCounts::default();
    for row in rows {
        let (status, n) = row?;
        match MessageStatus::from_code(status) {
            Some(MessageStatus::Success) => out.success += n,
            Some(MessageStatus::Pending) => out.pending += n,
            Some(MessageStatus::Sending) => out.sending += n,
            Some(MessageStatus::Fail) => out.fail += n,
            None => {}
        }
    }
    Ok(out)
}

fn insert_deliveries(c: &Connection, deliveries: &[NewDelivery], created_at: i64) -> StoreResult<()> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, lease_until, lease_token, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?8, ?8)",
        )
        .map_err(map_err)?;
    for d in deliveries {
        stmt.execute(params![
            d.id,
            d.msg_id,
            d.endpoint_id,
            d.app_id,
            MessageStatus::Pending.code(),
            // Created leased: due again when that lease ends, like a claimed delivery.
            micros(d.leased_until.unwrap_or(d.due_at)),
            d.leased_until.map(micros).unwrap_or(0),
            created_at,
            d.lease_token
        ])
        .map_err(map_err)?;
    }
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
