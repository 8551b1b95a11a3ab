//! SQL that reads the same on every backend, written once: the column lists every query
//! selects, the listing queries with their filters and keyset pages, and counting by status.
//!
//! A backend names its [`Dialect`] and runs the [`Sql`] it gets back, binding
//! [`Sql::params`] in order; the dialect decides the few spellings that differ (numbered
//! placeholders `?n` or `$n`, a list parameter, whether a JSON array holds a string). What is
//! truly the backend's own stays in the backend: the delivery queue's claims and leases, the
//! batch writes, idempotency, and the row ↔ record mapping of its driver.
//!
//! Every time is stored as microseconds since the epoch ([`micros`]).

use chrono::{DateTime, Utc};
use hookd_core::model::MessageStatus;

use crate::{AttemptFilter, MessageFilter, PageRequest, ReplayKind, ReplayQuery, StatusCounts, TaskFilter};

/// Columns of `traffic_minute`, in [`crate::TrafficMinute`] order (the latency buckets last).
pub const TRAFFIC_COLS: &str =
    "env, minute, messages, deliveries, attempts, succeeded, failed, l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14";

/// The `SET` list of an additive upsert into `traffic_minute`: each count grows by the new
/// row's (`excluded`).
pub const TRAFFIC_ADD: &str = "messages = traffic_minute.messages + excluded.messages, \
     deliveries = traffic_minute.deliveries + excluded.deliveries, \
     attempts = traffic_minute.attempts + excluded.attempts, \
     succeeded = traffic_minute.succeeded + excluded.succeeded, \
     failed = traffic_minute.failed + excluded.failed, \
     l0 = traffic_minute.l0 + excluded.l0, l1 = traffic_minute.l1 + excluded.l1, l2 = traffic_minute.l2 + excluded.l2, l3 = traffic_minute.l3 + excluded.l3, l4 = traffic_minute.l4 + excluded.l4, l5 = traffic_minute.l5 + excluded.l5, l6 = traffic_minute.l6 + excluded.l6, l7 = traffic_minute.l7 + excluded.l7, l8 = traffic_minute.l8 + excluded.l8, l9 = traffic_minute.l9 + excluded.l9, l10 = traffic_minute.l10 + excluded.l10, l11 = traffic_minute.l11 + excluded.l11, l12 = traffic_minute.l12 + excluded.l12, l13 = traffic_minute.l13 + excluded.l13, l14 = traffic_minute.l14 + excluded.l14";

/// Columns of `application`, in the order the row mappers read them.
pub const APP_COLS: &str = "id, env, uid, name, metadata, throttle_rate, created_at, updated_at";
/// Columns of `endpoint`.
pub const ENDPOINT_COLS: &str = "id, app_id, uid, url, description, disabled, event_types, channels, \
    throttle_rate, metadata, secret, headers, created_at, updated_at, old_secrets, failing_since, destination";
/// Columns of `event_type`.
pub const EVENT_TYPE_COLS: &str =
    "env, name, description, archived, deprecated, feature_flag, schemas, created_at, updated_at, group_name";
/// Columns of `message`. PostgreSQL's `hookd_write_group` (its migration 12) inserts these
/// too: a column added here reaches that function only through a new migration that replaces it.
pub const MESSAGE_COLS: &str = "id, app_id, event_id, event_type, channels, payload, created_at, expires_at";
/// Columns of `attempt`. PostgreSQL's `hookd_record_attempts` (its migration 12) inserts these
/// too: a column added here reaches that function only through a new migration that replaces it.
pub const ATTEMPT_COLS: &str = "id, msg_id, endpoint_id, url, response, response_status_code, \
    response_duration_ms, status, trigger_type, attempt_number, created_at, request_headers, response_headers";
/// Columns of `delivery` as listed (its queue columns are the queue's own).
pub const DELIVERY_COLS: &str =
    "id, msg_id, endpoint_id, status, next_attempt_at, created_at, total_attempts, reviewed_at";
/// Columns of `task`.
pub const TASK_COLS: &str = "id, app_id, endpoint_id, kind, status, data, created_at, updated_at";
/// Columns of `token`.
pub const TOKEN_COLS: &str = "id, hash, env, app_id, description, created_at, expires_at";
/// Columns of `browser_session`.
pub const SESSION_COLS: &str = "id, hash, env, app_id, capabilities, read_only, portal_session, created_at, expires_at";

