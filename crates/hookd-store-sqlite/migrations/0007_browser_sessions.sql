-- hookd schema, version 7 (SQLite): signed-in browsers of the dashboard and the consumer
-- portal. Only the hash of a session cookie's secret is stored.
CREATE TABLE browser_session (
    id             TEXT PRIMARY KEY,
    hash           TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the cookie's secret
    env            TEXT NOT NULL,
    app_id         TEXT,                      -- NULL: an operator; else the portal's application
    capabilities   TEXT NOT NULL DEFAULT '[]',-- JSON array of Svix capability names
    read_only      INTEGER NOT NULL DEFAULT 0,
    portal_session TEXT,                      -- the Svix sessionId of the portal link
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX browser_session_group ON browser_session (app_id, env, created_at);
CREATE INDEX browser_session_expiry ON browser_session (expires_at);
