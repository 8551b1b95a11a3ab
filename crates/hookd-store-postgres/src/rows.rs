//! Row ↔ record mapping. The column lists are shared by both backends
//! ([`hookd_store::sql`]), so every query selects the same shape, and the mappers read columns
//! by position, which lets a join read two records from one row.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use hookd_core::model::{
    Application, Attempt, Endpoint, Environment, EventType, Message, MessageStatus, OldSecret, TriggerType,
};
pub use hookd_store::sql::{
    micros, qualified, APP_COLS, ATTEMPT_COLS, DELIVERY_COLS, ENDPOINT_COLS, EVENT_TYPE_COLS, MESSAGE_COLS,
    SESSION_COLS, TASK_COLS, TOKEN_COLS, TRAFFIC_ADD, TRAFFIC_COLS,
};
use hookd_store::{DeliveryState, SessionRecord, TaskRecord, TaskStatus, TokenRecord};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;

pub fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

type RowResult<T> = Result<T, sqlx::Error>;

/// A value the database holds but no record can: bad data, reported as a decode error of its
/// column so the cause chain names it.
fn bad_value(idx: usize, what: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: idx.to_string(),
        source: what.into(),
    }
}

fn time_at(row: &PgRow, idx: usize) -> RowResult<DateTime<Utc>> {
    Ok(from_micros(row.try_get(idx)?))
}

fn opt_time_at(row: &PgRow, idx: usize) -> RowResult<Option<DateTime<Utc>>> {
    Ok(row.try_get::<Option<i64>, _>(idx)?.map(from_micros))
}

fn json_at<T: serde::de::DeserializeOwned>(row: &PgRow, idx: usize) -> RowResult<T> {
    Ok(row.try_get::<Json<T>, _>(idx)?.0)
}

fn opt_json_at<T: serde::de::DeserializeOwned>(row: &PgRow, idx: usize) -> RowResult<Option<T>> {
    Ok(row.try_get::<Option<Json<T>>, _>(idx)?.map(|j| j.0))
}

fn env_at(row: &PgRow, idx: usize) -> RowResult<Environment> {
    let s: String = row.try_get(idx)?;
    Environment::parse(&s).ok_or_else(|| bad_value(idx, format!("unknown environment {s}")))
}

fn status_at(row: &PgRow, idx: usize) -> RowResult<MessageStatus> {
    let code: i16 = row.try_get(idx)?;
    MessageStatus::from_code(code.into()).ok_or_else(|| bad_value(idx, format!("bad status {code}")))
}

fn trigger_at(row: &PgRow, idx: usize) -> RowResult<TriggerType> {
    let code: i16 = row.try_get(idx)?;
    Ok(TriggerType::from_code(code.into()).unwrap_or(TriggerType::Scheduled))
}

/// Rates are written from a `u16`; anything else in the column is corrupt.
fn throttle_at(row: &PgRow, idx: usize) -> RowResult<Option<u16>> {
    let rate: Option<i32> = row.try_get(idx)?;
    rate.map(|r| u16::try_from(r).map_err(|_| bad_value(idx, format!("throttle rate {r} out of range"))))
        .transpose()
}

pub fn application(row: &PgRow) -> RowResult<Application> {
    Ok(Application {
        id: row.try_get(0)?,
        env: env_at(row, 1)?,
        uid: row.try_get(2)?,
        name: row.try_get(3)?,
        metadata: json_at::<BTreeMap<String, String>>(row, 4)?,
        throttle_rate: throttle_at(row, 5)?,
        created_at: time_at(row, 6)?,
        updated_at: time_at(row, 7)?,
    })
}

pub fn endpoint(row: &PgRow) -> RowResult<Endpoint> {
    Ok(Endpoint {
        id: row.try_get(0)?,
        app_id: row.try_get(1)?,
        uid: row.try_get(2)?,
        url: row.try_get(3)?,
        description: row.try_get(4)?,
        disabled: row.try_get(5)?,
        event_types: opt_json_at(row, 6)?,
        channels: opt_json_at(row, 7)?,
        throttle_rate: throttle_at(row, 8)?,
        metadata: json_at(row, 9)?,
        secret: row.try_get(10)?,
        headers: json_at(row, 11)?,
        created_at: time_at(row, 12)?,
        updated_at: time_at(row, 13)?,
        old_secrets: json_at::<Vec<OldSecret>>(row, 14)?,
        failing_since: opt_time_at(row, 15)?,
        destination: opt_json_at(row, 16)?,
    })
}

