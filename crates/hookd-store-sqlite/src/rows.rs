//! Row ↔ record mapping. The column lists are shared by both backends ([`hookd_store::sql`]),
//! so every query selects the same shape; the mappers read columns by position.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use hookd_core::model::{
    Application, Attempt, Endpoint, Environment, EventType, Message, MessageStatus, OldSecret, SentHeaders, TriggerType,
};
pub use hookd_store::sql::{
    micros, APP_COLS, ATTEMPT_COLS, DELIVERY_COLS, ENDPOINT_COLS, EVENT_TYPE_COLS, MESSAGE_COLS, SESSION_COLS,
    TASK_COLS, TOKEN_COLS, TRAFFIC_ADD, TRAFFIC_COLS,
};
use hookd_store::{DeliveryState, SessionRecord, TaskRecord, TaskStatus, TokenRecord};
use rusqlite::types::{FromSql, FromSqlError, ToSqlOutput, Value, ValueRef};
use rusqlite::{Row, ToSql};

pub fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// A JSON column value, stored as TEXT.
pub struct Json<T>(pub T);

impl<T: serde::Serialize> ToSql for Json<T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let text = serde_json::to_string(&self.0).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(ToSqlOutput::Owned(Value::Text(text)))
    }
}

impl<T: serde::de::DeserializeOwned> FromSql for Json<T> {
    fn column_result(value: ValueRef<'_>) -> Result<Self, FromSqlError> {
        let text = value.as_str()?;
        serde_json::from_str(text)
            .map(Json)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

fn env_at(row: &Row, idx: usize) -> rusqlite::Result<Environment> {
    let s: String = row.get(idx)?;
    Environment::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown environment {s}").into(),
        )
    })
}

fn opt_json<T: serde::de::DeserializeOwned>(row: &Row, idx: usize) -> rusqlite::Result<Option<T>> {
    Ok(row.get::<_, Option<Json<T>>>(idx)?.map(|j| j.0))
}

fn status_at(row: &Row, idx: usize) -> rusqlite::Result<MessageStatus> {
    let code: i64 = row.get(idx)?;
    MessageStatus::from_code(code).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Integer,
            format!("bad status {code}").into(),
        )
    })
}

pub fn application(row: &Row) -> rusqlite::Result<Application> {
    Ok(Application {
        id: row.get(0)?,
        env: env_at(row, 1)?,
        uid: row.get(2)?,
        name: row.get(3)?,
        metadata: row.get::<_, Json<BTreeMap<String, String>>>(4)?.0,
        throttle_rate: row.get(5)?,
        created_at: from_micros(row.get(6)?),
        updated_at: from_micros(row.get(7)?),
    })
}

pub fn endpoint(row: &Row) -> rusqlite::Result<Endpoint> {
    Ok(Endpoint {
        id: row.get(0)?,
        app_id: row.get(1)?,
        uid: row.get(2)?,
        url: row.get(3)?,
        description: row.get(4)?,
        disabled: row.get(5)?,
        event_types: opt_json(row, 6)?,
        channels: opt_json(row, 7)?,
        throttle_rate: row.get(8)?,
        metadata: row.get::<_, Json<BTreeMap<String, String>>>(9)?.0,
        secret: row.get(10)?,
        headers: row.get::<_, Json<BTreeMap<String, String>>>(11)?.0,
        created_at: from_micros(row.get(12)?),
        updated_at: from_micros(row.get(13)?),
        old_secrets: row.get::<_, Json<Vec<OldSecret>>>(14)?.0,
        failing_since: row.get::<_, Option<i64>>(15)?.map(from_micros),
        destination: opt_json(row, 16)?,
    })
}

