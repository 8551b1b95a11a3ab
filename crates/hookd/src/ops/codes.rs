//! Every error code hookd's API answers with, its HTTP status, what it means and how to fix
//! it: one table, from which `docs/error-codes.md` is generated (a test keeps the two equal).

/// Declares [`ErrorCode`] and [`ErrorCode::ALL`] from one list, so no code can be left out of
/// the table.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($status:literal, $code:literal, $meaning:literal, $fix:literal),)*) => {
        /// An error code of the API (the `code` of Svix's error body).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the documentation's table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The `code` string in the body.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status it comes with.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// When it is answered.
            pub fn meaning(self) -> &'static str {
                match self { $(ErrorCode::$variant => $meaning,)* }
            }

            /// What the client should do about it.
            pub fn fix(self) -> &'static str {
                match self { $(ErrorCode::$variant => $fix,)* }
            }
        }
    };
}

error_codes! {
    /// The body could not be read.
    GenericError = (400, "generic_error",
        "The request body could not be read (the connection broke off, or the body is not what its content type says).",
        "Send the body again, complete, as JSON."),
    /// A bad `idempotency-key`.
    InvalidIdempotencyKey = (400, "invalid_idempotency_key",
        "The `idempotency-key` header is empty, longer than 256 characters, or not visible ASCII.",
        "Send a key of 1 to 256 visible ASCII characters, for example a UUID."),
    /// Too many old secrets, or too many consumers.
    LimitReached = (400, "limit_reached",
        "A secret rotation while 10 old keys of the endpoint are still signing, or a poll or seek by a new consumer of a polling endpoint that already keeps 100 consumers' positions.",
        "Wait until the oldest previous key's grace period ends, or rotate with a shorter `gracePeriodSeconds` next time; reuse consumer ids (or delete and recreate the polling endpoint to forget them)."),
    /// An operation the destination's type has no use for.
    NotSupported = (400, "not_supported",
        "A secret rotation of a polling endpoint, which signs nothing, or a transformation (hookd runs none).",
        "Leave the operation out: polling consumers are authenticated by their API token."),
    /// A bad statistics range.
    InvalidRange = (400, "invalid_range",
        "A statistics range that is empty, reversed or longer than 90 days.",
        "Send `since` before `until`, at most 90 days apart."),
    /// No example to send.
    InvalidScheme = (400, "invalid_scheme",
        "`send-example` for an event type without a usable example.",
        "Add an example to the event type's schema, or publish a message yourself."),
    /// A bad OpenAPI import.
    InvalidSpec = (400, "invalid_spec",
        "`event-type/import/openapi` with neither or both of `spec` and `specRaw`, or a `specRaw` that is neither JSON nor YAML.",
        "Send exactly one of `spec` (a JSON object) and `specRaw` (JSON or YAML text)."),
    /// `listen` without a WebSocket.
    WebsocketRequired = (400, "websocket_required",
        "`GET /app/{app_id}/listen` without a WebSocket upgrade.",
        "Connect with a WebSocket client, for example `hookd listen`."),
    /// Nothing left to resend.
    MissingPayload = (400, "missing_payload",
        "A resend of a message whose payload has expired (`payloadRetentionPeriod`) or was expunged.",
        "Publish the message again; keep payloads longer with `payloadRetentionPeriod` if resends must stay possible."),
    /// No valid token.
    AuthenticationFailed = (401, "authentication_failed",
        "The token is missing, unknown, revoked or expired.",
        "Send `Authorization: Bearer <token>` with a live token; create one with `hookd token create`."),
    /// The token may not do this.
    InsufficientAccess = (403, "insufficient access",
        "An application token on a route that needs an admin token (or on another application).",
        "Use an admin token of the environment, or the application's own routes."),
    /// Nothing there.
    NotFound = (404, "not_found",
        "An unknown record in the path (or one of another environment or application), or an unknown route.",
        "Check the id or uid and the environment of the token."),
    /// A uniqueness rule.
    Conflict = (409, "conflict",
        "A duplicate application or endpoint `uid`, a duplicate message `eventId`, or a request with the same `idempotency-key` still in progress after 5 s.",
        "Use another uid or `eventId`, or read the existing record; retry an idempotent request once the first has finished."),
    /// The event type exists.
    EventTypeExists = (409, "event_type_exists",
        "`POST /event-type` with a name that exists.",
        "Update it with `PUT /event-type/{name}` instead."),
    /// Polling a disabled polling endpoint.
    DestinationDisabled = (409, "destination_disabled",
        "A poll or seek of a polling endpoint whose status is `disabled`.",
        "Enable it with `PATCH /app/{app_id}/destination/{id}` and `{\"status\": \"enabled\"}`, then poll again."),
    /// Too many recovery tasks.
    TooManyTasks = (409, "too_many_tasks",
        "`recover`, `replay-missing` or `bulk-replay` while 2 tasks of the application (or 32 on the node) are running.",
        "Retry when one of the running tasks has finished (see `GET /background-task`)."),
    /// The body is too large.
    PayloadTooLarge = (413, "payload_too_large",
        "A request body over `api.max_body_bytes` (1 MiB by default).",
        "Send a smaller payload, or raise `api.max_body_bytes`."),
    /// Invalid fields (a list body, not a code).
    Validation = (422, "(list body)",
        "An invalid field, query parameter or JSON; an event-type schema that is not a JSON Schema; a payload that breaks its event type's schema where validation rejects. The body is `{\"detail\": [{\"loc\", \"msg\", \"type\"}]}`, one item per problem, `loc` pointing at the field.",
        "Fix each field `loc` names."),
    /// Too many requests.
    RateLimitExceeded = (429, "rate_limit_exceeded",
        "The token made more than `api.rate_limit_per_sec` requests per second beyond its burst.",
        "Wait the seconds `Retry-After` gives, then retry."),
    /// A bug.
    ServerError = (500, "server_error",
        "An unexpected failure; the cause is only in hookd's log.",
        "Retry; if it persists, report it with the log line."),
    /// The request's deadline passed.
    Timeout = (503, "timeout",
        "The request took longer than `api.request_timeout_secs` (30 s by default), reading its body included. Nothing was changed.",
        "Retry after `Retry-After` seconds; retrying is safe."),
    /// The database cannot take it now.
    ServiceUnavailable = (503, "service_unavailable",
        "The database is unavailable or busy, or its write queue is full.",
        "Retry after `Retry-After` seconds."),
    /// The disk is full.
    InsufficientStorage = (507, "insufficient_storage",
        "The database has no room left (its disk is full); nothing was stored.",
        "Retry after `Retry-After` seconds; the operator must free space."),
}

