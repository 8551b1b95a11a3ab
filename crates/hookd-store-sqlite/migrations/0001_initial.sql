-- hookd schema, version 1 (SQLite).
--
-- Times are INTEGER microseconds since the Unix epoch. JSON-valued columns (metadata, filters,
-- headers, schemas) are TEXT holding JSON. Every token, application and event type carries its
-- environment ('live' or 'test'); endpoints, messages, deliveries and attempts belong to an
-- application and inherit its environment, so a new environment never needs a migration of
-- those tables.
--
-- The hot tables (message, delivery, attempt) have no foreign keys: their integrity is kept by
-- the store's code (one writer, whole-application deletes done explicitly), which keeps inserts
-- on the ingest path to plain index maintenance.

CREATE TABLE token (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the secret; the secret is never stored
    env         TEXT NOT NULL,
    app_id      TEXT,                      -- NULL: admin token of the environment
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);

CREATE TABLE application (
    id            TEXT PRIMARY KEY,
    env           TEXT NOT NULL,
    uid           TEXT,
    name          TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    throttle_rate INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX application_uid ON application (env, uid) WHERE uid IS NOT NULL;
CREATE INDEX application_env_id ON application (env, id);

CREATE TABLE endpoint (
    id            TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL,
    uid           TEXT,
    url           TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    disabled      INTEGER NOT NULL DEFAULT 0,
    event_types   TEXT,                    -- JSON array, NULL = every type
    channels      TEXT,                    -- JSON array, NULL = every channel
    throttle_rate INTEGER,
    metadata      TEXT NOT NULL DEFAULT '{}',
    secret        TEXT NOT NULL,
    headers       TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX endpoint_uid ON endpoint (app_id, uid) WHERE uid IS NOT NULL;
CREATE INDEX endpoint_app_id ON endpoint (app_id, id);

CREATE TABLE event_type (
    env          TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    archived     INTEGER NOT NULL DEFAULT 0,
    deprecated   INTEGER NOT NULL DEFAULT 0,
    feature_flag TEXT,
    schemas      TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (env, name)
);

CREATE TABLE message (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL,
    event_id    TEXT,
    event_type  TEXT NOT NULL,
    channels    TEXT,                      -- JSON array or NULL
    payload     TEXT,                      -- exact bytes as published; NULL once expunged
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX message_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX message_app_id ON message (app_id, id);

-- One row per (message, endpoint): the delivery queue. A row is due when next_attempt_at has
-- passed and lease_until has too; a claim sets lease_until, recording an attempt clears it.
CREATE TABLE delivery (
    id                 TEXT PRIMARY KEY,
    msg_id             TEXT NOT NULL,
    endpoint_id        TEXT NOT NULL,
    app_id             TEXT NOT NULL,
    status             INTEGER NOT NULL,   -- 0 success, 1 pending, 2 fail, 3 sending
    scheduled_attempts INTEGER NOT NULL DEFAULT 0,
    total_attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER,            -- NULL when nothing is due
    next_trigger       INTEGER NOT NULL DEFAULT 0,  -- 0 scheduled, 1 manual
    lease_until        INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE UNIQUE INDEX delivery_msg_endpoint ON delivery (msg_id, endpoint_id);
CREATE INDEX delivery_endpoint_msg ON delivery (endpoint_id, msg_id);
CREATE INDEX delivery_app ON delivery (app_id);
CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE attempt (
    id                   TEXT PRIMARY KEY,
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
    created_at           INTEGER NOT NULL
);
CREATE INDEX attempt_msg ON attempt (msg_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);
CREATE INDEX attempt_app ON attempt (app_id, id);