pub fn event_type(row: &Row) -> rusqlite::Result<EventType> {
    Ok(EventType {
        env: env_at(row, 0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        archived: row.get(3)?,
        deprecated: row.get(4)?,
        feature_flag: row.get(5)?,
        schemas: opt_json(row, 6)?,
        created_at: from_micros(row.get(7)?),
        updated_at: from_micros(row.get(8)?),
        group_name: row.get(9)?,
    })
}

pub fn message(row: &Row) -> rusqlite::Result<Message> {
    message_at(row, 0)
}

/// A message whose columns start at `offset` (for joins).
pub fn message_at(row: &Row, offset: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        id: row.get(offset)?,
        app_id: row.get(offset + 1)?,
        event_id: row.get(offset + 2)?,
        event_type: row.get(offset + 3)?,
        channels: opt_json(row, offset + 4)?,
        payload: row.get(offset + 5)?,
        created_at: from_micros(row.get(offset + 6)?),
        expires_at: from_micros(row.get(offset + 7)?),
    })
}

pub fn attempt(row: &Row) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: row.get(0)?,
        msg_id: row.get(1)?,
        endpoint_id: row.get(2)?,
        url: row.get(3)?,
        response: row.get(4)?,
        response_status_code: row.get(5)?,
        response_duration_ms: row.get(6)?,
        status: status_at(row, 7)?,
        trigger_type: TriggerType::from_code(row.get(8)?).unwrap_or(TriggerType::Scheduled),
        attempt_number: row.get(9)?,
        created_at: from_micros(row.get(10)?),
        request_headers: row.get::<_, Json<SentHeaders>>(11)?.0,
        response_headers: row.get::<_, Json<Vec<(String, String)>>>(12)?.0,
    })
}

pub fn delivery(row: &Row) -> rusqlite::Result<DeliveryState> {
    Ok(DeliveryState {
        id: row.get(0)?,
        msg_id: row.get(1)?,
        endpoint_id: row.get(2)?,
        status: status_at(row, 3)?,
        next_attempt_at: row.get::<_, Option<i64>>(4)?.map(from_micros),
        created_at: from_micros(row.get(5)?),
        total_attempts: row.get(6)?,
        reviewed_at: row.get::<_, Option<i64>>(7)?.map(from_micros),
    })
}

pub fn token(row: &Row) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        hash: row.get(1)?,
        env: env_at(row, 2)?,
        app_id: row.get(3)?,
        description: row.get(4)?,
        created_at: from_micros(row.get(5)?),
        expires_at: row.get::<_, Option<i64>>(6)?.map(from_micros),
    })
}

pub fn session(row: &Row) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0)?,
        hash: row.get(1)?,
        env: env_at(row, 2)?,
        app_id: row.get(3)?,
        capabilities: row.get::<_, Json<Vec<String>>>(4)?.0,
        read_only: row.get(5)?,
        portal_session: row.get(6)?,
        created_at: from_micros(row.get(7)?),
        expires_at: from_micros(row.get(8)?),
    })
}

pub fn task(row: &Row) -> rusqlite::Result<TaskRecord> {
    let status: String = row.get(4)?;
    Ok(TaskRecord {
        id: row.get(0)?,
        app_id: row.get(1)?,
        endpoint_id: row.get(2)?,
        kind: row.get(3)?,
        status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Failed),
        data: row.get::<_, Json<serde_json::Value>>(5)?.0,
        created_at: from_micros(row.get(6)?),
        updated_at: from_micros(row.get(7)?),
    })
}

/// A `traffic_minute` row ([`TRAFFIC_COLS`]).
pub(crate) fn traffic(r: &Row) -> rusqlite::Result<hookd_store::TrafficMinute> {
    let mut t = hookd_store::TrafficMinute::new(env_at(r, 0)?, r.get(1)?);
    t.messages = r.get(2)?;
    t.deliveries = r.get(3)?;
    t.attempts = r.get(4)?;
    t.succeeded = r.get(5)?;
    t.failed = r.get(6)?;
    for (i, bucket) in t.latency.iter_mut().enumerate() {
        *bucket = r.get(7 + i)?;
    }
    Ok(t)
}
