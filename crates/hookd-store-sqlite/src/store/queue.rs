//! The delivery queue: claims, leases, attempt records.

use hookd_store::ids::{HashMap, HashMapExt};
use std::sync::Arc;

use hookd_store::ClaimedBatch;

use super::*;

/// A claim's walk of the due index for candidates: the longest overdue deliveries of endpoints
/// (`?3`, a JSON array) and applications (`?4`) that may take more, at most `?2` of them. The
/// index covers every column read, so the walk touches no table row.
pub(crate) const CLAIM_WALK: &str = "WITH skip(k) AS MATERIALIZED (SELECT value FROM json_each(?3)), \
          skip_app(k) AS MATERIALIZED (SELECT value FROM json_each(?4)) \
     SELECT endpoint_id, app_id, rowid FROM delivery INDEXED BY delivery_due \
     WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1 AND lease_until <= ?1 \
       AND endpoint_id NOT IN (SELECT k FROM skip) AND app_id NOT IN (SELECT k FROM skip_app) \
     ORDER BY next_attempt_at LIMIT ?2";

/// A record's lease check at the row its claim named (`?1`), which must still hold the
/// delivery (`?2`): one descent of the table, none of the id's index.
pub(crate) const LEASE_AT_ROW: &str = "SELECT lease_token, app_id FROM delivery WHERE rowid = ?1 AND id = ?2";

/// A claimed delivery's check before its message is read, at the row its claim named (`?3`):
/// still this delivery (`?1`), not attempted since (`?2`).
pub(crate) const CLAIMED_AT_ROW: &str =
    "SELECT msg_id FROM delivery WHERE rowid = ?3 AND id = ?1 AND total_attempts = ?2";

/// A delivery's read at the row its claim named (`at_row`), when it named one and that row
/// still answers for the delivery; else, and for a delivery whose claim named none, by its id.
fn at_row_or_by_id<T>(
    row: Option<i64>,
    at_row: impl FnOnce(i64) -> rusqlite::Result<Option<T>>,
    by_id: impl FnOnce() -> rusqlite::Result<Option<T>>,
) -> rusqlite::Result<Option<T>> {
    if let Some(found) = row.map(at_row).transpose()?.flatten() {
        return Ok(Some(found));
    }
    by_id()
}

/// A claim's inputs, owned for the writer's thread.
struct Claim {
    now: i64,
    lease_until: i64,
    limit: usize,
    scan: i64,
    skip: String,
    skip_apps: String,
    token: i64,
    bounds: ClaimBounds,
}

impl Claim {
    fn new(now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: usize, bounds: &ClaimBounds) -> StoreResult<Claim> {
        Ok(Claim {
            now: micros(now),
            lease_until: micros(lease_until),
            limit,
            scan: i64::try_from(limit.saturating_mul(CLAIM_SCAN_FACTOR)).unwrap_or(i64::MAX),
            skip: serde_json::to_string(&bounds.skipped_endpoints()).map_err(StoreError::internal)?,
            skip_apps: serde_json::to_string(&bounds.skip_apps).map_err(StoreError::internal)?,
            token: hookd_store::new_lease_token(&mut rand::thread_rng()),
            bounds: bounds.clone(),
        })
    }

