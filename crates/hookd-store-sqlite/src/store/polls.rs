//! Polling destinations: the application's stream in rowid order (the one writer assigns rowids
//! in commit order) and consumer positions.

use hookd_store::{PollCursor, PollRecord, PolledMessage};

use super::*;

#[async_trait]
impl PollStore for SqliteStore {
    async fn poll_messages(&self, app_id: &str, after: &PollCursor, limit: usize) -> StoreResult<Vec<PolledMessage>> {
        let (app_id, after) = (app_id.to_string(), after.seq);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT rowid, {MESSAGE_COLS} FROM message INDEXED BY message_app_seq \
                 WHERE app_id = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![app_id, after, limit as i64], |r| {
                let message = rows::message_at(r, 1)?;
                Ok(PolledMessage {
                    cursor: PollCursor {
                        seq: r.get(0)?,
                        id: message.id.clone(),
                    },
                    message,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn poll_cursor_at(&self, app_id: &str, at: DateTime<Utc>) -> StoreResult<PollCursor> {
        let app_id = app_id.to_string();
        let bound = hookd_core::id::IdKind::Message.lower_bound(at);
        self.read(move |c| {
            // Ids order messages by their publish time, rowids by their commit: of the first
            // messages by id, the earliest committed is where the stream reaches that time.
            // Without one, the end: later messages get rowids above every one in the table.
            // One statement, so both answers come from the same snapshot (a message committed
            // between two reads would otherwise fall behind the position).
            let seq: i64 = c
                .prepare_cached(
                    "SELECT COALESCE((SELECT MIN(rowid) - 1 FROM (SELECT rowid FROM message \
                     WHERE app_id = ?1 AND id >= ?2 ORDER BY id LIMIT ?3)), \
                     (SELECT COALESCE(MAX(rowid), 0) FROM message))",
                )?
                .query_row(params![app_id, bound, hookd_store::POLL_SEEK_WINDOW], |r| r.get(0))?;
            Ok(PollCursor { seq, id: String::new() })
        })
        .await
    }

    async fn poll_consumer(&self, endpoint_id: &str, consumer_id: &str) -> StoreResult<Option<PollCursor>> {
        let (endpoint_id, consumer_id) = (endpoint_id.to_string(), consumer_id.to_string());
        self.read(move |c| {
            c.prepare_cached("SELECT seq, msg_id FROM poll_consumer WHERE endpoint_id = ?1 AND consumer_id = ?2")?
                .query_row(params![endpoint_id, consumer_id], |r| {
                    Ok(PollCursor {
                        seq: r.get(0)?,
                        id: r.get(1)?,
                    })
                })
                .optional()
        })
        .await
    }

    async fn record_poll(&self, poll: &PollRecord) -> StoreResult<()> {
        let poll = poll.clone();
        self.write(move |c| {
            let at = micros(poll.at);
            if let Some((consumer_id, cursor)) = &poll.consumer {
                let known: bool = c
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM poll_consumer WHERE endpoint_id = ?1 AND consumer_id = ?2)")
                    .and_then(|mut s| s.query_row(params![poll.endpoint_id, consumer_id], |r| r.get(0)))
                    .map_err(map_err)?;
                if !known {
                    let count: i64 = c
                        .prepare_cached("SELECT COUNT(*) FROM poll_consumer WHERE endpoint_id = ?1")
                        .and_then(|mut s| s.query_row([&poll.endpoint_id], |r| r.get(0)))
                        .map_err(map_err)?;
                    if count as usize >= poll.max_consumers {
                        return Err(StoreError::Conflict("consumers"));
                    }
                }
                c.prepare_cached(
                    "INSERT INTO poll_consumer (endpoint_id, consumer_id, app_id, seq, msg_id, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (endpoint_id, consumer_id) \
                     DO UPDATE SET seq = ?4, msg_id = ?5, updated_at = ?6",
                )
                .and_then(|mut s| {
                    s.execute(params![poll.endpoint_id, consumer_id, poll.app_id, cursor.seq, cursor.id, at])
                })
                .map_err(map_err)?;
            }
            // The upsert, then a read of what it left: with `RETURNING`, SQLite would keep a
            // statement journal for each row, and releasing one walks everything the
            // transaction wrote before it (see `claim_due_within`).
            let mut delivery = c
                .prepare_cached(
                    "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, scheduled_attempts, total_attempts, \
                     next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, 0, 1, NULL, ?5, ?5) \
                     ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 0, total_attempts = total_attempts + 1, \
                     updated_at = ?5",
                )
                .map_err(map_err)?;
            let mut stored = c
                .prepare_cached("SELECT id, total_attempts FROM delivery WHERE msg_id = ?1 AND endpoint_id = ?2")
                .map_err(map_err)?;
            let mut insert = attempt_insert(c)?;
            for (delivery_id, a) in &poll.attempts {
                delivery
                    .execute(params![delivery_id, a.msg_id, poll.endpoint_id, poll.app_id, at])
                    .map_err(map_err)?;
                let (delivery_id, number): (String, i64) = stored
                    .query_row(params![a.msg_id, poll.endpoint_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(map_err)?;
                let mut a = hookd_store::storable_attempt(a).into_owned();
                a.attempt_number = number;
                insert_attempt(&mut insert, &delivery_id, &poll.app_id, &a)?;
            }
            Ok(())
        })
        .await
    }
}
