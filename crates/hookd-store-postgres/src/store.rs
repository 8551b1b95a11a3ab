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
        let rows = q.build().fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(|r| map(r).map_err(map_err)).collect()
    }

    /// Runs `query` expecting at most one row.
    async fn fetch_optional<T>(
        &self,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
        map: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
    ) -> StoreResult<Option<T>> {
        let row = query.fetch_optional(&self.pool).await.map_err(map_err)?;
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
            .fetch_all(&self.pool)
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

#[async_trait]
impl QueueStore for PostgresStore {
    /// Does nothing and returns 0: the database is shared by every node, and a starting node
    /// cannot tell a lease held by a dead node from one held by a live node that is sending the
    /// delivery right now. Releasing them would make two nodes send the same delivery; left
    /// alone, a dead node's leases simply expire and its deliveries are claimed again then.
    /// For the same reason background tasks left `running` are not failed: another node may be
    /// running them.
    async fn release_stale_leases(&self, _now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(0)
    }

    async fn listen_for_work(&self) -> StoreResult<()> {
        let mut guard = self.listener.lock().await;
        if guard.is_none() {
            let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
                .await
                .map_err(map_err)?;
            listener.listen(WORK_CHANNEL).await.map_err(map_err)?;
            *guard = Some(listener);
        }
        Ok(())
    }

    async fn wait_for_work(&self) -> StoreResult<()> {
        self.listen_for_work().await?;
        let mut guard = self.listener.lock().await;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(listener) = guard.as_mut() else {
            return Err(hookd_store::StoreError::Unavailable(
                "the LISTEN connection closed".into(),
            ));
        };
        loop {
            match listener.recv().await {
                Ok(n) if n.payload() == schema => return Ok(()),
                Ok(_) => continue, // another installation in the same database
                Err(e) => {
                    *guard = None; // reconnect on the next call
                    return Err(map_err(e));
                }
            }
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn claim_due_within(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        bounds: &ClaimBounds,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        hookd_store::gate::begin_write()?;
        let (skip, ids, rooms) = bounds.room_lists();
        let (app_ids, app_rooms, per_app) = bounds.app_lists();
        let per_endpoint = i64::try_from(bounds.per_endpoint).unwrap_or(i64::MAX);
        let scan = i64::try_from(limit.saturating_mul(CLAIM_SCAN_FACTOR)).unwrap_or(i64::MAX);
        let token = hookd_store::new_lease_token(&mut rand::thread_rng());
        // The candidates are the longest overdue rows of endpoints and applications that may
        // take more (a bounded index walk, read without locks); each endpoint's first `room` of
        // them are then locked with SKIP LOCKED, so nodes claiming at the same moment take
        // disjoint rows, and re-checked, so a row another claim has just leased and committed
        // is not taken twice.
        let rows = sqlx::query(
            "WITH room AS (SELECT * FROM UNNEST($5::text[], $6::bigint[]) AS r(endpoint_id, room)), \
             app_room AS (SELECT * FROM UNNEST($11::text[], $12::bigint[]) AS a(app_id, room)), \
             cand AS (SELECT d.id, d.endpoint_id, d.app_id, d.next_attempt_at FROM delivery d \
               WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $2 AND d.lease_until <= $2 \
                 AND NOT (d.endpoint_id = ANY($4::text[])) AND NOT (d.app_id = ANY($8::text[])) \
               ORDER BY d.next_attempt_at LIMIT $9), \
             ranked AS (SELECT c.id, c.app_id, c.next_attempt_at, \
                 row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.next_attempt_at, c.id) AS rn, \
                 COALESCE(r.room, $7) AS room \
               FROM cand c LEFT JOIN room r ON r.endpoint_id = c.endpoint_id), \
             ranked_app AS (SELECT k.id, k.next_attempt_at, \
                 row_number() OVER (PARTITION BY k.app_id ORDER BY k.next_attempt_at, k.id) AS rn, \
                 COALESCE(a.room, $13) AS room \
               FROM ranked k LEFT JOIN app_room a ON a.app_id = k.app_id WHERE k.rn <= k.room), \
             picked AS (SELECT d.id FROM delivery d JOIN ranked_app k ON k.id = d.id \
               WHERE k.rn <= k.room AND d.next_attempt_at <= $2 AND d.lease_until <= $2 \
               ORDER BY k.next_attempt_at LIMIT $3 FOR UPDATE OF d SKIP LOCKED) \
             UPDATE delivery SET lease_until = $1, lease_token = $10, next_attempt_at = $1, \
               next_trigger = LEAST(delivery.next_trigger, 1) \
             FROM picked WHERE delivery.id = picked.id \
             RETURNING delivery.id, delivery.msg_id, delivery.endpoint_id, delivery.app_id, \
               delivery.scheduled_attempts, delivery.total_attempts, LEAST(delivery.next_trigger, 1)::smallint",
        )
        .bind(micros(lease_until))
        .bind(micros(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(skip)
        .bind(ids)
        .bind(rooms)
        .bind(per_endpoint)
        .bind(&bounds.skip_apps)
        .bind(scan)
        .bind(token)
        .bind(app_ids)
        .bind(app_rooms)
        .bind(per_app)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| rows::claimed(r, token).map_err(map_err)).collect()
    }

    async fn record_attempts(&self, outcomes: &[AttemptRecord]) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        if outcomes.is_empty() {
            return Ok(());
        }
        // Three statements whatever the batch size: the attempts, the deliveries, the
        // endpoints' health. Each is folded in Rust so that the result is the one applying the
        // outcomes one by one, in order, would give.
        let mut tx = self.pool.begin().await.map_err(map_err)?;

        // Fencing: lock the deliveries (in id order, as every writer does) and keep only records
        // made under their current lease, or unfenced ones. A claim skips locked rows, so the
        // tokens cannot change before the commit.
        let mut delivery_ids: Vec<String> = outcomes.iter().map(|o| o.delivery_id.clone()).collect();
        delivery_ids.sort();
        delivery_ids.dedup();
        let current: std::collections::HashMap<String, i64> =
            sqlx::query_as("SELECT id, lease_token FROM delivery WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&delivery_ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?
                .into_iter()
                .collect();
        // References, not copies: a batch carries every attempt's response body.
        let kept: Vec<&AttemptRecord> = hookd_store::fenced(outcomes, &current);
        if kept.len() < outcomes.len() {
            tracing::debug!(
                dropped = outcomes.len() - kept.len(),
                "attempt records whose lease was taken over"
            );
        }
        let outcomes = kept;
        if outcomes.is_empty() {
            return tx.commit().await.map_err(map_err);
        }
        let events: Vec<OutboxEvent> = outcomes.iter().flat_map(|o| o.events.iter().cloned()).collect();
        insert_outbox(&mut tx, &events).await?;

        // An attempt whose delivery is gone (its endpoint or application was deleted while it
        // was in flight) is dropped by the join, as on SQLite.
        let attempts: Vec<std::borrow::Cow<'_, Attempt>> = outcomes
            .iter()
            .map(|o| hookd_store::storable_attempt(&o.attempt))
            .collect();
        let text = |f: fn(&Attempt) -> &String| attempts.iter().map(|a| f(a).clone()).collect::<Vec<String>>();
        let int = |f: fn(&Attempt) -> i64| attempts.iter().map(|a| f(a)).collect::<Vec<i64>>();
        let small = |f: fn(&Attempt) -> i64| attempts.iter().map(|a| f(a) as i16).collect::<Vec<i16>>();
        let delivery_ids: Vec<String> = outcomes.iter().map(|o| o.delivery_id.clone()).collect();
        let mut request_headers = Vec::with_capacity(attempts.len());
        let mut response_headers = Vec::with_capacity(attempts.len());
        for a in &attempts {
            request_headers.push(json_text(&a.request_headers)?);
            response_headers.push(json_text(&a.response_headers)?);
        }
        sqlx::query(&format!(
            "INSERT INTO attempt (delivery_id, app_id, {ATTEMPT_COLS}) \
             SELECT u.delivery_id, d.app_id, u.id, u.msg_id, u.endpoint_id, u.url, u.response, u.code, u.duration, \
             u.status, u.trigger_type, u.number, u.created_at, u.request_headers::jsonb, u.response_headers::jsonb \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], \
             $8::bigint[], $9::smallint[], $10::smallint[], $11::bigint[], $12::bigint[], $13::text[], $14::text[]) \
             AS u(delivery_id, id, msg_id, endpoint_id, url, response, code, duration, status, trigger_type, number, \
             created_at, request_headers, response_headers) \
             JOIN delivery d ON d.id = u.delivery_id"
        ))
        .bind(delivery_ids)
        .bind(text(|a| &a.id))
        .bind(text(|a| &a.msg_id))
        .bind(text(|a| &a.endpoint_id))
        .bind(text(|a| &a.url))
        .bind(text(|a| &a.response))
        .bind(int(|a| a.response_status_code))
        .bind(int(|a| a.response_duration_ms))
        .bind(small(|a| a.status.code()))
        .bind(small(|a| a.trigger_type.code()))
        .bind(int(|a| a.attempt_number))
        .bind(int(|a| micros(a.created_at)))
        .bind(request_headers)
        .bind(response_headers)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;

        // Deliveries: the last outcome of each decides its state; every outcome counts as an
        // attempt. Sorted by id so concurrent batches lock shared rows in the same order.
        let mut updates: BTreeMap<&str, DeliveryUpdate> = BTreeMap::new();
        for &o in &outcomes {
            let entry = updates
                .entry(&o.delivery_id)
                .or_insert(DeliveryUpdate { last: o, attempts: 0 });
            entry.last = o;
            entry.attempts += 1;
        }
        let ids: Vec<String> = updates.keys().map(|id| id.to_string()).collect();
        let last = |f: fn(&AttemptRecord) -> i64| updates.values().map(|u| f(u.last)).collect::<Vec<i64>>();
        let status: Vec<i16> = updates.values().map(|u| u.last.delivery_status.code() as i16).collect();
        let next: Vec<Option<i64>> = updates.values().map(|u| u.last.next_attempt_at.map(micros)).collect();
        let park: Vec<bool> = updates.values().map(|u| u.last.park).collect();
        let counts: Vec<i64> = updates.values().map(|u| u.attempts).collect();
        // A resend requested while an attempt was in flight (`next_trigger` 2, see
        // `schedule_manual`) is not swallowed: a delivery still on its schedule has its next
        // attempt brought forward to the resend's time; a finished one gets one manual attempt.
        sqlx::query(
            "UPDATE delivery d SET status = u.status, scheduled_attempts = u.scheduled, \
             total_attempts = d.total_attempts + u.attempts, \
             next_attempt_at = CASE WHEN d.next_trigger = 2 AND u.next IS NOT NULL AND NOT u.park \
               THEN LEAST(d.next_attempt_at, u.next) \
               WHEN d.next_trigger = 2 THEN d.next_attempt_at WHEN u.park THEN NULL ELSE u.next END, \
             next_trigger = CASE WHEN d.next_trigger = 2 AND (u.next IS NULL OR u.park) THEN 1 ELSE 0 END, \
             lease_until = 0, \
             updated_at = u.at, parked = u.park AND d.next_trigger <> 2 \
             FROM UNNEST($1::text[], $2::smallint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], \
             $7::boolean[]) AS u(id, status, scheduled, next, attempts, at, park) \
             WHERE d.id = u.id",
        )
        .bind(ids)
        .bind(status)
        .bind(last(|o| o.scheduled_attempts))
        .bind(next)
        .bind(counts)
        .bind(last(|o| micros(o.attempt.created_at)))
        .bind(park)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;

        // Endpoint health for auto-disable: any success ends a failing run; a scheduled attempt
        // that exhausts its delivery starts one if none is running.
        let mut health: BTreeMap<&str, Health> = BTreeMap::new();
        for &o in &outcomes {
            let a = &o.attempt;
            let at = micros(a.created_at);
            if a.status == MessageStatus::Success {
                health.insert(&a.endpoint_id, Health::Clear);
            } else if o.delivery_status == MessageStatus::Fail && a.trigger_type == TriggerType::Scheduled {
                let next = match health.get(a.endpoint_id.as_str()) {
                    None => Health::SetIfUnset(at),
                    Some(Health::Clear) => Health::Set(at),
                    Some(&kept) => kept,
                };
                health.insert(&a.endpoint_id, next);
            }
        }
        if !health.is_empty() {
            let ids: Vec<String> = health.keys().map(|id| id.to_string()).collect();
            let (modes, ats): (Vec<i16>, Vec<Option<i64>>) = health.values().map(|h| h.mode()).unzip();
            // Rows whose value would not change are left unwritten (and unlocked): the common
            // batch, all successes to healthy endpoints, writes nothing here.
            let value = "CASE u.mode WHEN 0 THEN NULL WHEN 1 THEN COALESCE(e.failing_since, u.at) ELSE u.at END";
            sqlx::query(&format!(
                "UPDATE endpoint e SET failing_since = {value} \
                 FROM UNNEST($1::text[], $2::smallint[], $3::bigint[]) AS u(id, mode, at) \
                 WHERE e.id = u.id AND e.failing_since IS DISTINCT FROM {value}"
            ))
            .bind(ids)
            .bind(modes)
            .bind(ats)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn renew_leases(&self, leases: &[(String, i64)], lease_until: DateTime<Utc>) -> StoreResult<u64> {
        hookd_store::gate::begin_write()?;
        if leases.is_empty() {
            return Ok(0);
        }
        let (ids, tokens): (Vec<String>, Vec<i64>) = leases.iter().cloned().unzip();
        let done = sqlx::query(
            "UPDATE delivery d SET lease_until = $3, \
             next_attempt_at = CASE WHEN d.next_trigger = 2 THEN d.next_attempt_at ELSE $3 END \
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, token) \
             WHERE d.id = u.id AND d.lease_token = u.token AND d.lease_until > 0",
        )
        .bind(ids)
        .bind(tokens)
        .bind(micros(lease_until))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn release_leases(&self, leases: &[(String, i64)], now: DateTime<Utc>) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        if leases.is_empty() {
            return Ok(());
        }
        let (ids, tokens): (Vec<String>, Vec<i64>) = leases.iter().cloned().unzip();
        sqlx::query(
            "UPDATE delivery d SET lease_until = 0, next_attempt_at = LEAST(d.next_attempt_at, $2) \
             FROM UNNEST($1::text[], $3::bigint[]) AS u(id, token) \
             WHERE d.id = u.id AND (u.token = 0 OR d.lease_token = u.token)",
        )
        .bind(ids)
        .bind(micros(now))
        .bind(tokens)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        // They are due now for any node.
        notify_work(&self.pool).await
    }

    async fn park_delivery(&self, delivery_id: &str, lease_token: i64) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        sqlx::query(
            "UPDATE delivery SET parked = TRUE, next_attempt_at = NULL, lease_until = 0 \
             WHERE id = $1 AND ($2 = 0 OR lease_token = $2)",
        )
        .bind(delivery_id)
        .bind(lease_token)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn unpark_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        hookd_store::gate::begin_write()?;
        let done =
            sqlx::query("UPDATE delivery SET parked = FALSE, next_attempt_at = $2 WHERE endpoint_id = $1 AND parked")
                .bind(endpoint_id)
                .bind(micros(now))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        if done.rows_affected() > 0 {
            notify_work(&self.pool).await?;
        }
        Ok(done.rows_affected())
    }

    async fn hasten_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        hookd_store::gate::begin_write()?;
        let done = sqlx::query(
            "UPDATE delivery SET next_attempt_at = $2 WHERE endpoint_id = $1 AND next_attempt_at > $2 \
                 AND lease_until <= $2",
        )
        .bind(endpoint_id)
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() > 0 {
            notify_work(&self.pool).await?;
        }
        Ok(done.rows_affected())
    }

    async fn defer_delivery(&self, delivery_id: &str, lease_token: i64, until: DateTime<Utc>) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        sqlx::query(
            "UPDATE delivery SET next_attempt_at = $2, lease_until = 0 WHERE id = $1 AND ($3 = 0 OR lease_token = $3)",
        )
        .bind(delivery_id)
        .bind(micros(until))
        .bind(lease_token)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn create_token(&self, t: &TokenRecord) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
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
        .execute(&self.pool)
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
        hookd_store::gate::begin_write()?;
        let done = sqlx::query("DELETE FROM token WHERE expires_at IS NOT NULL AND expires_at < $1")
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM token ORDER BY id");
        self.fetch(sqlx::QueryBuilder::new(sql), rows::token).await
    }

    async fn delete_token(&self, id: &str) -> StoreResult<bool> {
        hookd_store::gate::begin_write()?;
        let done = sqlx::query("DELETE FROM token WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn expire_app_tokens(&self, app_id: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        hookd_store::gate::begin_write()?;
        let done = sqlx::query(
            "UPDATE token SET expires_at = $2 WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(app_id)
        .bind(micros(at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl CatalogStore for PostgresStore {
    async fn create_application(&self, a: &Application) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
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
        .execute(&self.pool)
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
        hookd_store::gate::begin_write()?;
        let done = sqlx::query(
            "UPDATE application SET uid = $2, name = $3, metadata = $4, throttle_rate = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(&a.id)
        .bind(&a.uid)
        .bind(&a.name)
        .bind(Json(&a.metadata))
        .bind(a.throttle_rate.map(i32::from))
        .bind(micros(a.updated_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn delete_application(&self, env: Environment, id: &str) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM application WHERE env = $1 AND id = $2")
            .bind(env.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        expect_one(done.rows_affected())?;
        for table in ["attempt", "delivery", "message", "endpoint", "token", "task"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE app_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_applications(&self, env: Environment, page: &PageRequest) -> StoreResult<Page<Application>> {
        let mut q = Query::new(format!("SELECT {APP_COLS} FROM application WHERE env = "));
        q.push_bind(env.as_str());
        page_by(&mut q, "id", page);
        Ok(page.finish(self.fetch(q, rows::application).await?))
    }

    async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        let sealed = seal_endpoint(self.secrets.as_deref(), e);
        let e = sealed.as_ref();
        sqlx::query(&format!(
            "INSERT INTO endpoint ({ENDPOINT_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
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
        .execute(&self.pool)
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
        hookd_store::gate::begin_write()?;
        let sealed = seal_endpoint(self.secrets.as_deref(), e);
        let e = sealed.as_ref();
        let done = sqlx::query(
            "UPDATE endpoint SET uid = $3, url = $4, description = $5, disabled = $6, event_types = $7, channels = $8, \
             throttle_rate = $9, metadata = $10, secret = $11, headers = $12, updated_at = $13, old_secrets = $14, \
             failing_since = $15 WHERE app_id = $1 AND id = $2",
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
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn delete_endpoint(&self, app_id: &str, id: &str) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
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
        tx.commit().await.map_err(map_err)
    }

    async fn list_endpoints(&self, app_id: &str, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
        let mut q = Query::new(format!("SELECT {ENDPOINT_COLS} FROM endpoint WHERE app_id = "));
        q.push_bind(app_id.to_string());
        page_by(&mut q, "id", page);
        let found = page.finish(self.fetch(q, rows::endpoint).await?);
        let items = found
            .items
            .into_iter()
            .map(|e| open_endpoint(self.secrets.as_deref(), e))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page {
            items,
            has_more: found.has_more,
        })
    }

    async fn all_endpoints_sealed(&self, app_id: &str) -> StoreResult<Vec<Endpoint>> {
        let mut q = Query::new(format!("SELECT {ENDPOINT_COLS} FROM endpoint WHERE app_id = "));
        q.push_bind(app_id.to_string()).push(" ORDER BY id");
        self.fetch(q, rows::endpoint).await
    }

    fn open_endpoint_secrets(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        open_endpoint(self.secrets.as_deref(), endpoint)
    }

    async fn upsert_event_type(&self, et: &EventType) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
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
        .execute(&self.pool)
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
        hookd_store::gate::begin_write()?;
        let done = sqlx::query("DELETE FROM event_type WHERE env = $1 AND name = $2")
            .bind(env.as_str())
            .bind(name)
            .execute(&self.pool)
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
        let mut q = Query::new(format!("SELECT {EVENT_TYPE_COLS} FROM event_type WHERE env = "));
        q.push_bind(env.as_str());
        if !include_archived {
            q.push(" AND NOT archived");
        }
        page_by(&mut q, "name", page);
        Ok(page.finish(self.fetch(q, rows::event_type).await?))
    }
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn create_message(&self, m: &Message, deliveries: &[NewDelivery]) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(&format!(
            "INSERT INTO message ({MESSAGE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&m.id)
        .bind(&m.app_id)
        .bind(&m.event_id)
        .bind(&m.event_type)
        .bind(m.channels.as_ref().map(Json))
        .bind(&m.payload)
        .bind(micros(m.created_at))
        .bind(micros(m.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if !deliveries.is_empty() {
            // The whole fan-out in one statement: one round trip however many endpoints.
            let col = |f: fn(&NewDelivery) -> &String| deliveries.iter().map(f).cloned().collect::<Vec<String>>();
            // Created leased: due again when that lease ends, like a claimed delivery.
            let due: Vec<i64> = deliveries
                .iter()
                .map(|d| micros(d.leased_until.unwrap_or(d.due_at)))
                .collect();
            let lease: Vec<i64> = deliveries
                .iter()
                .map(|d| d.leased_until.map(micros).unwrap_or(0))
                .collect();
            let tokens: Vec<i64> = deliveries.iter().map(|d| d.lease_token).collect();
            sqlx::query(
                "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, lease_until, \
                 lease_token, created_at, updated_at) \
                 SELECT id, msg_id, endpoint_id, app_id, $5, due, lease, token, $8, $8 \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $6::bigint[], $7::bigint[], $9::bigint[]) \
                 AS d(id, msg_id, endpoint_id, app_id, due, lease, token)",
            )
            .bind(col(|d| &d.id))
            .bind(col(|d| &d.msg_id))
            .bind(col(|d| &d.endpoint_id))
            .bind(col(|d| &d.app_id))
            .bind(MessageStatus::Pending.code() as i16)
            .bind(due)
            .bind(lease)
            .bind(micros(m.created_at))
            .bind(tokens)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            // Deliveries this node did not take itself are due now for any node: wake them.
            if deliveries.iter().any(|d| d.leased_until.is_none()) {
                notify_work(&mut *tx).await?;
            }
        }
        tx.commit().await.map_err(map_err)
    }

    async fn get_message(&self, app_id: &str, key: &str) -> StoreResult<Option<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM message WHERE app_id = $1 AND (id = $2 OR event_id = $2) \
             ORDER BY id = $2 DESC LIMIT 1"
        );
        self.fetch_optional(sqlx::query(&sql).bind(app_id).bind(key), rows::message)
            .await
    }

    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        let mut q = Query::new(format!("SELECT {MESSAGE_COLS} FROM message m WHERE m.app_id = "));
        q.push_bind(app_id.to_string());
        message_filters(&mut q, "m", filter);
        page_by(&mut q, "m.id", page);
        Ok(page.finish(self.fetch(q, rows::message).await?))
    }

    async fn schedule_manual(&self, d: &NewDelivery, now: DateTime<Utc>) -> StoreResult<String> {
        hookd_store::gate::begin_write()?;
        // A delivery still on its schedule is simply made due now; a finished one gets one
        // manual attempt, after which it stays finished with that attempt's outcome.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let id: String = sqlx::query_scalar(
            "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, next_trigger, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 1, $5, 1, $5, $5) \
             ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET next_attempt_at = EXCLUDED.next_attempt_at, \
             parked = FALSE, \
             next_trigger = CASE WHEN delivery.lease_until > EXCLUDED.updated_at THEN 2 \
               WHEN delivery.status IN (1, 3) THEN delivery.next_trigger ELSE 1 END, \
             updated_at = EXCLUDED.updated_at \
             RETURNING id",
        )
        .bind(&d.id)
        .bind(&d.msg_id)
        .bind(&d.endpoint_id)
        .bind(&d.app_id)
        .bind(micros(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        notify_work(&mut *tx).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn get_delivery(&self, msg_id: &str, endpoint_id: &str) -> StoreResult<Option<DeliveryState>> {
        let sql = format!("SELECT {DELIVERY_COLS} FROM delivery WHERE msg_id = $1 AND endpoint_id = $2");
        self.fetch_optional(sqlx::query(&sql).bind(msg_id).bind(endpoint_id), rows::delivery)
            .await
    }

    async fn list_message_deliveries(&self, msg_id: &str, page: &PageRequest) -> StoreResult<Page<DeliveryState>> {
        let mut q = Query::new(format!("SELECT {DELIVERY_COLS} FROM delivery WHERE msg_id = "));
        q.push_bind(msg_id.to_string());
        page_by(&mut q, "endpoint_id", page);
        Ok(page.finish(self.fetch(q, rows::delivery).await?))
    }

    async fn list_endpoint_deliveries(
        &self,
        endpoint_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<(DeliveryState, Message)>> {
        let mut q = Query::new(format!(
            "SELECT {}, {} FROM delivery d JOIN message m ON m.id = d.msg_id WHERE d.endpoint_id = ",
            qualified("d", DELIVERY_COLS),
            qualified("m", MESSAGE_COLS)
        ));
        q.push_bind(endpoint_id.to_string());
        message_filters(&mut q, "m", filter);
        if let Some(status) = filter.status {
            q.push(" AND d.status = ").push_bind(status.code() as i16);
        }
        page_by(&mut q, "d.msg_id", page);
        let rows = self
            .fetch(q, |r| Ok((rows::delivery(r)?, rows::message_at(r, 7)?)))
            .await?;
        Ok(page.finish(rows))
    }

    async fn list_attempts(&self, filter: &AttemptFilter, page: &PageRequest) -> StoreResult<Page<Attempt>> {
        let needs_message = filter.event_types.is_some() || filter.channel.is_some();
        let join = if needs_message {
            " JOIN message m ON m.id = a.msg_id"
        } else {
            ""
        };
        let mut q = Query::new(format!(
            "SELECT {} FROM attempt a{join} WHERE a.app_id = ",
            qualified("a", ATTEMPT_COLS)
        ));
        q.push_bind(filter.app_id.clone());
        if let Some(msg_id) = &filter.msg_id {
            q.push(" AND a.msg_id = ").push_bind(msg_id.clone());
        }
        if let Some(endpoint_id) = &filter.endpoint_id {
            q.push(" AND a.endpoint_id = ").push_bind(endpoint_id.clone());
        }
        if let Some(status) = filter.status {
            q.push(" AND a.status = ").push_bind(status.code() as i16);
        }
        if let Some(class) = filter.status_code_class {
            let (lo, hi) = class_bounds(class);
            q.push(" AND a.response_status_code BETWEEN ")
                .push_bind(lo)
                .push(" AND ")
                .push_bind(hi);
        }
        if let Some(before) = filter.before {
            q.push(" AND a.created_at < ").push_bind(micros(before));
        }
        if let Some(after) = filter.after {
            q.push(" AND a.created_at > ").push_bind(micros(after));
        }
        if needs_message {
            let mf = MessageFilter {
                event_types: filter.event_types.clone(),
                channel: filter.channel.clone(),
                ..MessageFilter::default()
            };
            message_filters(&mut q, "m", &mf);
        }
        page_by(&mut q, "a.id", page);
        Ok(page.finish(self.fetch(q, rows::attempt).await?))
    }

    async fn get_attempt(&self, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>> {
        let sql = format!("SELECT {ATTEMPT_COLS} FROM attempt WHERE id = $1 AND msg_id = $2");
        self.fetch_optional(sqlx::query(&sql).bind(attempt_id).bind(msg_id), rows::attempt)
            .await
    }
}

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn expunge_message_content(&self, app_id: &str, msg_id: &str) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        let done = sqlx::query("UPDATE message SET payload = NULL WHERE app_id = $1 AND id = $2")
            .bind(app_id)
            .bind(msg_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn expunge_app_contents(&self, app_id: &str) -> StoreResult<u64> {
        hookd_store::gate::begin_write()?;
        let done = sqlx::query("UPDATE message SET payload = NULL WHERE app_id = $1 AND payload IS NOT NULL")
            .bind(app_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn prune_messages(&self, below: &str, limit: usize) -> StoreResult<u64> {
        hookd_store::gate::begin_write()?;
        // One statement: the chosen messages are locked (others' choices skipped), then their
        // attempts, deliveries and the messages themselves go in one transaction.
        let row = sqlx::query(
            "WITH chosen AS ( \
               SELECT m.id FROM message m WHERE m.id < $1 AND NOT EXISTS ( \
                 SELECT 1 FROM delivery d WHERE d.msg_id = m.id \
                 AND (d.next_attempt_at IS NOT NULL OR d.parked)) \
               ORDER BY m.id LIMIT $2 FOR UPDATE SKIP LOCKED), \
             a AS (DELETE FROM attempt WHERE msg_id IN (SELECT id FROM chosen)), \
             d AS (DELETE FROM delivery WHERE msg_id IN (SELECT id FROM chosen)), \
             m AS (DELETE FROM message WHERE id IN (SELECT id FROM chosen) RETURNING 1) \
             SELECT COUNT(*) FROM m",
        )
        .bind(below)
        .bind(limit as i64)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(sqlx::Row::try_get::<i64, _>(&row, 0).map_err(map_err)? as u64)
    }

    async fn expunge_attempt_content(&self, msg_id: &str, attempt_id: &str) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        let done = sqlx::query("UPDATE attempt SET response = 'EXPUNGED' WHERE msg_id = $1 AND id = $2")
            .bind(msg_id)
            .bind(attempt_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        expect_one(done.rows_affected())
    }

    async fn expire_payloads(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        hookd_store::gate::begin_write()?;
        // SKIP LOCKED: nodes running the expiry at once split the work instead of waiting.
        let done = sqlx::query(
            // A message with a delivery still waiting for an attempt (due, scheduled or parked)
            // keeps its payload until that delivery is finished.
            "UPDATE message SET payload = NULL WHERE id IN \
             (SELECT id FROM message WHERE expires_at <= $1 AND payload IS NOT NULL \
              AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = message.id \
                              AND (d.next_attempt_at IS NOT NULL OR d.parked)) \
              LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(micros(now))
        .bind(limit as i64)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn add_outbox(&self, events: &[OutboxEvent]) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_outbox(&mut tx, events).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn outbox_events(&self, limit: usize) -> StoreResult<Vec<OutboxEvent>> {
        let rows =
            sqlx::query("SELECT id, kind, app_id, data::text, created_at FROM outbox ORDER BY created_at, id LIMIT $1")
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                use sqlx::Row as _;
                let data: String = r.try_get(3).map_err(map_err)?;
                Ok(OutboxEvent {
                    id: r.try_get(0).map_err(map_err)?,
                    kind: r.try_get(1).map_err(map_err)?,
                    app_id: r.try_get(2).map_err(map_err)?,
                    data: serde_json::from_str(&data).map_err(hookd_store::StoreError::internal)?,
                    created_at: rows::from_micros(r.try_get(4).map_err(map_err)?),
                })
            })
            .collect()
    }

    async fn remove_outbox(&self, ids: &[String]) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl StatsStore for PostgresStore {
    async fn queue_stats(&self, now: DateTime<Utc>, cap: usize) -> StoreResult<QueueStats> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        // The first `cap` entries of the due index: due deliveries come first (a claimed one is
        // due only at its lease's end), so the due count and the oldest due time are exact
        // below the cap.
        let row = sqlx::query(
            "SELECT \
               COUNT(*) FILTER (WHERE next_attempt_at <= $1 AND lease_until <= $1), \
               COUNT(*) FILTER (WHERE lease_until > $1), \
               COUNT(*) FILTER (WHERE next_attempt_at > $1 AND lease_until <= $1), \
               MIN(next_attempt_at) FILTER (WHERE next_attempt_at <= $1 AND lease_until <= $1), \
               (SELECT COUNT(*) FROM (SELECT 1 FROM delivery WHERE parked LIMIT $2) p), \
               (SELECT COUNT(*) FROM endpoint WHERE disabled), \
               COUNT(*) \
             FROM (SELECT next_attempt_at, lease_until FROM delivery \
                   WHERE next_attempt_at IS NOT NULL ORDER BY next_attempt_at LIMIT $2) w",
        )
        .bind(micros(now))
        .bind(cap)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let count =
            |i: usize| -> StoreResult<u64> { Ok(sqlx::Row::try_get::<i64, _>(&row, i).map_err(map_err)? as u64) };
        Ok(QueueStats {
            due: count(0)?,
            claimed: count(1)?,
            scheduled: count(2)?,
            oldest_due_at: sqlx::Row::try_get::<Option<i64>, _>(&row, 3)
                .map_err(map_err)?
                .map(crate::rows::from_micros),
            parked: count(4)?,
            disabled_endpoints: count(5)?,
            capped: count(6)? >= cap as u64 || count(4)? >= cap as u64,
        })
    }

    async fn delivery_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        let sql = "SELECT status, COUNT(*) FROM delivery \
                   WHERE endpoint_id = $1 AND created_at >= $2 AND created_at <= $3 GROUP BY status";
        self.counts(sql, endpoint_id, since, until).await
    }

    async fn attempt_counts(
        &self,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<StatusCounts> {
        let sql = "SELECT status, COUNT(*) FROM attempt \
                   WHERE endpoint_id = $1 AND created_at >= $2 AND created_at <= $3 GROUP BY status";
        self.counts(sql, endpoint_id, since, until).await
    }

    async fn replay_candidates(
        &self,
        query: &ReplayQuery,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let mcols = qualified("m", MESSAGE_COLS);
        let mut q = match &query.kind {
            ReplayKind::Missing => {
                let mut q = Query::new(format!("SELECT {mcols} FROM message m WHERE m.app_id = "));
                q.push_bind(query.app_id.clone())
                    .push(" AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.endpoint_id = ")
                    .push_bind(query.endpoint_id.clone())
                    .push(")");
                q
            }
            ReplayKind::Deliveries {
                statuses,
                event_types,
                channel,
                status_code_class,
            } => {
                let mut q = Query::new(format!(
                    "SELECT {mcols} FROM delivery d JOIN message m ON m.id = d.msg_id WHERE d.endpoint_id = "
                ));
                q.push_bind(query.endpoint_id.clone());
                let codes: Vec<i16> = statuses.iter().map(|s| s.code() as i16).collect();
                q.push(" AND d.status = ANY(").push_bind(codes).push(")");
                let filter = MessageFilter {
                    event_types: event_types.clone(),
                    channel: channel.clone(),
                    ..MessageFilter::default()
                };
                message_filters(&mut q, "m", &filter);
                if let Some(class) = status_code_class {
                    // The class of the delivery's latest response.
                    let (lo, hi) = class_bounds(*class);
                    q.push(
                        " AND (SELECT a.response_status_code FROM attempt a \
                         WHERE a.msg_id = d.msg_id AND a.endpoint_id = d.endpoint_id \
                         ORDER BY a.id DESC LIMIT 1) BETWEEN ",
                    )
                    .push_bind(lo)
                    .push(" AND ")
                    .push_bind(hi);
                }
                q
            }
        };
        q.push(" AND m.created_at >= ")
            .push_bind(micros(query.since))
            .push(" AND m.created_at <= ")
            .push_bind(micros(query.until));
        if let Some(after) = after {
            q.push(" AND m.id > ").push_bind(after.to_string());
        }
        q.push(" ORDER BY m.id ASC LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        self.fetch(q, rows::message).await
    }
}

#[async_trait]
impl TaskStore for PostgresStore {
    async fn create_task(&self, t: &TaskRecord) -> StoreResult<()> {
        hookd_store::gate::begin_write()?;
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
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn fail_stale_tasks(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<u64> {
        hookd_store::gate::begin_write()?;
        let done = sqlx::query(
            "UPDATE task SET status = 'failed', updated_at = $2, \
             data = jsonb_set(data, '{error}', '\"its node stopped before it finished; start it again\"') \
             WHERE status = 'running' AND updated_at < $1",
        )
        .bind(micros(before))
        .bind(micros(now))
        .execute(&self.pool)
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
        hookd_store::gate::begin_write()?;
        let done = sqlx::query("UPDATE task SET status = $2, data = $3, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(status.as_str())
            .bind(Json(data))
            .bind(micros(now))
            .execute(&self.pool)
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
        let mut q = Query::new(format!(
            "SELECT {} FROM task t JOIN application a ON a.id = t.app_id WHERE a.env = ",
            qualified("t", TASK_COLS)
        ));
        q.push_bind(env.as_str());
        if let Some(status) = filter.status {
            q.push(" AND t.status = ").push_bind(status.as_str());
        }
        if let Some(kind) = &filter.kind {
            q.push(" AND t.kind = ").push_bind(kind.clone());
        }
        page_by(&mut q, "t.id", page);
        Ok(page.finish(self.fetch(q, rows::task).await?))
    }
}

#[async_trait]
impl IdempotencyStore for PostgresStore {
    async fn delete_expired_idempotency(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        hookd_store::gate::begin_write()?;
        let done = sqlx::query(
            "DELETE FROM idempotency WHERE key IN \
             (SELECT key FROM idempotency WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(micros(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn idempotency_begin(
        &self,
        key: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
        // Bookkeeping of the request, not its effect: never opens or needs the gate.
        // Nodes race for a key here, so the claim is one statement: the insert wins for a new
        // key, and for an existing one the update happens only if the key may be taken over
        // (its entry expired, or it is an in-progress claim gone stale). Either way the row is
        // locked until this transaction ends, so when the claim fails, the read below sees
        // exactly what beat us.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let claimed = sqlx::query(
            "INSERT INTO idempotency (key, status, body, created_at, expires_at) VALUES ($1, 0, NULL, $2, $4) \
             ON CONFLICT (key) DO UPDATE SET status = 0, body = NULL, created_at = EXCLUDED.created_at, \
             expires_at = EXCLUDED.expires_at \
             WHERE idempotency.expires_at <= $2 OR (idempotency.status = 0 AND idempotency.created_at < $3) \
             RETURNING key",
        )
        .bind(key)
        .bind(micros(now))
        .bind(micros(stale_before))
        .bind(micros(expires_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let state = if claimed.is_some() {
            IdempotencyState::Started
        } else {
            let (status, body): (i32, Option<Vec<u8>>) =
                sqlx::query_as("SELECT status, body FROM idempotency WHERE key = $1")
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
            match u16::try_from(status) {
                Ok(0) | Err(_) => IdempotencyState::InProgress,
                Ok(status) => IdempotencyState::Completed {
                    status,
                    body: body.unwrap_or_default(),
                },
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(state)
    }

    async fn idempotency_complete(
        &self,
        key: &str,
        claimed_at: DateTime<Utc>,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()> {
        // Bookkeeping of the request, not its effect: never opens or needs the gate.
        sqlx::query("UPDATE idempotency SET status = $2, body = $3 WHERE key = $1 AND status = 0 AND created_at = $4")
            .bind(key)
            .bind(i32::from(status))
            .bind(body)
            .bind(micros(claimed_at))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn idempotency_release(&self, key: &str, claimed_at: DateTime<Utc>) -> StoreResult<()> {
        // Bookkeeping of the request, not its effect: never opens or needs the gate.
        sqlx::query("DELETE FROM idempotency WHERE key = $1 AND status = 0 AND created_at = $2")
            .bind(key)
            .bind(micros(claimed_at))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
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