    /// Walks, picks and leases (see `claim_due_within`).
    fn run(self, c: &Connection) -> StoreResult<Vec<ClaimedDelivery>> {
        let Claim {
            now,
            lease_until,
            limit,
            scan,
            skip,
            skip_apps,
            token,
            bounds,
        } = self;
        // The candidates: the longest overdue rows of endpoints and applications that may
        // take more, a bounded walk of the due index (which covers the columns read). Each
        // endpoint's and application's room is then applied in order, here rather than in
        // SQL, where joining the room lists costs more than the walk itself.
        let mut candidates = c.prepare_cached(CLAIM_WALK).map_err(map_err)?;
        // Taken as the walk goes, which stops once `limit` are: the scan bound only
        // matters when most candidates belong to endpoints or applications without room.
        let mut picker = bounds.picker(limit);
        let mut picked: Vec<(String, String, i64)> = Vec::with_capacity(limit.min(64));
        let mut rows = candidates.query(params![now, scan, skip, skip_apps]).map_err(map_err)?;
        while !picker.is_full() {
            let Some(row) = rows.next().map_err(map_err)? else {
                break;
            };
            let text = |i: usize| -> StoreResult<&str> {
                row.get_ref(i)
                    .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
                    .map_err(map_err)
            };
            let (endpoint_id, app_id) = (text(0)?, text(1)?);
            if picker.offer(endpoint_id, app_id) {
                let rowid = row.get::<_, i64>(2).map_err(map_err)?;
                picked.push((endpoint_id.to_string(), app_id.to_string(), rowid));
            }
        }
        drop(rows);
        // A claimed delivery is due again when its lease ends (unless an attempt is
        // recorded first), so the due index never walks leased rows.
        //
        // Read, then a plain update, rather than one `UPDATE … RETURNING`: SQLite runs
        // RETURNING as a trigger, and a statement with one keeps a statement journal whose
        // release walks the transaction's whole sub-journal, so a claim's cost grew with
        // everything written before it in the transaction (a fifth of the writer's time at
        // fan-out 100). The writer thread is the only writer: nothing changes in between.
        // Both go by the rowid the walk read from the due index, one B-tree descent each
        // instead of two (the index SQLite keeps for the text id, then the table).
        let mut read = c
            .prepare_cached(
                "SELECT id, msg_id, scheduled_attempts, total_attempts, MIN(next_trigger, 1) FROM delivery \
                 WHERE rowid = ?1",
            )
            .map_err(map_err)?;
        let mut lease = c
            .prepare_cached(
                "UPDATE delivery SET lease_until = ?2, lease_token = ?3, next_attempt_at = ?2, \
                 next_trigger = MIN(next_trigger, 1) WHERE rowid = ?1",
            )
            .map_err(map_err)?;
        let mut claimed = Vec::with_capacity(picked.len());
        for (endpoint_id, app_id, rowid) in picked {
            let (id, msg_id, scheduled_attempts, total_attempts, trigger) = read
                .query_row([rowid], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                    ))
                })
                .map_err(map_err)?;
            lease.execute(params![rowid, lease_until, token]).map_err(map_err)?;
            claimed.push(ClaimedDelivery {
                id,
                msg_id,
                endpoint_id,
                app_id,
                scheduled_attempts,
                total_attempts,
                trigger: hookd_core::model::TriggerType::from_code(trigger)
                    .unwrap_or(hookd_core::model::TriggerType::Scheduled),
                lease_token: token,
                row: Some(rowid),
            });
        }
        Ok(claimed)
    }
}