/// The tables holding an application's records, children first, each with the condition that
/// picks the application's rows (`{app}` stands for the application's id): deleting an
/// application deletes its rows from each, in this order, then the application itself.
/// Deliveries and attempts carry no index on their application: deliveries are found through
/// its endpoints, attempts through its messages (an attempt outlives its endpoint, as history,
/// but never its message).
const APPLICATION_CHILDREN: &[(&str, &str)] = &[
    ("poll_consumer", "app_id = {app}"),
    ("fifo_lane", "app_id = {app}"),
    ("attempt", "msg_id IN (SELECT id FROM message WHERE app_id = {app})"),
    (
        "delivery",
        "endpoint_id IN (SELECT id FROM endpoint WHERE app_id = {app})",
    ),
    ("message", "app_id = {app}"),
    ("endpoint", "app_id = {app}"),
    ("token", "app_id = {app}"),
    ("task", "app_id = {app}"),
    ("browser_session", "app_id = {app}"),
];

/// The statements deleting an application's records (see [`APPLICATION_CHILDREN`]), in order,
/// each with the application's id as its one parameter.
pub fn delete_application_children(d: Dialect) -> impl Iterator<Item = String> {
    let app = match d {
        Dialect::Sqlite => "?1",
        Dialect::Postgres => "$1",
    };
    APPLICATION_CHILDREN
        .iter()
        .map(move |(table, filter)| format!("DELETE FROM {table} WHERE {}", filter.replace("{app}", app)))
}

/// Microseconds since the epoch, the storage form of every time.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// `cols` with every column qualified by `alias` (`m.id, m.app_id, …`), for joins.
pub fn qualified(alias: &str, cols: &str) -> String {
    cols.split(", ")
        .map(|col| format!("{alias}.{}", col.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Status counts from `(status code, count)` rows; unknown codes are ignored.
pub fn status_counts(rows: impl IntoIterator<Item = (i64, i64)>) -> StatusCounts {
    let mut out = StatusCounts::default();
    for (status, n) in rows {
        match MessageStatus::from_code(status) {
            Some(MessageStatus::Success) => out.success += n,
            Some(MessageStatus::Pending) => out.pending += n,
            Some(MessageStatus::Sending) => out.sending += n,
            Some(MessageStatus::Fail) => out.fail += n,
            None => {}
        }
    }
    out
}

/// Which database the SQL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Placeholders `?n`; lists and JSON arrays through `json_each`.
    Sqlite,
    /// Placeholders `$n`; lists as arrays (`= ANY`), JSON arrays with `?`.
    Postgres,
}

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// An integer (`BIGINT`).
    Int(i64),
    /// A string.
    Text(String),
    /// A list of strings (PostgreSQL `text[]`; on SQLite a JSON array as text).
    Texts(Vec<String>),
    /// A list of integers (PostgreSQL `bigint[]`; on SQLite a JSON array as text).
    Ints(Vec<i64>),
}

/// A statement and its parameters, bound in order: the `n`th parameter is placeholder `n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    dialect: Dialect,
    text: String,
    params: Vec<Param>,
}

impl Sql {
    /// A statement starting with `text`, which holds no placeholders.
    pub fn new(dialect: Dialect, text: impl Into<String>) -> Sql {
        Sql {
            dialect,
            text: text.into(),
            params: Vec::new(),
        }
    }

    /// The statement.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The values to bind, in placeholder order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Binds `value` and returns its placeholder.
    pub fn bind(&mut self, value: Param) -> String {
        let value = match (self.dialect, value) {
            (Dialect::Sqlite, Param::Texts(list)) => Param::Text(json_list(&list)),
            (Dialect::Sqlite, Param::Ints(list)) => Param::Text(json_list(&list)),
            (_, value) => value,
        };
        self.params.push(value);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }

    /// Appends `text` as is.
    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends ` AND {left} {op} <value>`.
    pub fn and_cmp(&mut self, left: &str, op: &str, value: Param) -> &mut Sql {
        let mark = self.bind(value);
        self.push(&format!(" AND {left} {op} {mark}"))
    }

