//! The delivery queue: claims, leases, attempt records.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;

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
            let mut listener = sqlx::postgres::PgListener::connect_with(self.pool.read())
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
            .fetch_one(self.pool.read())
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
        sqlx::query("SELECT 1")
            .execute(self.pool.read())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn claim_due_within(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        bounds: &ClaimBounds,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
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
        .fetch_all(self.pool.write()?)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| rows::claimed(r, token).map_err(map_err)).collect()
    }

    async fn record_attempts(&self, outcomes: &[AttemptRecord]) -> StoreResult<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        // The shared plan (`hookd_store::batch`), written as one statement whatever the batch
        // size ([`RECORD_PLAN`]). First optimistically, with no transaction around it: assuming
        // every record is kept, the statement locks the deliveries, checks that assumption
        // against their lease tokens and writes the plan only if it holds, in one round trip.
        if let Some(leases) = unanimous_leases(outcomes) {
            let plan = RecordPlan::new(outcomes, |id| leases.get(id).copied());
            if write_plan(self.pool.write()?, &plan, &leases).await? {
                return Ok(());
            }
        }

        // A lease was taken over or a delivery is gone (the statement wrote nothing): fence in a
        // transaction. Lock the deliveries (in id order, as every writer does) and keep only
        // records made under their current lease, or unfenced ones. A claim skips locked rows,
        // so the tokens cannot change before the commit.
        let mut tx = self.pool.write()?.begin().await.map_err(map_err)?;
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
        let plan = RecordPlan::new(outcomes, |id| current.get(id).copied());
        if plan.dropped > 0 {
            tracing::debug!(dropped = plan.dropped, "attempt records whose lease was taken over");
        }
        if plan.is_empty() {
            return tx.commit().await.map_err(map_err);
        }
        // The kept deliveries' tokens as just read: the statement's check holds under the locks.
        let held: BTreeMap<&str, i64> = plan
            .deliveries
            .keys()
            .map(|&id| (id, current.get(id).copied().unwrap_or_default()))
            .collect();
        if !write_plan(&mut *tx, &plan, &held).await? {
            return Err(hookd_store::StoreError::message(
                "a delivery's lease changed while it was locked",
            ));
        }
        tx.commit().await.map_err(map_err)
    }

    async fn renew_leases(&self, leases: &[(String, i64)], lease_until: DateTime<Utc>) -> StoreResult<u64> {
        if leases.is_empty() {
            return Ok(0);
        }
        let (ids, tokens): (Vec<String>, Vec<i64>) = leases.iter().cloned().unzip();
        let mut tx = self.pool.write()?.begin().await.map_err(map_err)?;
        lock_in_id_order(&mut tx, &ids).await?;
        let done = sqlx::query(
            "UPDATE delivery d SET lease_until = $3, \
             next_attempt_at = CASE WHEN d.next_trigger = 2 THEN d.next_attempt_at ELSE $3 END \
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, token) \
             WHERE d.id = u.id AND d.lease_token = u.token AND d.lease_until > 0",
        )
        .bind(ids)
        .bind(tokens)
        .bind(micros(lease_until))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn release_leases(&self, leases: &[(String, i64)], now: DateTime<Utc>) -> StoreResult<()> {
        if leases.is_empty() {
            return Ok(());
        }
        let (ids, tokens): (Vec<String>, Vec<i64>) = leases.iter().cloned().unzip();
        let mut tx = self.pool.write()?.begin().await.map_err(map_err)?;
        lock_in_id_order(&mut tx, &ids).await?;
        sqlx::query(
            "UPDATE delivery d SET lease_until = 0, next_attempt_at = LEAST(d.next_attempt_at, $2) \
             FROM UNNEST($1::text[], $3::bigint[]) AS u(id, token) \
             WHERE d.id = u.id AND (u.token = 0 OR d.lease_token = u.token)",
        )
        .bind(ids)
        .bind(micros(now))
        .bind(tokens)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // They are due now for any node (the wake-up is sent when this commits).
        notify_work(&mut *tx).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn park_delivery(&self, delivery_id: &str, lease_token: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE delivery SET parked = TRUE, next_attempt_at = NULL, lease_until = 0 \
             WHERE id = $1 AND ($2 = 0 OR lease_token = $2)",
        )
        .bind(delivery_id)
        .bind(lease_token)
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn unpark_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        let done =
            sqlx::query("UPDATE delivery SET parked = FALSE, next_attempt_at = $2 WHERE endpoint_id = $1 AND parked")
                .bind(endpoint_id)
                .bind(micros(now))
                .execute(self.pool.write()?)
                .await
                .map_err(map_err)?;
        if done.rows_affected() > 0 {
            notify_work(self.pool.write()?).await?;
        }
        Ok(done.rows_affected())
    }

    async fn hasten_endpoint(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE delivery SET next_attempt_at = $2 WHERE endpoint_id = $1 AND next_attempt_at > $2 \
                 AND lease_until <= $2",
        )
        .bind(endpoint_id)
        .bind(micros(now))
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        if done.rows_affected() > 0 {
            notify_work(self.pool.write()?).await?;
        }
        Ok(done.rows_affected())
    }

    async fn defer_delivery(&self, delivery_id: &str, lease_token: i64, until: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE delivery SET next_attempt_at = $2, lease_until = 0 WHERE id = $1 AND ($3 = 0 OR lease_token = $3)",
        )
        .bind(delivery_id)
        .bind(micros(until))
        .bind(lease_token)
        .execute(self.pool.write()?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn claimed_message(&self, d: &ClaimedDelivery) -> StoreResult<Option<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM message \
             WHERE id = (SELECT msg_id FROM delivery WHERE id = $1 AND total_attempts = $2)"
        );
        self.fetch_optional(sqlx::query(&sql).bind(&d.id).bind(d.total_attempts), rows::message)
            .await
    }

    /// One statement for the batch: the deliveries still at their claimed attempt count,
    /// grouped by message, so each message's row (its payload) comes over once.
    async fn claimed_messages(&self, claimed: &[ClaimedDelivery]) -> StoreResult<Vec<Option<Arc<Message>>>> {
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = claimed.iter().map(|d| d.id.as_str()).collect();
        let counts: Vec<i64> = claimed.iter().map(|d| d.total_attempts).collect();
        let sql = format!(
            "SELECT array_agg(u.ord - 1), {} FROM UNNEST($1::text[], $2::bigint[]) WITH ORDINALITY AS u(id, n, ord) \
             JOIN delivery d ON d.id = u.id AND d.total_attempts = u.n \
             JOIN message m ON m.id = d.msg_id GROUP BY m.id",
            qualified("m", MESSAGE_COLS)
        );
        let rows = sqlx::query(&sql)
            .bind(ids)
            .bind(counts)
            .fetch_all(self.pool.read())
            .await
            .map_err(map_err)?;
        let mut out = vec![None; claimed.len()];
        for row in &rows {
            let positions: Vec<i64> = row.try_get(0).map_err(map_err)?;
            let message = Arc::new(rows::message_at(row, 1).map_err(map_err)?);
            for i in positions {
                if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                    *slot = Some(message.clone());
                }
            }
        }
        Ok(out)
    }

    async fn disable_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
        failing_by: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<Endpoint>> {
        let sql = format!(
            "UPDATE endpoint SET disabled = true, updated_at = $3 \
             WHERE app_id = $1 AND id = $2 AND NOT disabled \
             AND ($4::bigint IS NULL OR failing_since <= $4) RETURNING {ENDPOINT_COLS}"
        );
        let query = sqlx::query(&sql)
            .bind(app_id)
            .bind(endpoint_id)
            .bind(micros(now))
            .bind(failing_by.map(micros));
        let row = query.fetch_optional(self.pool.write()?).await.map_err(map_err)?;
        row.as_ref()
            .map(rows::endpoint)
            .transpose()
            .map_err(map_err)?
            .map(|e| open_endpoint(self.secrets.as_deref(), e))
            .transpose()
    }
}

