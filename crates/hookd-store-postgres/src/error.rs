//! Turns sqlx errors into [`StoreError`], so nothing above the store ever sees a driver type.
//!
//! The split that matters to callers is between `Unavailable` (the API answers 503 and the
//! dispatcher tries again later: the server is down, restarting, overloaded, or chose this
//! transaction as a deadlock victim) and `Internal` (a bug or corrupt data, which retrying
//! will not fix).

use hookd_store::StoreError;

/// Maps one driver error; see the module documentation for the classes.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("23505") => StoreError::Conflict(constraint_name(db.constraint())),
            // disk_full
            Some("53100") => StoreError::storage_full(e.to_string()),
            Some(code) if is_transient(code) => StoreError::Unavailable(Box::new(e)),
            _ => StoreError::Internal(Box::new(e)),
        },
        // A protocol error or a failed BEGIN means the connection's conversation broke off
        // (as when the server goes away mid-reply); the pool drops that connection and the
        // same call works on a fresh one.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::BeginFailed
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        _ => StoreError::Internal(Box::new(e)),
    }
}

/// SQLSTATEs that say "not now" rather than "never".
fn is_transient(code: &str) -> bool {
    // 08: connection exceptions. 53: insufficient resources (too many connections, disk full,
    // out of memory). 58: system errors (I/O on the server). 57014: the statement was
    // cancelled (a timeout or an operator). 57P01-57P03: the server is shutting down, crashed,
    // or not accepting connections yet. 40001/40P01: serialization failure and deadlock
    // victim, where the same call succeeds when made again.
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("58")
        || matches!(code, "57014" | "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

/// What a unique violation was about, named after the index that caught it.
fn constraint_name(constraint: Option<&str>) -> &'static str {
    match constraint {
        Some("application_uid") => "application uid",
        Some("endpoint_uid") => "endpoint uid",
        Some("message_event_id") => "message event id",
        Some("delivery_msg_endpoint") => "delivery of the message to the endpoint",
        Some("event_type_pkey") => "event type name",
        _ => "unique",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_class_shutdown_and_deadlock_codes_are_transient() {
        for code in [
            "08006", "08001", "53300", "58030", "57014", "57P01", "57P02", "57P03", "40001", "40P01",
        ] {
            assert!(is_transient(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!is_transient(code), "{code}");
        }
    }

    #[test]
    fn pool_exhaustion_io_and_broken_conversations_are_unavailable_and_a_missing_row_is_not_found() {
        assert!(matches!(map_err(sqlx::Error::PoolTimedOut), StoreError::Unavailable(_)));
        assert!(matches!(map_err(sqlx::Error::PoolClosed), StoreError::Unavailable(_)));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(matches!(map_err(sqlx::Error::Io(io)), StoreError::Unavailable(_)));
        let broken = sqlx::Error::Protocol("expecting ParseComplete but received ErrorResponse".into());
        assert!(matches!(map_err(broken), StoreError::Unavailable(_)));
        assert!(matches!(map_err(sqlx::Error::RowNotFound), StoreError::NotFound));
        let decode = sqlx::Error::Decode("bad".into());
        assert!(matches!(map_err(decode), StoreError::Internal(_)));
    }
}
