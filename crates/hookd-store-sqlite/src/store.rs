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

#[async_trait]
impl QueueStore for SqliteStore {
    async fn release_stale_leases(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let now = micros(now);
        self.write(move |c| {
            // Tasks left running by a killed process will not finish: say so instead of
            // leaving them "running" forever.
            c.execute(
                "UPDATE task SET status = 'failed', \
                 data = json_set(data, '$.error', 'interrupted when hookd stopped; start it again') WHERE status = 'running'",
                [],
            )
            .map_err(map_err)?;
            // A claim moved their due time to the lease's end: they are due now.
            c.execute(
                "UPDATE delivery SET lease_until = 0, \
                 next_attempt_at = CASE WHEN next_attempt_at > ?1 THEN ?1 ELSE next_attempt_at END \
                 WHERE lease_until > 0",
                [now],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        // Through the writer thread: a stuck or dead writer makes the node unhealthy, not only
        // an unreadable file.
        self.write_bookkeeping(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err))
            .await
    }

    async fn claim_due_within(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        bounds: &ClaimBounds,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let (skip, _, _) = bounds.room_lists();
        let skip = serde_json::to_string(&skip).map_err(StoreError::internal)?;
        let skip_apps = serde_json::to_string(&bounds.skip_apps).map_err(StoreError::internal)?;
        let scan = i64::try_from(limit.saturating_mul(CLAIM_SCAN_FACTOR)).unwrap_or(i64::MAX);
        let token = hookd_store::new_lease_token(&mut rand::thread_rng());
        let bounds = bounds.clone();
        self.write(move |c| {
            // The candidates: the longest overdue rows of endpoints and applications that may
            // take more, a bounded walk of the due index (which covers the columns read). Each
            // endpoint's and application's room is then applied in order, here rather than in
            // SQL, where joining the room lists costs more than the walk itself.
            let mut candidates = c
                .prepare_cached(
                    "WITH skip(k) AS MATERIALIZED (SELECT value FROM json_each(?3)), \
                          skip_app(k) AS MATERIALIZED (SELECT value FROM json_each(?4)) \
                     SELECT id, endpoint_id, app_id FROM delivery INDEXED BY delivery_due_claim \
                     WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1 AND lease_until <= ?1 \
                       AND endpoint_id NOT IN (SELECT k FROM skip) AND app_id NOT IN (SELECT k FROM skip_app) \
                     ORDER BY next_attempt_at LIMIT ?2",
                )
                .map_err(map_err)?;
            let rows = candidates
                .query_map(params![micros(now), scan, skip, skip_apps], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            let picked = bounds.pick(rows.iter().map(|(_, e, a)| (e.as_str(), a.as_str())), limit);
            // A claimed delivery is due again when its lease ends (unless an attempt is
            // recorded first), so the due index never walks leased rows.
            let mut lease = c
                .prepare_cached(
                    "UPDATE delivery SET lease_until = ?2, lease_token = ?3, next_attempt_at = ?2, \
                     next_trigger = MIN(next_trigger, 1) WHERE id = ?1 \
                     RETURNING msg_id, scheduled_attempts, total_attempts, MIN(next_trigger, 1)",
                )
                .map_err(map_err)?;
            let mut claimed = Vec::with_capacity(picked.len());
            for i in picked {
                let (id, endpoint_id, app_id) = &rows[i];
                let (msg_id, scheduled_attempts, total_attempts, trigger) = lease
                    .query_row(params![id, micros(lease_until), token], |r| {
                        Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .map_err(map_err)?;
                claimed.push(ClaimedDelivery {
                    id: id.clone(),
                    msg_id,
                    endpoint_id: endpoint_id.clone(),
                    app_id: app_id.clone(),
                    scheduled_attempts,
                    total_attempts,
                    trigger: hookd_core::model::TriggerType::from_code(trigger)
                        .unwrap_or(hookd_core::model::TriggerType::Scheduled),
                    lease_token: token,
                });
            }
            Ok(claimed)
        })
        .await
    }

    async fn record_attempts(&self, outcomes: &[AttemptRecord]) -> StoreResult<()> {
        let outcomes = outcomes.to_vec();
        self.write(move |c| {
            let mut insert = c
                .prepare_cached(&format!(
                    "INSERT INTO attempt (delivery_id, app_id, {ATTEMPT_COLS}) \
                     SELECT ?1, app_id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 FROM delivery WHERE id = ?1"
                ))
                .map_err(map_err)?;
            let mut update = c
                .prepare_cached(
                    // A resend requested while an attempt was in flight (`next_trigger` 2, see
                    // `schedule_manual`) is not swallowed: a delivery still on its schedule has
                    // its next attempt brought forward to the resend's time; a finished one gets
                    // one manual attempt then.
                    "UPDATE delivery SET status = ?2, scheduled_attempts = ?3, total_attempts = total_attempts + 1, \
                     next_attempt_at = CASE WHEN next_trigger = 2 AND ?4 IS NOT NULL AND NOT ?6 THEN MIN(next_attempt_at, ?4) \
                       WHEN next_trigger = 2 THEN next_attempt_at WHEN ?6 THEN NULL ELSE ?4 END, \
                     parked = ?6 AND next_trigger <> 2, \
                     next_trigger = CASE WHEN next_trigger = 2 AND (?4 IS NULL OR ?6) THEN 1 ELSE 0 END, lease_until = 0, \
                     updated_at = ?5 WHERE id = ?1",
                )
                .map_err(map_err)?;
            let mut healthy = c
                .prepare_cached("UPDATE endpoint SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL")
                .map_err(map_err)?;
            let mut failing = c
                .prepare_cached("UPDATE endpoint SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL")
                .map_err(map_err)?;
            // Fencing: only records made under the delivery's current lease (or unfenced ones).
            // The writer thread is the only writer, so nothing changes between read and write.
            let mut token_of = c
                .prepare_cached("SELECT lease_token FROM delivery WHERE id = ?1")
                .map_err(map_err)?;
            let mut current = std::collections::HashMap::new();
            for o in &outcomes {
                if let Some(token) = token_of
                    .query_row([&o.delivery_id], |r| r.get::<_, i64>(0))
                    .optional()
                    .map_err(map_err)?
                {
                    current.insert(o.delivery_id.clone(), token);
                }
            }
            let mut outbox = c
                .prepare_cached("INSERT INTO outbox (id, kind, app_id, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(map_err)?;
            for o in hookd_store::fenced(&outcomes, &current) {
                for e in &o.events {
                    outbox
                        .execute(params![e.id, e.kind, e.app_id, Json(&e.data), micros(e.created_at)])
                        .map_err(map_err)?;
                }
                let a = hookd_store::storable_attempt(&o.attempt);
                insert
                    .execute(params![
                        o.delivery_id,
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
                        Json(&a.request_headers),
                        Json(&a.response_headers)
                    ])
                    .map_err(map_err)?;
                update
                    .execute(params![
                        o.delivery_id,
                        o.delivery_status.code(),
                        o.scheduled_attempts,
                        o.next_attempt_at.map(micros),
                        micros(a.created_at),
                        o.park
                    ])
                    .map_err(map_err)?;
                // Endpoint health for auto-disable: any success ends a failing run; an
                // exhausted delivery starts one if none is running.
                if a.status == MessageStatus::Success {
                    healthy.execute([&a.endpoint_id]).map_err(map_err)?;
                } else if o.delivery_status == MessageStatus::Fail && a.trigger_type == TriggerType::Scheduled {
                    failing.execute(params![a.endpoint_id, micros(a.created_at)]).map_err(map_err)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn renew_leases(&self, leases: &[(String, i64)], lease_until: DateTime<Utc>) -> StoreResult<u64> {
        let leases = leases.to_vec();
        self.write(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "UPDATE delivery SET lease_until = ?3, \
                 next_attempt_at = CASE WHEN next_trigger = 2 THEN next_attempt_at ELSE ?3 END \
                 WHERE id = ?1 AND lease_token = ?2 AND lease_until > 0",
                )
                .map_err(map_err)?;
            let mut renewed = 0;
            for (id, token) in &leases {
                renewed += stmt.execute(params![id, token, micros(lease_until)]).map_err(map_err)? as u64;
            }
            Ok(renewed)
        })
        .await
    }

    async fn release_leases(&self, leases: &[(String, i64)], now: DateTime<Utc>) -> StoreResult<()> {
        let (ids, now) = (leases.to_vec(), micros(now));
        self.write(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "UPDATE delivery SET lease_until = 0, \
                     next_attempt_at = CASE WHEN next_attempt_at > ?2 THEN ?2 ELSE next_attempt_at END \
                     WHERE id = ?1 AND (?3 = 0 OR lease_token = ?3)",
                )
                .map_err(map_err)?;
            for (id, token) in &ids {
                stmt.execute(params![id, now, token]).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn park_delivery(&self, delivery_id: &str, lease_token: i64) -> StoreResult<()> {
        let id = delivery_id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE delivery SET parked = 1, next_attempt_at = NULL, lease_until = 0 \
                 WHERE id = ?1 AND (?2 = 0 OR lease_token = ?2)",
                params![id, lease_token],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn unpark_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        let id = endpoint_id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE delivery SET parked = 0, next_attempt_at = ?2 WHERE endpoint_id = ?1 AND parked = 1",
                params![id, micros(now)],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn hasten_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        let id = endpoint_id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE delivery SET next_attempt_at = ?2 WHERE endpoint_id = ?1 AND next_attempt_at > ?2 \
                 AND lease_until <= ?2",
                params![id, micros(now)],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn defer_delivery(&self, delivery_id: &str, lease_token: i64, until: DateTime<Utc>) -> StoreResult<()> {
        let id = delivery_id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE delivery SET next_attempt_at = ?2, lease_until = 0 \
                 WHERE id = ?1 AND (?3 = 0 OR lease_token = ?3)",
                params![id, micros(until), lease_token],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }
}

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

    async fn expire_app_tokens(&self, app_id: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        let (app_id, at) = (app_id.to_string(), micros(at));
        self.write(move |c| {
            c.execute(
                "UPDATE token SET expires_at = ?2 WHERE app_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                params![app_id, at],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }
}

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
            for table in ["attempt", "delivery", "message", "endpoint", "token", "task"] {
                c.execute(&format!("DELETE FROM {table} WHERE app_id = ?1"), [&id])
                    .map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn list_applications(&self, env: Environment, page: &PageRequest) -> StoreResult<Page<Application>> {
        let page = page.clone();
        self.read(move |c| {
            let mut q = Query::new(&format!("SELECT {APP_COLS} FROM application WHERE env = ?"));
            q.params.push(text(env.as_str()));
            q.page("id", &page);
            Ok(page.finish(q.fetch(c, rows::application)?))
        })
        .await
    }

    async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let e = seal_endpoint(self.secrets.as_deref(), e).into_owned();
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO endpoint ({ENDPOINT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    e.id, e.app_id, e.uid, e.url, e.description, e.disabled, e.event_types.as_ref().map(Json),
                    e.channels.as_ref().map(Json), e.throttle_rate, Json(&e.metadata), e.secret, Json(&e.headers),
                    micros(e.created_at), micros(e.updated_at), Json(&e.old_secrets), e.failing_since.map(micros)
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
                     failing_since = ?15 WHERE app_id = ?1 AND id = ?2",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        e.app_id, e.id, e.uid, e.url, e.description, e.disabled, e.event_types.as_ref().map(Json),
                        e.channels.as_ref().map(Json), e.throttle_rate, Json(&e.metadata), e.secret, Json(&e.headers),
                        micros(e.updated_at), Json(&e.old_secrets), e.failing_since.map(micros)
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
            Ok(())
        })
        .await
    }

    async fn list_endpoints(&self, app_id: &str, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        let (app_id, page) = (app_id.to_string(), page.clone());
        self.read(move |c| {
            let mut q = Query::new(&format!("SELECT {ENDPOINT_COLS} FROM endpoint WHERE app_id = ?"));
            q.params.push(Value::Text(app_id));
            q.page("id", &page);
            Ok(page.finish(q.fetch(c, rows::endpoint)?))
        })
        .await
        .and_then(|p: Page<Endpoint>| {
            let has_more = p.has_more;
            let items = p
                .items
                .into_iter()
                .map(|e| open_endpoint(self.secrets.as_deref(), e))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Page { items, has_more })
        })
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
        let page = page.clone();
        self.read(move |c| {
            let mut q = Query::new(&format!("SELECT {EVENT_TYPE_COLS} FROM event_type WHERE env = ?"));
            q.params.push(text(env.as_str()));
            if !include_archived {
                q.and("archived = 0", []);
            }
            q.page("name", &page);
            Ok(page.finish(q.fetch(c, rows::event_type)?))
        })
        .await
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn create_message(&self, m: &Message, deliveries: &[NewDelivery]) -> StoreResult<()> {
        let (m, deliveries) = (m.clone(), deliveries.to_vec());
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO message ({MESSAGE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    m.id,
                    m.app_id,
                    m.event_id,
                    m.event_type,
                    m.channels.as_ref().map(Json),
                    m.payload,
                    micros(m.created_at),
                    micros(m.expires_at)
                ])
            })
            .map_err(map_err)?;
            insert_deliveries(c, &deliveries, micros(m.created_at))
        })
        .await
    }

    async fn get_message(&self, app_id: &str, key: &str) -> StoreResult<Option<Message>> {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM message WHERE app_id = ?1 AND (id = ?2 OR event_id = ?2) ORDER BY id = ?2 DESC LIMIT 1"
            ))?
            .query_row(params![app_id, key], rows::message)
            .optional()
        })
        .await
    }

    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        let (app_id, filter, page) = (app_id.to_string(), filter.clone(), page.clone());
        self.read(move |c| {
            let mut q = Query::new(&format!("SELECT {MESSAGE_COLS} FROM message m WHERE m.app_id = ?"));
            q.params.push(Value::Text(app_id));
            message_filters(&mut q, "m", &filter);
            q.page("m.id", &page);
            Ok(page.finish(q.fetch(c, rows::message)?))
        })
        .await
    }

    async fn schedule_manual(&self, d: &NewDelivery, now: DateTime<Utc>) -> StoreResult<String> {
        let d = d.clone();
        self.write(move |c| {
            // A delivery still on its schedule is simply made due now; a finished one gets one
            // manual attempt, after which it stays finished with that attempt's outcome.
            c.prepare_cached(
                "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, next_trigger, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, 1, ?5, ?5) \
                 ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET next_attempt_at = ?5, parked = 0, \
                 next_trigger = CASE WHEN lease_until > ?5 THEN 2 WHEN status IN (1, 3) THEN next_trigger ELSE 1 END, \
                 updated_at = ?5 \
                 RETURNING id",
            )
            .and_then(|mut s| s.query_row(params![d.id, d.msg_id, d.endpoint_id, d.app_id, micros(now)], |r| r.get(0)))
            .map_err(map_err)
        })
        .await
    }

    async fn get_delivery(&self, msg_id: &str, endpoint_id: &str) -> StoreResult<Option<DeliveryState>> {
        let (msg_id, endpoint_id) = (msg_id.to_string(), endpoint_id.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {DELIVERY_COLS} FROM delivery WHERE msg_id = ?1 AND endpoint_id = ?2"
            ))?
            .query_row(params![msg_id, endpoint_id], rows::delivery)
            .optional()
        })
        .await
    }

    async fn list_message_deliveries(&self, msg_id: &str, page: &PageRequest) -> StoreResult<Page<DeliveryState>> {
        let (msg_id, page) = (msg_id.to_string(), page.clone());
        self.read(move |c| {
            let mut q = Query::new(&format!("SELECT {DELIVERY_COLS} FROM delivery WHERE msg_id = ?"));
            q.params.push(Value::Text(msg_id));
            q.page("endpoint_id", &page);
            Ok(page.finish(q.fetch(c, rows::delivery)?))
        })
        .await
    }

    async fn list_endpoint_deliveries(
        &self,
        endpoint_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<(DeliveryState, Message)>> {
        let (endpoint_id, filter, page) = (endpoint_id.to_string(), filter.clone(), page.clone());
        self.read(move |c| {
            let cols: Vec<String> = DELIVERY_COLS.split(", ").map(|col| format!("d.{col}")).collect();
            let mcols: Vec<String> = MESSAGE_COLS.split(", ").map(|col| format!("m.{col}")).collect();
            let mut q = Query::new(&format!(
                "SELECT {}, {} FROM delivery d JOIN message m ON m.id = d.msg_id WHERE d.endpoint_id = ?",
                cols.join(", "),
                mcols.join(", ")
            ));
            q.params.push(Value::Text(endpoint_id));
            message_filters(&mut q, "m", &filter);
            if let Some(status) = filter.status {
                q.and("d.status = ?", [Value::Integer(status.code())]);
            }
            q.page("d.msg_id", &page);
            let rows = q.fetch(c, |r| Ok((rows::delivery(r)?, rows::message_at(r, 7)?)))?;
            Ok(page.finish(rows))
        })
        .await
    }

    async fn list_attempts(&self, filter: &AttemptFilter, page: &PageRequest) -> StoreResult<Page<Attempt>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c| {
            let cols: Vec<String> = ATTEMPT_COLS.split(", ").map(|col| format!("a.{col}")).collect();
            let needs_message = filter.event_types.is_some() || filter.channel.is_some();
            let join = if needs_message {
                " JOIN message m ON m.id = a.msg_id"
            } else {
                ""
            };
            let mut q = Query::new(&format!(
                "SELECT {} FROM attempt a{join} WHERE a.app_id = ?",
                cols.join(", ")
            ));
            q.params.push(Value::Text(filter.app_id.clone()));
            if let Some(msg_id) = &filter.msg_id {
                q.and("a.msg_id = ?", [text(msg_id)]);
            }
            if let Some(endpoint_id) = &filter.endpoint_id {
                q.and("a.endpoint_id = ?", [text(endpoint_id)]);
            }
            if let Some(status) = filter.status {
                q.and("a.status = ?", [Value::Integer(status.code())]);
            }
            if let Some(class) = filter.status_code_class {
                if class == 0 {
                    q.and("a.response_status_code = 0", []);
                } else {
                    q.and(
                        "a.response_status_code >= ? AND a.response_status_code < ?",
                        [Value::Integer(class), Value::Integer(class + 100)],
                    );
                }
            }
            if let Some(before) = filter.before {
                q.and("a.created_at < ?", [Value::Integer(micros(before))]);
            }
            if let Some(after) = filter.after {
                q.and("a.created_at > ?", [Value::Integer(micros(after))]);
            }
            if needs_message {
                let mf = MessageFilter {
                    event_types: filter.event_types.clone(),
                    channel: filter.channel.clone(),
                    ..MessageFilter::default()
                };
                message_filters(&mut q, "m", &mf);
            }
            q.page("a.id", &page);
            Ok(page.finish(q.fetch(c, rows::attempt)?))
        })
        .await
    }

    async fn get_attempt(&self, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>> {
        let (msg_id, attempt_id) = (msg_id.to_string(), attempt_id.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ATTEMPT_COLS} FROM attempt WHERE id = ?1 AND msg_id = ?2"
            ))?
            .query_row(params![attempt_id, msg_id], rows::attempt)
            .optional()
        })
        .await
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn expunge_message_content(&self, app_id: &str, msg_id: &str) -> StoreResult<()> {
        let (app_id, msg_id) = (app_id.to_string(), msg_id.to_string());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE message SET payload = NULL WHERE app_id = ?1 AND id = ?2",
                    params![app_id, msg_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn expunge_app_contents(&self, app_id: &str) -> StoreResult<u64> {
        let app_id = app_id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE message SET payload = NULL WHERE app_id = ?1 AND payload IS NOT NULL",
                [app_id],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn prune_messages(&self, below: &str, limit: usize) -> StoreResult<u64> {
        let below = below.to_string();
        self.write(move |c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT m.id FROM message m WHERE m.id < ?1 AND NOT EXISTS (\
                       SELECT 1 FROM delivery d WHERE d.msg_id = m.id \
                       AND (d.next_attempt_at IS NOT NULL OR d.parked = 1)) \
                     ORDER BY m.id LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![below, limit as i64], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .map_err(map_err)?;
            for id in &ids {
                for sql in [
                    "DELETE FROM attempt WHERE msg_id = ?1",
                    "DELETE FROM delivery WHERE msg_id = ?1",
                    "DELETE FROM message WHERE id = ?1",
                ] {
                    c.prepare_cached(sql)
                        .and_then(|mut s| s.execute([id]))
                        .map_err(map_err)?;
                }
            }
            Ok(ids.len() as u64)
        })
        .await
    }

    async fn expunge_attempt_content(&self, msg_id: &str, attempt_id: &str) -> StoreResult<()> {
        let (msg_id, attempt_id) = (msg_id.to_string(), attempt_id.to_string());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE attempt SET response = 'EXPUNGED' WHERE msg_id = ?1 AND id = ?2",
                    params![msg_id, attempt_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn expire_payloads(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(
                // A message with a delivery still waiting for an attempt (due, scheduled or
                // parked) keeps its payload until that delivery is finished.
                "UPDATE message SET payload = NULL WHERE id IN \
                 (SELECT id FROM message WHERE expires_at <= ?1 AND payload IS NOT NULL \
                  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = message.id \
                                  AND (d.next_attempt_at IS NOT NULL OR d.parked = 1)) \
                  LIMIT ?2)",
                params![micros(now), limit as i64],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn add_outbox(&self, events: &[OutboxEvent]) -> StoreResult<()> {
        let events = events.to_vec();
        self.write(move |c| {
            let mut stmt = c
                .prepare_cached("INSERT INTO outbox (id, kind, app_id, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(map_err)?;
            for e in &events {
                stmt.execute(params![e.id, e.kind, e.app_id, Json(&e.data), micros(e.created_at)])
                    .map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn outbox_events(&self, limit: usize) -> StoreResult<Vec<OutboxEvent>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, kind, app_id, data, created_at FROM outbox ORDER BY created_at, id LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                let data: String = r.get(3)?;
                Ok(OutboxEvent {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    app_id: r.get(2)?,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                    created_at: rows::from_micros(r.get(4)?),
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }

    async fn remove_outbox(&self, ids: &[String]) -> StoreResult<()> {
        let ids = ids.to_vec();
        self.write(move |c| {
            let mut stmt = c.prepare_cached("DELETE FROM outbox WHERE id = ?1").map_err(map_err)?;
            for id in &ids {
                stmt.execute([id]).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl StatsStore for SqliteStore {
    async fn queue_stats(&self, now: DateTime<Utc>, cap: usize) -> StoreResult<QueueStats> {
        let now = micros(now);
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        self.read(move |c| {
            // The first `cap` entries of the due index: due deliveries come first (a claimed
            // one is due only at its lease's end), so the due count and the oldest due time
            // are exact below the cap.
            c.prepare_cached(
                "SELECT \
                   COALESCE(SUM(next_attempt_at <= ?1 AND lease_until <= ?1), 0), \
                   COALESCE(SUM(lease_until > ?1), 0), \
                   COALESCE(SUM(next_attempt_at > ?1 AND lease_until <= ?1), 0), \
                   MIN(CASE WHEN lease_until <= ?1 THEN next_attempt_at END), \
                   (SELECT COUNT(*) FROM (SELECT 1 FROM delivery WHERE parked = 1 LIMIT ?2)), \
                   (SELECT COUNT(*) FROM endpoint WHERE disabled = 1), \
                   COUNT(*) \
                 FROM (SELECT next_attempt_at, lease_until FROM delivery INDEXED BY delivery_due_claim \
                       WHERE next_attempt_at IS NOT NULL ORDER BY next_attempt_at LIMIT ?2)",
            )?
            .query_row(params![now, cap], |r| {
                let (pending, parked) = (r.get::<_, i64>(6)?, r.get::<_, i64>(4)?);
                Ok(QueueStats {
                    capped: pending >= cap || parked >= cap,
                    due: r.get::<_, i64>(0)? as u64,
                    claimed: r.get::<_, i64>(1)? as u64,
                    scheduled: r.get::<_, i64>(2)? as u64,
                    oldest_due_at: r
                        .get::<_, Option<i64>>(3)?
                        .filter(|t| *t <= now)
                        .map(crate::rows::from_micros),
                    parked: r.get::<_, i64>(4)? as u64,
                    disabled_endpoints: r.get::<_, i64>(5)? as u64,
                })
            })
        })
        .await
    }

    async fn delivery_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        self.count_by_status("delivery", endpoint_id, since, until).await
    }

    async fn attempt_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        self.count_by_status("attempt", endpoint_id, since, until).await
    }

    async fn replay_candidates(
        &self,
        query: &ReplayQuery,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let (query, after) = (query.clone(), after.map(String::from));
        self.read(move |c| {
            let mcols: Vec<String> = MESSAGE_COLS.split(", ").map(|col| format!("m.{col}")).collect();
            let mut q = match &query.kind {
                ReplayKind::Missing => {
                    let mut q = Query::new(&format!(
                        "SELECT {} FROM message m WHERE m.app_id = ? AND NOT EXISTS \
                         (SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.endpoint_id = ?)",
                        mcols.join(", ")
                    ));
                    q.params.extend([text(&query.app_id), text(&query.endpoint_id)]);
                    q
                }
                ReplayKind::Deliveries { statuses, event_types, channel, status_code_class } => {
                    let mut q = Query::new(&format!(
                        "SELECT {} FROM delivery d JOIN message m ON m.id = d.msg_id WHERE d.endpoint_id = ?",
                        mcols.join(", ")
                    ));
                    q.params.push(text(&query.endpoint_id));
                    let codes: Vec<String> = statuses.iter().map(|s| s.code().to_string()).collect();
                    q.and(&format!("d.status IN ({})", if codes.is_empty() { "-1".into() } else { codes.join(", ") }), []);
                    message_filters(&mut q, "m", &MessageFilter { event_types: event_types.clone(), channel: channel.clone(), ..MessageFilter::default() });
                    if let Some(class) = status_code_class {
                        // The class of the delivery's latest response.
                        let (lo, hi) = if *class == 0 { (0, 1) } else { (*class, class + 100) };
                        q.and(
                            "(SELECT a.response_status_code FROM attempt a WHERE a.msg_id = d.msg_id AND a.endpoint_id = d.endpoint_id \
                             ORDER BY a.id DESC LIMIT 1) BETWEEN ? AND ?",
                            [Value::Integer(lo), Value::Integer(hi - 1)],
                        );
                    }
                    q
                }
            };
            q.and("m.created_at >= ? AND m.created_at <= ?", [Value::Integer(micros(query.since)), Value::Integer(micros(query.until))]);
            if let Some(after) = after {
                q.and("m.id > ?", [Value::Text(after)]);
            }
            q.sql.push_str(&format!(" ORDER BY m.id ASC LIMIT {limit}"));
            q.fetch(c, rows::message)
        })
        .await
    }
}

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
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c| {
            let cols: Vec<String> = TASK_COLS.split(", ").map(|col| format!("t.{col}")).collect();
            let mut q = Query::new(&format!(
                "SELECT {} FROM task t JOIN application a ON a.id = t.app_id WHERE a.env = ?",
                cols.join(", ")
            ));
            q.params.push(text(env.as_str()));
            if let Some(status) = filter.status {
                q.and("t.status = ?", [text(status.as_str())]);
            }
            if let Some(kind) = &filter.kind {
                q.and("t.kind = ?", [text(kind)]);
            }
            q.page("t.id", &page);
            Ok(page.finish(q.fetch(c, rows::task)?))
        })
        .await
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn delete_expired_idempotency(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM idempotency WHERE key IN \
                 (SELECT key FROM idempotency WHERE expires_at <= ?1 LIMIT ?2)",
                params![micros(now), limit as i64],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn idempotency_begin(
        &self,
        key: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
        let key = key.to_string();
        self.write_bookkeeping(move |c| {
            let existing: Option<(i64, Option<Vec<u8>>, i64, i64)> = c
                .prepare_cached("SELECT status, body, created_at, expires_at FROM idempotency WHERE key = ?1")
                .and_then(|mut s| {
                    s.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .optional()
                })
                .map_err(map_err)?;
            match existing {
                Some((status, body, _, expires)) if status > 0 && expires > micros(now) => {
                    return Ok(IdempotencyState::Completed {
                        status: status as u16,
                        body: body.unwrap_or_default(),
                    })
                }
                Some((0, _, created, expires)) if created >= micros(stale_before) && expires > micros(now) => {
                    return Ok(IdempotencyState::InProgress)
                }
                _ => {}
            }
            c.execute(
                "INSERT INTO idempotency (key, status, body, created_at, expires_at) VALUES (?1, 0, NULL, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET status = 0, body = NULL, created_at = ?2, expires_at = ?3",
                params![key, micros(now), micros(expires_at)],
            )
            .map_err(map_err)?;
            Ok(IdempotencyState::Started)
        })
        .await
    }

    async fn idempotency_complete(
        &self,
        key: &str,
        claimed_at: DateTime<Utc>,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()> {
        let (key, body) = (key.to_string(), body.to_vec());
        self.write_bookkeeping(move |c| {
            c.execute(
                "UPDATE idempotency SET status = ?2, body = ?3 WHERE key = ?1 AND status = 0 AND created_at = ?4",
                params![key, status, body, micros(claimed_at)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn idempotency_release(&self, key: &str, claimed_at: DateTime<Utc>) -> StoreResult<()> {
        let key = key.to_string();
        self.write_bookkeeping(move |c| {
            c.execute(
                "DELETE FROM idempotency WHERE key = ?1 AND status = 0 AND created_at = ?2",
                params![key, micros(claimed_at)],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
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