pub fn event_type(row: &PgRow) -> RowResult<EventType> {
    Ok(EventType {
        env: env_at(row, 0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        archived: row.try_get(3)?,
        deprecated: row.try_get(4)?,
        feature_flag: row.try_get(5)?,
        schemas: opt_json_at(row, 6)?,
        created_at: time_at(row, 7)?,
        updated_at: time_at(row, 8)?,
        group_name: row.try_get(9)?,
    })
}

pub fn message(row: &PgRow) -> RowResult<Message> {
    message_at(row, 0)
}

/// A message whose columns start at `offset` (for joins).
pub fn message_at(row: &PgRow, offset: usize) -> RowResult<Message> {
    Ok(Message {
        id: row.try_get(offset)?,
        app_id: row.try_get(offset + 1)?,
        event_id: row.try_get(offset + 2)?,
        event_type: row.try_get(offset + 3)?,
        channels: opt_json_at(row, offset + 4)?,
        payload: row.try_get(offset + 5)?,
        created_at: time_at(row, offset + 6)?,
        expires_at: time_at(row, offset + 7)?,
    })
}

pub fn attempt(row: &PgRow) -> RowResult<Attempt> {
    Ok(Attempt {
        id: row.try_get(0)?,
        msg_id: row.try_get(1)?,
        endpoint_id: row.try_get(2)?,
        url: row.try_get(3)?,
        response: row.try_get(4)?,
        response_status_code: row.try_get(5)?,
        response_duration_ms: row.try_get(6)?,
        status: status_at(row, 7)?,
        trigger_type: trigger_at(row, 8)?,
        attempt_number: row.try_get(9)?,
        created_at: time_at(row, 10)?,
        request_headers: json_at(row, 11)?,
        response_headers: json_at(row, 12)?,
    })
}

pub fn delivery(row: &PgRow) -> RowResult<DeliveryState> {
    Ok(DeliveryState {
        id: row.try_get(0)?,
        msg_id: row.try_get(1)?,
        endpoint_id: row.try_get(2)?,
        status: status_at(row, 3)?,
        next_attempt_at: opt_time_at(row, 4)?,
        created_at: time_at(row, 5)?,
        total_attempts: row.try_get(6)?,
        reviewed_at: opt_time_at(row, 7)?,
    })
}

/// A claim's `RETURNING id, msg_id, endpoint_id, app_id, scheduled_attempts, total_attempts,
/// next_trigger`.
/// A claimed delivery; `lease_token` is the claim's.
pub fn claimed(row: &PgRow, lease_token: i64) -> RowResult<hookd_store::ClaimedDelivery> {
    Ok(hookd_store::ClaimedDelivery {
        id: row.try_get(0)?,
        msg_id: row.try_get(1)?,
        endpoint_id: row.try_get(2)?,
        app_id: row.try_get(3)?,
        scheduled_attempts: row.try_get(4)?,
        total_attempts: row.try_get(5)?,
        trigger: trigger_at(row, 6)?,
        lease_token,
        row: None,
    })
}

pub fn token(row: &PgRow) -> RowResult<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get(0)?,
        hash: row.try_get(1)?,
        env: env_at(row, 2)?,
        app_id: row.try_get(3)?,
        description: row.try_get(4)?,
        created_at: time_at(row, 5)?,
        expires_at: opt_time_at(row, 6)?,
    })
}

pub fn session(row: &PgRow) -> RowResult<SessionRecord> {
    let capabilities: String = row.try_get(4)?;
    Ok(SessionRecord {
        id: row.try_get(0)?,
        hash: row.try_get(1)?,
        env: env_at(row, 2)?,
        app_id: row.try_get(3)?,
        capabilities: serde_json::from_str(&capabilities)
            .map_err(|e| bad_value(4, format!("bad capabilities: {e}")))?,
        read_only: row.try_get(5)?,
        portal_session: row.try_get(6)?,
        created_at: time_at(row, 7)?,
        expires_at: time_at(row, 8)?,
    })
}

pub fn task(row: &PgRow) -> RowResult<TaskRecord> {
    let status: String = row.try_get(4)?;
    Ok(TaskRecord {
        id: row.try_get(0)?,
        app_id: row.try_get(1)?,
        endpoint_id: row.try_get(2)?,
        kind: row.try_get(3)?,
        // As on SQLite: a status this version does not know reads as failed rather than
        // hiding the task.
        status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Failed),
        data: json_at(row, 5)?,
        created_at: time_at(row, 6)?,
        updated_at: time_at(row, 7)?,
    })
}

/// A `traffic_minute` row ([`TRAFFIC_COLS`]).
pub(crate) fn traffic(r: &PgRow) -> RowResult<hookd_store::TrafficMinute> {
    let mut t = hookd_store::TrafficMinute::new(env_at(r, 0)?, r.try_get(1)?);
    t.messages = r.try_get(2)?;
    t.deliveries = r.try_get(3)?;
    t.attempts = r.try_get(4)?;
    t.succeeded = r.try_get(5)?;
    t.failed = r.try_get(6)?;
    for (i, bucket) in t.latency.iter_mut().enumerate() {
        *bucket = r.try_get(7 + i)?;
    }
    Ok(t)
}