    /// Appends ` AND {column} = <value>`.
    pub fn and_eq(&mut self, column: &str, value: Param) -> &mut Sql {
        self.and_cmp(column, "=", value)
    }

    /// Appends ` AND <column is one of values>`; an empty list matches nothing.
    pub fn and_in(&mut self, column: &str, values: Param) -> &mut Sql {
        let mark = self.bind(values);
        let clause = match self.dialect {
            Dialect::Sqlite => format!(" AND {column} IN (SELECT value FROM json_each({mark}))"),
            Dialect::Postgres => format!(" AND {column} = ANY({mark})"),
        };
        self.push(&clause)
    }

    /// Appends ` AND <the JSON array in column holds the string value>`; a NULL column holds
    /// nothing.
    pub fn and_json_holds(&mut self, column: &str, value: &str) -> &mut Sql {
        let mark = self.bind(Param::Text(value.to_string()));
        let clause = match self.dialect {
            Dialect::Sqlite => {
                format!(" AND EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {mark})")
            }
            Dialect::Postgres => format!(" AND {column} ? {mark}"),
        };
        self.push(&clause)
    }

    /// Appends the keyset condition and ordering on `key`, fetching one row more than the page
    /// so [`PageRequest::finish`] can tell whether more follow.
    pub fn page(&mut self, key: &str, page: &PageRequest) -> &mut Sql {
        let asc = page.scan_ascending();
        if let Some(cursor) = &page.cursor {
            self.and_cmp(key, if asc { ">" } else { "<" }, Param::Text(cursor.key.clone()));
        }
        let limit = self.bind(Param::Int(page.limit.saturating_add(1).min(i64::MAX as usize) as i64));
        let dir = if asc { "ASC" } else { "DESC" };
        self.push(&format!(" ORDER BY {key} {dir} LIMIT {limit}"))
    }

    /// Appends the message filters (event types, channel, creation window) on the message
    /// table aliased `alias`; the filter's delivery status is the caller's.
    pub fn message_filters(&mut self, alias: &str, filter: &MessageFilter) -> &mut Sql {
        if let Some(types) = &filter.event_types {
            self.and_in(&format!("{alias}.event_type"), Param::Texts(types.clone()));
        }
        if let Some(channel) = &filter.channel {
            self.and_json_holds(&format!("{alias}.channels"), channel);
        }
        if let Some(before) = filter.before {
            self.and_cmp(&format!("{alias}.created_at"), "<", Param::Int(micros(before)));
        }
        if let Some(after) = filter.after {
            self.and_cmp(&format!("{alias}.created_at"), ">", Param::Int(micros(after)));
        }
        self
    }

    /// Appends ` AND {column} BETWEEN lo AND hi` for a status code class: 0 is "no response",
    /// otherwise `class..class + 100`.
    fn and_status_class(&mut self, column: &str, class: i64) -> &mut Sql {
        let (lo, hi) = if class == 0 { (0, 0) } else { (class, class + 99) };
        let lo = self.bind(Param::Int(lo));
        let hi = self.bind(Param::Int(hi));
        self.push(&format!(" AND {column} BETWEEN {lo} AND {hi}"))
    }
}

fn json_list<T: serde::Serialize>(list: &[T]) -> String {
    serde_json::to_string(list).expect("a list of strings or integers serialises")
}

/// Applications of one environment, a page by id.
pub fn list_applications(d: Dialect, env: &str, page: &PageRequest) -> Sql {
    let mut q = Sql::new(d, format!("SELECT {APP_COLS} FROM application WHERE TRUE"));
    q.and_eq("env", Param::Text(env.to_string())).page("id", page);
    q
}