/// The Markdown table of every code, as `docs/error-codes.md` holds it.
pub fn markdown_table() -> String {
    let mut out = String::from("| status | code | meaning | fix |\n|---|---|---|---|\n");
    for code in ErrorCode::ALL {
        let shown = match code {
            ErrorCode::Validation => "(list body)".to_string(),
            c => format!("`{}`", c.as_str()),
        };
        out.push_str(&format!(
            "| `{}` | {shown} | {} | {} |\n",
            code.status(),
            code.meaning(),
            code.fix()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_sorted_by_status() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            assert!((400..600).contains(&c.status()));
        }
        let statuses: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.status()).collect();
        assert!(statuses.is_sorted(), "the table reads in status order");
    }

    /// `docs/error-codes.md` holds the table as generated; `HOOKD_BLESS=1` writes it there.
    #[test]
    fn the_error_code_document_holds_the_generated_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/error-codes.md");
        let doc = std::fs::read_to_string(path).expect("docs/error-codes.md");
        let (start, end) = ("<!-- generated: error codes -->\n", "<!-- end: error codes -->");
        let from = doc.find(start).expect("the start marker") + start.len();
        let to = doc.find(end).expect("the end marker");
        let table = markdown_table();
        if std::env::var_os("HOOKD_BLESS").is_some() {
            std::fs::write(path, format!("{}{table}{}", &doc[..from], &doc[to..])).unwrap();
            return;
        }
        assert!(
            doc[from..to] == table,
            "docs/error-codes.md is out of date; run `HOOKD_BLESS=1 cargo test -p hookd --lib codes` and commit it"
        );
    }
}
