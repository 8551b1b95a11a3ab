-- hookd schema, version 12 (SQLite): attempts lose two indexes that were only ever written.
-- - The one on their id alone, which SQLite keeps for a TEXT primary key: every read of an
--   attempt names its message too and goes through `attempt_msg` (message, id). Ids stay
--   unique by construction (a time prefix and 128 random bits).
-- - `attempt_app`: every listing names a message or an endpoint, and deleting an application
--   finds its attempts through its messages (`attempt_msg`).
-- Two B-trees less for every attempt stored. SQLite cannot drop a primary key, so the table is
-- rebuilt: this migration rewrites every attempt once.
CREATE TABLE attempt_rebuilt (
    id                   TEXT NOT NULL,
    delivery_id          TEXT NOT NULL,
    msg_id               TEXT NOT NULL,
    endpoint_id          TEXT NOT NULL,
    app_id               TEXT NOT NULL,
    url                  TEXT NOT NULL,
    response             TEXT NOT NULL,
    response_status_code INTEGER NOT NULL,
    response_duration_ms INTEGER NOT NULL,
    status               INTEGER NOT NULL,
    trigger_type         INTEGER NOT NULL,
    attempt_number       INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    request_headers      TEXT NOT NULL DEFAULT '{}',   -- JSON object
    response_headers     TEXT NOT NULL DEFAULT '[]'    -- JSON [[name, value]]
);
INSERT INTO attempt_rebuilt (id, delivery_id, msg_id, endpoint_id, app_id, url, response,
    response_status_code, response_duration_ms, status, trigger_type, attempt_number, created_at,
    request_headers, response_headers)
SELECT id, delivery_id, msg_id, endpoint_id, app_id, url, response, response_status_code,
    response_duration_ms, status, trigger_type, attempt_number, created_at, request_headers,
    response_headers
FROM attempt ORDER BY rowid;
DROP TABLE attempt;
ALTER TABLE attempt_rebuilt RENAME TO attempt;
CREATE INDEX attempt_msg ON attempt (msg_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);