/// The lease each delivery of `outcomes` must still hold for every record to be kept: the one
/// token its fenced records were made under (0 when all of them are unfenced). `None` when
/// one delivery's records carry two different tokens, so that some must be dropped.
fn unanimous_leases(outcomes: &[AttemptRecord]) -> Option<BTreeMap<&str, i64>> {
    let mut leases = BTreeMap::new();
    for o in outcomes {
        let lease = leases.entry(o.delivery_id.as_str()).or_insert(0);
        match (*lease, o.lease_token) {
            (_, 0) => {}
            (0, token) => *lease = token,
            (held, token) if held == token => {}
            _ => return None,
        }
    }
    Some(leases)
}

/// Writes `plan` with [`RECORD_PLAN`] if every delivery of `leases` exists and still holds
/// its lease (0: any lease); returns whether it did. When it did not, nothing was written.
async fn write_plan<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    executor: E,
    plan: &RecordPlan<'_>,
    leases: &BTreeMap<&str, i64>,
) -> StoreResult<bool> {
    let attempts = &plan.attempts;
    let text = |f: fn(&Attempt) -> &String| attempts.iter().map(|(_, a)| f(a).clone()).collect::<Vec<String>>();
    let int = |f: fn(&Attempt) -> i64| attempts.iter().map(|(_, a)| f(a)).collect::<Vec<i64>>();
    let small = |f: fn(&Attempt) -> i64| attempts.iter().map(|(_, a)| f(a) as i16).collect::<Vec<i16>>();
    let mut request_headers = Vec::with_capacity(attempts.len());
    let mut response_headers = Vec::with_capacity(attempts.len());
    for (_, a) in attempts {
        request_headers.push(a.request_headers.as_json().to_owned());
        response_headers.push(json_text(&a.response_headers)?);
    }
    let updates = &plan.deliveries;
    let last = |f: fn(&AttemptRecord) -> i64| updates.values().map(|u| f(u.last)).collect::<Vec<i64>>();
    let (modes, ats): (Vec<i16>, Vec<Option<i64>>) = plan.health.values().map(|h| h.mode()).unzip();
    let query = bind_outbox(sqlx::query(RECORD_PLAN), &plan.events)?;
    let row = query
        .bind(leases.keys().map(|id| id.to_string()).collect::<Vec<String>>())
        .bind(leases.values().copied().collect::<Vec<i64>>())
        .bind(attempts.iter().map(|(id, _)| id.to_string()).collect::<Vec<String>>())
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
        .bind(updates.keys().map(|id| id.to_string()).collect::<Vec<String>>())
        .bind(
            updates
                .values()
                .map(|u| u.last.delivery_status.code() as i16)
                .collect::<Vec<i16>>(),
        )
        .bind(last(|o| o.scheduled_attempts))
        .bind(
            updates
                .values()
                .map(|u| u.last.next_attempt_at.map(micros))
                .collect::<Vec<Option<i64>>>(),
        )
        .bind(updates.values().map(|u| u.attempts).collect::<Vec<i64>>())
        .bind(last(|o| micros(o.attempt.created_at)))
        .bind(updates.values().map(|u| u.last.park).collect::<Vec<bool>>())
        .bind(plan.health.keys().map(|id| id.to_string()).collect::<Vec<String>>())
        .bind(modes)
        .bind(ats)
        .fetch_one(executor)
        .await
        .map_err(map_err)?;
    row.try_get(0).map_err(map_err)
}

