-- hookd schema, version 2 (SQLite): what the full delivery engine keeps.

-- Secret rotation: keys that still sign until they expire, newest first, as a JSON array of
-- {"key": "whsec_…"|"whsk_…", "expiresAt": "<RFC 3339>"}. At most 10 are kept.
ALTER TABLE endpoint ADD COLUMN old_secrets TEXT NOT NULL DEFAULT '[]';
-- Auto-disable: when the endpoint's current run of exhausted deliveries began (NULL = healthy).
ALTER TABLE endpoint ADD COLUMN failing_since INTEGER;

-- The attempt log keeps what was sent (sensitive values redacted) and what came back.
ALTER TABLE attempt ADD COLUMN request_headers TEXT NOT NULL DEFAULT '{}';   -- JSON object
ALTER TABLE attempt ADD COLUMN response_headers TEXT NOT NULL DEFAULT '[]';  -- JSON [[name, value]]

-- A delivery whose endpoint is disabled is parked (kept, not due) instead of dropped; enabling
-- the endpoint makes every parked delivery due again.
ALTER TABLE delivery ADD COLUMN parked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX delivery_parked ON delivery (endpoint_id) WHERE parked = 1;

-- Idempotency keys: the first successful response to a POST, replayed for 24 hours to the same
-- token. A row with status 0 is a request still in progress.
CREATE TABLE idempotency (
    key        TEXT PRIMARY KEY,            -- hex SHA-256 of token, method, path and client key
    status     INTEGER NOT NULL DEFAULT 0,
    body       BLOB,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX idempotency_expires ON idempotency (expires_at);

-- Background tasks (recover, replay-missing, bulk-replay) and their progress.
CREATE TABLE task (
    id          TEXT PRIMARY KEY,           -- qtask_…
    app_id      TEXT NOT NULL,
    endpoint_id TEXT,
    kind        TEXT NOT NULL,              -- endpoint.recover, endpoint.replay, endpoint.bulk-replay
    status      TEXT NOT NULL,              -- running, finished, failed
    data        TEXT NOT NULL DEFAULT '{}', -- JSON progress, e.g. {"messagesSent": 12}
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX task_app ON task (app_id, id);