/// Up to `limit` applications of one environment whose name contains `text` (any case),
/// newest first.
pub fn search_applications(d: Dialect, env: &str, text: &str, limit: usize) -> Sql {
    let escaped: String = text
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let mut q = Sql::new(d, format!("SELECT {APP_COLS} FROM application WHERE TRUE"));
    q.and_eq("env", Param::Text(env.to_string()));
    let pattern = q.bind(Param::Text(format!("%{escaped}%")));
    let limit = q.bind(Param::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    q.push(&format!(
        " AND LOWER(name) LIKE {pattern} ESCAPE '\\' ORDER BY id DESC LIMIT {limit}"
    ));
    q
}

/// Up to `limit` endpoints of one environment that need attention: disabled, or failing (their
/// deliveries have been exhausting their retries), the longest-failing first, then the most
/// recently changed.
pub fn troubled_endpoints(d: Dialect, env: &str, limit: usize) -> Sql {
    let mut q = Sql::new(
        d,
        format!(
            "SELECT {} FROM endpoint e JOIN application a ON a.id = e.app_id WHERE TRUE",
            qualified("e", ENDPOINT_COLS)
        ),
    );
    q.and_eq("a.env", Param::Text(env.to_string()));
    let limit = q.bind(Param::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    q.push(&format!(
        " AND (e.disabled OR e.failing_since IS NOT NULL) \
         ORDER BY e.failing_since IS NULL, e.failing_since, e.updated_at DESC LIMIT {limit}"
    ));
    q
}

/// Endpoints of one application, a page by id: its plain HTTP endpoints, or with
/// `destinations` its other destinations.
pub fn list_endpoints(d: Dialect, app_id: &str, destinations: bool, page: &PageRequest) -> Sql {
    let kind = if destinations { "NOT NULL" } else { "NULL" };
    let mut q = Sql::new(
        d,
        format!("SELECT {ENDPOINT_COLS} FROM endpoint WHERE destination IS {kind}"),
    );
    q.and_eq("app_id", Param::Text(app_id.to_string())).page("id", page);
    q
}

/// Event types of one environment, archived ones only when asked, a page by name.
pub fn list_event_types(d: Dialect, env: &str, include_archived: bool, page: &PageRequest) -> Sql {
    let mut q = Sql::new(d, format!("SELECT {EVENT_TYPE_COLS} FROM event_type WHERE TRUE"));
    q.and_eq("env", Param::Text(env.to_string()));
    if !include_archived {
        q.push(" AND NOT archived");
    }
    q.page("name", page);
    q
}

/// Messages of one application, filtered, a page by id. A status keeps the messages with at
/// least one delivery in it.
pub fn list_messages(d: Dialect, app_id: &str, filter: &MessageFilter, page: &PageRequest) -> Sql {
    let mut q = Sql::new(
        d,
        format!("SELECT {} FROM message m WHERE TRUE", qualified("m", MESSAGE_COLS)),
    );
    q.and_eq("m.app_id", Param::Text(app_id.to_string()))
        .message_filters("m", filter);
    if let Some(status) = filter.status {
        let mark = q.bind(Param::Int(status.code()));
        q.push(&format!(
            " AND EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.status = {mark})"
        ));
    }
    q.page("m.id", page);
    q
}

/// Deliveries of one message, a page by endpoint id.
pub fn list_message_deliveries(d: Dialect, msg_id: &str, page: &PageRequest) -> Sql {
    let mut q = Sql::new(d, format!("SELECT {DELIVERY_COLS} FROM delivery WHERE TRUE"));
    q.and_eq("msg_id", Param::Text(msg_id.to_string()))
        .page("endpoint_id", page);
    q
}

/// Deliveries of one endpoint with their messages (delivery columns, then message columns
/// from position 8), filtered, a page by message id.
pub fn list_endpoint_deliveries(d: Dialect, endpoint_id: &str, filter: &MessageFilter, page: &PageRequest) -> Sql {
    let mut q = Sql::new(
        d,
        format!(
            "SELECT {}, {} FROM delivery d JOIN message m ON m.id = d.msg_id WHERE TRUE",
            qualified("d", DELIVERY_COLS),
            qualified("m", MESSAGE_COLS)
        ),
    );
    q.and_eq("d.endpoint_id", Param::Text(endpoint_id.to_string()))
        .message_filters("m", filter);
    if let Some(status) = filter.status {
        q.and_eq("d.status", Param::Int(status.code()));
    }
    match filter.reviewed {
        Some(true) => q.push(" AND d.reviewed_at IS NOT NULL"),
        Some(false) => q.push(" AND d.reviewed_at IS NULL"),
        None => &mut q,
    };
    q.page("d.msg_id", page);
    q
}

/// Attempts of one application, filtered, a page by id.
pub fn list_attempts(d: Dialect, filter: &AttemptFilter, page: &PageRequest) -> Sql {
    let needs_message = filter.event_types.is_some() || filter.channel.is_some();
    let join = if needs_message {
        " JOIN message m ON m.id = a.msg_id"
    } else {
        ""
    };
    let mut q = Sql::new(
        d,
        format!(
            "SELECT {} FROM attempt a{join} WHERE TRUE",
            qualified("a", ATTEMPT_COLS)
        ),
    );
    // Attempts have no index on their application. A message or an endpoint named finds them
    // through its own index (the application's id only checks them); without either, they are
    // found through the application's messages, not by walking every attempt stored.
    q.and_eq("a.app_id", Param::Text(filter.app_id.clone()));
    if filter.msg_id.is_none() && filter.endpoint_id.is_none() {
        let app = q.bind(Param::Text(filter.app_id.clone()));
        q.push(&format!(
            " AND a.msg_id IN (SELECT id FROM message WHERE app_id = {app})"
        ));
    }
    if let Some(msg_id) = &filter.msg_id {
        q.and_eq("a.msg_id", Param::Text(msg_id.clone()));
    }
    if let Some(endpoint_id) = &filter.endpoint_id {
        q.and_eq("a.endpoint_id", Param::Text(endpoint_id.clone()));
    }
    if let Some(status) = filter.status {
        q.and_eq("a.status", Param::Int(status.code()));
    }
    if let Some(class) = filter.status_code_class {
        q.and_status_class("a.response_status_code", class);
    }
    if let Some(before) = filter.before {
        q.and_cmp("a.created_at", "<", Param::Int(micros(before)));
    }
    if let Some(after) = filter.after {
        q.and_cmp("a.created_at", ">", Param::Int(micros(after)));
    }
    if needs_message {
        q.message_filters(
            "m",
            &MessageFilter {
                event_types: filter.event_types.clone(),
                channel: filter.channel.clone(),
                ..MessageFilter::default()
            },
        );
    }
    q.page("a.id", page);
    q
}

/// Messages a replay or recovery would send to an endpoint, in id order after `after`.
pub fn replay_candidates(d: Dialect, query: &ReplayQuery, after: Option<&str>, limit: usize) -> Sql {
    let mcols = qualified("m", MESSAGE_COLS);
    let mut q = match &query.kind {
        ReplayKind::Missing => {
            let mut q = Sql::new(d, format!("SELECT {mcols} FROM message m WHERE TRUE"));
            q.and_eq("m.app_id", Param::Text(query.app_id.clone()));
            let endpoint = q.bind(Param::Text(query.endpoint_id.clone()));
            q.push(&format!(
                " AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.endpoint_id = {endpoint})"
            ));
            q
        }
        ReplayKind::Deliveries {
            statuses,
            event_types,
            channel,
            status_code_class,
        } => {
            let mut q = Sql::new(
                d,
                format!("SELECT {mcols} FROM delivery d JOIN message m ON m.id = d.msg_id WHERE TRUE"),
            );
            q.and_eq("d.endpoint_id", Param::Text(query.endpoint_id.clone()))
                .and_in("d.status", Param::Ints(statuses.iter().map(|s| s.code()).collect()))
                .message_filters(
                    "m",
                    &MessageFilter {
                        event_types: event_types.clone(),
                        channel: channel.clone(),
                        ..MessageFilter::default()
                    },
                );
            if let Some(class) = status_code_class {
                // The class of the delivery's latest response.
                q.and_status_class(
                    "(SELECT a.response_status_code FROM attempt a \
                     WHERE a.msg_id = d.msg_id AND a.endpoint_id = d.endpoint_id ORDER BY a.id DESC LIMIT 1)",
                    *class,
                );
            }
            q
        }
    };
    q.and_cmp("m.created_at", ">=", Param::Int(micros(query.since)))
        .and_cmp("m.created_at", "<=", Param::Int(micros(query.until)));
    if let Some(after) = after {
        q.and_cmp("m.id", ">", Param::Text(after.to_string()));
    }
    let limit = q.bind(Param::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    q.push(&format!(" ORDER BY m.id ASC LIMIT {limit}"));
    q
}

/// Background tasks of one environment, filtered, a page by id.
pub fn list_tasks(d: Dialect, env: &str, filter: &TaskFilter, page: &PageRequest) -> Sql {
    let mut q = Sql::new(
        d,
        format!(
            "SELECT {} FROM task t JOIN application a ON a.id = t.app_id WHERE TRUE",
            qualified("t", TASK_COLS)
        ),
    );
    q.and_eq("a.env", Param::Text(env.to_string()));
    if let Some(status) = filter.status {
        q.and_eq("t.status", Param::Text(status.as_str().to_string()));
    }
    if let Some(kind) = &filter.kind {
        q.and_eq("t.kind", Param::Text(kind.clone()));
    }
    q.page("t.id", page);
    q
}

/// Rows of `table` (`delivery` or `attempt`) of an endpoint created in `[since, until]`, as
/// `(status, count)` rows for [`status_counts`].
pub fn count_by_status(d: Dialect, table: &str, endpoint_id: &str, since: DateTime<Utc>, until: DateTime<Utc>) -> Sql {
    let mut q = Sql::new(d, format!("SELECT status, COUNT(*) FROM {table} WHERE TRUE"));
    q.and_eq("endpoint_id", Param::Text(endpoint_id.to_string()))
        .and_cmp("created_at", ">=", Param::Int(micros(since)))
        .and_cmp("created_at", "<=", Param::Int(micros(until)))
        .push(" GROUP BY status");
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cursor;

    #[test]
    fn placeholders_lists_and_json_arrays_are_spelled_per_dialect() {
        let filter = MessageFilter {
            event_types: Some(vec!["a.b".into(), "c.d".into()]),
            channel: Some("eu".into()),
            ..MessageFilter::default()
        };
        let page = PageRequest::first(10, false);
        let lite = list_messages(Dialect::Sqlite, "app_1", &filter, &page);
        assert!(lite.text().contains("m.app_id = ?1"), "{}", lite.text());
        assert!(lite
            .text()
            .contains("m.event_type IN (SELECT value FROM json_each(?2))"));
        assert!(lite
            .text()
            .contains("EXISTS (SELECT 1 FROM json_each(m.channels) WHERE json_each.value = ?3)"));
        assert!(lite.text().ends_with("ORDER BY m.id DESC LIMIT ?4"), "{}", lite.text());
        assert_eq!(
            lite.params(),
            [
                Param::Text("app_1".into()),
                Param::Text(r#"["a.b","c.d"]"#.into()),
                Param::Text("eu".into()),
                Param::Int(11)
            ]
        );

        let pg = list_messages(Dialect::Postgres, "app_1", &filter, &page);
        assert!(pg.text().contains("m.app_id = $1"));
        assert!(pg.text().contains("m.event_type = ANY($2)"));
        assert!(pg.text().contains("m.channels ? $3"));
        assert!(pg.text().ends_with("ORDER BY m.id DESC LIMIT $4"));
        assert_eq!(pg.params()[1], Param::Texts(vec!["a.b".into(), "c.d".into()]));
    }

    #[test]
    fn a_cursor_continues_after_its_key_in_the_scan_order() {
        let page = PageRequest {
            limit: 2,
            cursor: Some(Cursor {
                key: "app_9".into(),
                backwards: false,
            }),
            ascending: true,
        };
        let q = list_applications(Dialect::Postgres, "live", &page);
        let op = if page.scan_ascending() { ">" } else { "<" };
        assert!(q.text().contains(&format!("AND id {op} $2")), "{}", q.text());
        assert_eq!(q.params()[1], Param::Text("app_9".into()));
        assert_eq!(q.params()[2], Param::Int(3));
    }

    #[test]
    fn status_rows_add_up_by_status_and_unknown_codes_are_ignored() {
        let rows = [
            (MessageStatus::Success.code(), 3),
            (MessageStatus::Fail.code(), 2),
            (MessageStatus::Success.code(), 1),
            (99, 7),
        ];
        let counts = status_counts(rows);
        assert_eq!(
            (counts.success, counts.fail, counts.pending, counts.sending),
            (4, 2, 0, 0)
        );
    }

    #[test]
    fn qualified_columns_carry_the_alias() {
        assert_eq!(qualified("d", DELIVERY_COLS).split(", ").count(), 8);
        assert!(qualified("d", DELIVERY_COLS).starts_with("d.id, d.msg_id"));
    }
}