/// A record plan, written by one statement: a call of `hookd_record_attempts` (migration 12),
/// which checks the deliveries' leases, then writes the outbox's events, the attempts, the
/// deliveries and the endpoints' health, and returns whether the check held (when it did not,
/// nothing was written). One round trip where a transaction with a statement per table took
/// six; it needs no transaction around it, since PostgreSQL commits a statement on its own,
/// all of it or none. The function keeps its plans for the connection's life, each read a
/// lookup by primary key (see the migration); planned at every call, as this connection plans
/// its statements, they cost a copy of every bound array (docs/performance.md).
///
/// The leases (`$6`, `$7`) come sorted by id, in the order the function locks and compares
/// them.
const RECORD_PLAN: &str = "SELECT hookd_record_attempts($1::text[], $2::text[], $3::text[], $4::text[]::jsonb[], \
     $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
     $13::text[], $14::bigint[], $15::bigint[], $16::smallint[], $17::smallint[], $18::bigint[], $19::bigint[], \
     $20::text[], $21::text[], $22::text[], $23::smallint[], $24::bigint[], $25::bigint[], $26::bigint[], \
     $27::bigint[], $28::boolean[], $29::text[], $30::smallint[], $31::bigint[])";

/// Locks the deliveries `ids` in id order inside `tx`. Every statement that changes several
/// deliveries takes their locks this way first (as `record_attempts` does), so two of them can
/// never wait on each other: an `UPDATE … FROM UNNEST` alone locks in whatever order its join
/// yields, which deadlocked against the attempt recorder under load (PostgreSQL then stalls
/// both for its `deadlock_timeout`, a second, and cancels one).
async fn lock_in_id_order(tx: &mut sqlx::Transaction<'_, Postgres>, ids: &[String]) -> StoreResult<()> {
    sqlx::query("SELECT id FROM delivery WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}
