-- hookd schema, version 1 (PostgreSQL).
--
-- The same tables, columns and indexes as the SQLite backend's versions 1 and 2 together, so
-- both backends answer every Store call the same way; only the types are PostgreSQL's own.
--
-- Times are BIGINT microseconds since the Unix epoch, as on SQLite: the store converts at the
-- edge, comparisons are plain integer comparisons, and a value round-trips bit for bit (a
-- TIMESTAMPTZ would too, but would make the two backends' queries differ for no gain).
--
-- Keys that listings sort or page by (ids, uids, event type names) are TEXT COLLATE "C": ids
-- are time-sortable only under byte order (their base62 alphabet is in ASCII order), which is
-- what SQLite compares by. Under a linguistic collation such as en_US, `A` and `a` sort
-- together and keyset pages would come back in a different order than on SQLite.
--
-- JSON-valued columns are JSONB: the channel filter uses the `?` operator on it, and nothing
-- reads these values back byte for byte (they are parsed into maps and lists). The message
-- payload is the exception: it is TEXT because it must go out exactly as it was published.
--
-- Every token, application and event type carries its environment ('live' or 'test');
-- endpoints, messages, deliveries and attempts belong to an application and inherit its
-- environment, so a new environment never needs a migration of those tables.
--
-- The hot tables (message, delivery, attempt) have no foreign keys: their integrity is kept by
-- the store's code (whole-application deletes are done explicitly, in one transaction), which
-- keeps inserts on the ingest path to plain index maintenance.
--
-- Nothing here names a schema: the tables go into the first schema of the connection's
-- search_path, so one database can hold several hookd installations (or one per test).

CREATE TABLE token (
    id          TEXT COLLATE "C" PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,       -- hex SHA-256 of the secret; the secret is never stored
    env         TEXT NOT NULL,
    app_id      TEXT COLLATE "C",           -- NULL: admin token of the environment
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);

CREATE TABLE application (
    id            TEXT COLLATE "C" PRIMARY KEY,
    env           TEXT NOT NULL,
    uid           TEXT COLLATE "C",
    name          TEXT NOT NULL,
    metadata      JSONB NOT NULL DEFAULT '{}',
    throttle_rate INTEGER,                  -- messages per second; fits a u16
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- Uids are optional, so uniqueness holds only among rows that have one.
CREATE UNIQUE INDEX application_uid ON application (env, uid) WHERE uid IS NOT NULL;
CREATE INDEX application_env_id ON application (env, id);

CREATE TABLE endpoint (
    id            TEXT COLLATE "C" PRIMARY KEY,
    app_id        TEXT COLLATE "C" NOT NULL,
    uid           TEXT COLLATE "C",
    url           TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    event_types   JSONB,                    -- array of names, NULL = every type
    channels      JSONB,                    -- array of channels, NULL = every channel
    throttle_rate INTEGER,
    metadata      JSONB NOT NULL DEFAULT '{}',
    secret        TEXT NOT NULL,
    headers       JSONB NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    -- Secret rotation: keys that still sign until they expire, newest first, as an array of
    -- {"key": "whsec_…"|"whsk_…", "expiresAt": "<RFC 3339>"}. At most 10 are kept.
    old_secrets   JSONB NOT NULL DEFAULT '[]',
    -- Auto-disable: when the endpoint's current run of exhausted deliveries began (NULL = healthy).
    failing_since BIGINT
);
CREATE UNIQUE INDEX endpoint_uid ON endpoint (app_id, uid) WHERE uid IS NOT NULL;
CREATE INDEX endpoint_app_id ON endpoint (app_id, id);

CREATE TABLE event_type (
    env          TEXT NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    description  TEXT NOT NULL,
    archived     BOOLEAN NOT NULL DEFAULT FALSE,
    deprecated   BOOLEAN NOT NULL DEFAULT FALSE,
    feature_flag TEXT,
    schemas      JSONB,                     -- JSON Schemas by version, {"1": {...}}
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (env, name)
);

CREATE TABLE message (
    id          TEXT COLLATE "C" PRIMARY KEY,
    app_id      TEXT COLLATE "C" NOT NULL,
    event_id    TEXT COLLATE "C",
    event_type  TEXT NOT NULL,
    channels    JSONB,                      -- array of channels or NULL
    payload     TEXT,                       -- exact text as published; NULL once expunged
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
-- The publisher's event id deduplicates within an application; concurrent publishes of the
-- same id race on this index and the loser gets a unique violation (Conflict).
CREATE UNIQUE INDEX message_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX message_app_id ON message (app_id, id);

-- One row per (message, endpoint): the delivery queue. A row is due when next_attempt_at has
-- passed and lease_until has too; a claim sets lease_until (locking the rows it takes with
-- FOR UPDATE SKIP LOCKED, so nodes claiming at once split the work), recording an attempt
-- clears it. A node that dies only delays its deliveries until their leases run out.
CREATE TABLE delivery (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    msg_id             TEXT COLLATE "C" NOT NULL,
    endpoint_id        TEXT COLLATE "C" NOT NULL,
    app_id             TEXT COLLATE "C" NOT NULL,
    status             SMALLINT NOT NULL,   -- 0 success, 1 pending, 2 fail, 3 sending
    scheduled_attempts BIGINT NOT NULL DEFAULT 0,
    total_attempts     BIGINT NOT NULL DEFAULT 0,
    next_attempt_at    BIGINT,              -- NULL when nothing is due
    next_trigger       SMALLINT NOT NULL DEFAULT 0,  -- 0 scheduled, 1 manual
    lease_until        BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    -- A delivery whose endpoint is disabled is parked (kept, not due) instead of dropped;
    -- enabling the endpoint makes every parked delivery due again.
    parked             BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX delivery_msg_endpoint ON delivery (msg_id, endpoint_id);
CREATE INDEX delivery_endpoint_msg ON delivery (endpoint_id, msg_id);
CREATE INDEX delivery_app ON delivery (app_id);
-- Only rows with a due time are queue entries; finished and parked deliveries stay out of the
-- index the claim scans, so the queue's cost follows the work waiting, not the history kept.
CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX delivery_parked ON delivery (endpoint_id) WHERE parked;

CREATE TABLE attempt (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    delivery_id          TEXT COLLATE "C" NOT NULL,
    msg_id               TEXT COLLATE "C" NOT NULL,
    endpoint_id          TEXT COLLATE "C" NOT NULL,
    app_id               TEXT COLLATE "C" NOT NULL,
    url                  TEXT NOT NULL,
    response             TEXT NOT NULL,
    response_status_code BIGINT NOT NULL,   -- 0 when there was no HTTP response
    response_duration_ms BIGINT NOT NULL,
    status               SMALLINT NOT NULL,
    trigger_type         SMALLINT NOT NULL,
    attempt_number       BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    -- What was sent (sensitive values redacted) and what came back.
    request_headers      JSONB NOT NULL DEFAULT '{}',   -- object
    response_headers     JSONB NOT NULL DEFAULT '[]'    -- [[name, value]], in order received
);
CREATE INDEX attempt_msg ON attempt (msg_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);
CREATE INDEX attempt_app ON attempt (app_id, id);

-- Idempotency keys: the first successful response to a POST, replayed for 24 hours to the same
-- token. A row with status 0 is a request still in progress. Nodes race for a key through
-- INSERT … ON CONFLICT on the primary key, so exactly one of them starts the request.
CREATE TABLE idempotency (
    key        TEXT PRIMARY KEY,            -- hex SHA-256 of token, method, path and client key
    status     INTEGER NOT NULL DEFAULT 0,
    body       BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX idempotency_expires ON idempotency (expires_at);

-- Background tasks (recover, replay-missing, bulk-replay) and their progress.
CREATE TABLE task (
    id          TEXT COLLATE "C" PRIMARY KEY,   -- qtask_…
    app_id      TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C",
    kind        TEXT NOT NULL,              -- endpoint.recover, endpoint.replay, endpoint.bulk-replay
    status      TEXT NOT NULL,              -- running, finished, failed
    data        JSONB NOT NULL DEFAULT '{}', -- progress, e.g. {"messagesSent": 12}
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX task_app ON task (app_id, id);