/// The messages of `claimed`, one entry per delivery in order, each message read once
/// however many deliveries carry it; a delivery for which `current` says false gets none.
fn messages_of(
    c: &Connection,
    claimed: &[ClaimedDelivery],
    mut current: impl FnMut(&ClaimedDelivery) -> rusqlite::Result<bool>,
) -> rusqlite::Result<Vec<Option<Arc<Message>>>> {
    let mut message = c.prepare_cached(&format!("SELECT {MESSAGE_COLS} FROM message WHERE id = ?1"))?;
    let mut read: HashMap<&str, Option<Arc<Message>>> = HashMap::new();
    let mut out = Vec::with_capacity(claimed.len());
    for d in claimed {
        if !current(d)? {
            out.push(None);
            continue;
        }
        let found = match read.get(d.msg_id.as_str()) {
            Some(found) => found.clone(),
            None => {
                let found = message
                    .query_row(params![d.msg_id], rows::message)
                    .optional()?
                    .map(Arc::new);
                read.insert(d.msg_id.as_str(), found.clone());
                found
            }
        };
        out.push(found);
    }
    Ok(out)
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
        self.write_bookkeeping(Isolation::Savepoint, |c| {
            c.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err)
        })
        .await
    }

    async fn claim_due_within(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        bounds: &ClaimBounds,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let claim = Claim::new(now, lease_until, limit, bounds)?;
        // No savepoint (which would copy every page the claim touches): nothing here can fail
        // for a reason of its own. The rows read are the ones just walked, and a lease's update
        // meets no constraint, so only an I/O error can stop it part-way, and the writer then
        // rolls back the whole batch.
        self.write_as(Isolation::None, move |c| claim.run(c)).await
    }

    async fn claim_due_with_messages(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        bounds: &ClaimBounds,
    ) -> StoreResult<ClaimedBatch> {
        let claim = Claim::new(now, lease_until, limit, bounds)?;
        // The messages are read in the claim's transaction, on the writer's connection (whose
        // cache holds the pages of messages just published): under the leases just taken they
        // are current, so no delivery is looked at again (a reader's check per delivery, as
        // `claimed_messages` makes, costs more than the read of a fan-out's one message).
        self.write_as(Isolation::None, move |c| {
            let deliveries = claim.run(c)?;
            let messages = messages_of(c, &deliveries, |_| Ok(true)).map_err(map_err);
            Ok(ClaimedBatch { deliveries, messages })
        })
        .await
    }

    async fn record_attempts(&self, outcomes: &[AttemptRecord]) -> StoreResult<()> {
        self.record_shared_attempts(Arc::from(outcomes.to_vec())).await
    }

    async fn record_shared_attempts(&self, outcomes: Arc<[AttemptRecord]>) -> StoreResult<()> {
        // No savepoint (which would copy every page the batch touches, a twentieth of the
        // writer's time at fan-out 100): everything the writes need is read and checked before
        // the first of them, and none of them can fail for a reason of its own (an event
        // already in the outbox is left as it is, as on PostgreSQL). Only an I/O error can stop
        // the batch part-way, and the writer then rolls back the whole transaction.
        self.write_as(Isolation::None, move |c| {
            // Fencing needs each delivery's current lease token. The writer thread is the only
            // writer, so nothing changes between this read and the writes below, which go by
            // the rowid read here (one B-tree descent instead of two).
            let mut at_row = c
                .prepare_cached(LEASE_AT_ROW)
                .map_err(map_err)?;
            let mut by_id = c
                .prepare_cached("SELECT lease_token, app_id, rowid FROM delivery WHERE id = ?1")
                .map_err(map_err)?;
            // Each delivery's token, application and rowid, read once however many of its
            // attempts the batch holds: at the row its claim found when the record names one
            // (one descent; the id is checked there), else, or if that row holds another
            // delivery now, by its id.
            let mut found = HashMap::with_capacity(outcomes.len());
            for o in outcomes.iter() {
                if found.contains_key(o.delivery_id.as_str()) {
                    continue;
                }
                let row: Option<(i64, String, i64)> = at_row_or_by_id(
                    o.row,
                    |rowid| {
                        at_row
                            .query_row(params![rowid, o.delivery_id], |r| Ok((r.get(0)?, r.get(1)?, rowid)))
                            .optional()
                    },
                    || {
                        by_id
                            .query_row([&o.delivery_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                            .optional()
                    },
                )
                .map_err(map_err)?;
                if let Some(row) = row {
                    found.insert(o.delivery_id.as_str(), row);
                }
            }
            let plan = RecordPlan::new(&outcomes, |id| found.get(id).map(|(token, _, _)| *token));
            if plan.is_empty() {
                return Ok(());
            }
            // An attempt whose delivery is gone (deleted while in flight) was dropped by the
            // plan, as on PostgreSQL: only deliveries found above are in it. Should that ever
            // break, the batch fails here, before writing anything, rather than count an
            // attempt it never stored.
            let left = |id: &str| StoreError::message(format!("delivery {id} left the plan's lease check"));
            let attempts = plan
                .attempts
                .iter()
                .map(|(id, a)| found.get(id).map(|(_, app_id, _)| (*id, app_id.as_str(), a)).ok_or_else(|| left(id)))
                .collect::<StoreResult<Vec<_>>>()?;
            let deliveries = plan
                .deliveries
                .iter()
                .map(|(id, u)| found.get(id).map(|(_, _, rowid)| (*rowid, u)).ok_or_else(|| left(id)))
                .collect::<StoreResult<Vec<_>>>()?;
            // A resend requested while an attempt was in flight (`next_trigger` 2, see
            // `schedule_manual`) is not swallowed: a delivery still on its schedule has its next
            // attempt brought forward to the resend's time; a finished one gets one manual
            // attempt then.
            let mut update = c
                .prepare_cached(
                    "UPDATE delivery SET status = ?2, scheduled_attempts = ?3, total_attempts = total_attempts + ?7, \
                     next_attempt_at = CASE WHEN next_trigger = 2 AND ?4 IS NOT NULL AND NOT ?6 THEN MIN(next_attempt_at, ?4) \
                       WHEN next_trigger = 2 THEN next_attempt_at WHEN ?6 THEN NULL ELSE ?4 END, \
                     parked = ?6 AND next_trigger <> 2, \
                     next_trigger = CASE WHEN next_trigger = 2 AND (?4 IS NULL OR ?6) THEN 1 ELSE 0 END, lease_until = 0, \
                     updated_at = ?5 WHERE rowid = ?1",
                )
                .map_err(map_err)?;
            // Endpoint health for auto-disable; rows whose value would not change are left
            // unwritten.
            let mut health = c
                .prepare_cached(
                    "UPDATE endpoint SET failing_since = CASE ?2 WHEN 0 THEN NULL WHEN 1 THEN COALESCE(failing_since, ?3) \
                     ELSE ?3 END WHERE id = ?1 AND failing_since IS NOT \
                     (CASE ?2 WHEN 0 THEN NULL WHEN 1 THEN COALESCE(failing_since, ?3) ELSE ?3 END)",
                )
                .map_err(map_err)?;
            let mut insert = attempt_insert(c)?;
            outbox::insert_outbox(c, plan.events.iter().copied())?;
            for (delivery_id, app_id, a) in attempts {
                insert_attempt(&mut insert, delivery_id, app_id, a)?;
            }
            for (rowid, u) in deliveries {
                let o = u.last;
                update
                    .execute(params![
                        rowid,
                        o.delivery_status.code(),
                        o.scheduled_attempts,
                        o.next_attempt_at.map(micros),
                        micros(o.attempt.created_at),
                        o.park,
                        u.attempts
                    ])
                    .map_err(map_err)?;
            }
            for (endpoint_id, h) in &plan.health {
                let (mode, at) = h.mode();
                health.execute(params![endpoint_id, mode, at]).map_err(map_err)?;
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

    async fn claimed_message(&self, d: &ClaimedDelivery) -> StoreResult<Option<Message>> {
        let (id, attempts) = (d.id.clone(), d.total_attempts);
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM message \
                 WHERE id = (SELECT msg_id FROM delivery WHERE id = ?1 AND total_attempts = ?2)"
            ))?
            .query_row(params![id, attempts], rows::message)
            .optional()
        })
        .await
    }

    /// One read for the batch: each delivery's current attempt count is checked, and each
    /// message is read once however many of its deliveries were claimed. A delivery whose
    /// claim named its row is checked there, its id included, and by its id if that row does
    /// not hold it as claimed.
    async fn claimed_messages(&self, claimed: &[ClaimedDelivery]) -> StoreResult<Vec<Option<Arc<Message>>>> {
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let claimed = claimed.to_vec();
        self.read(move |c| {
            let mut by_id = c.prepare_cached("SELECT msg_id FROM delivery WHERE id = ?1 AND total_attempts = ?2")?;
            let mut at_row = c.prepare_cached(CLAIMED_AT_ROW)?;
            // Each delivery still there and not attempted since its claim read it.
            messages_of(c, &claimed, |d| {
                let still: Option<String> = at_row_or_by_id(
                    d.row,
                    |row| {
                        at_row
                            .query_row(params![d.id, d.total_attempts, row], |r| r.get(0))
                            .optional()
                    },
                    || {
                        by_id
                            .query_row(params![d.id, d.total_attempts], |r| r.get(0))
                            .optional()
                    },
                )?;
                Ok(still.is_some())
            })
        })
        .await
    }

    async fn disable_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
        failing_by: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<Endpoint>> {
        let (app_id, id) = (app_id.to_string(), endpoint_id.to_string());
        self.write(move |c| {
            c.prepare_cached(&format!(
                "UPDATE endpoint SET disabled = 1, updated_at = ?3 \
                 WHERE app_id = ?1 AND id = ?2 AND disabled = 0 \
                 AND (?4 IS NULL OR failing_since <= ?4) RETURNING {ENDPOINT_COLS}"
            ))
            .and_then(|mut s| {
                s.query_row(params![app_id, id, micros(now), failing_by.map(micros)], rows::endpoint)
                    .optional()
            })
            .map_err(map_err)
        })
        .await?
        .map(|e| open_endpoint(self.secrets.as_deref(), e))
        .transpose()
    }
}
