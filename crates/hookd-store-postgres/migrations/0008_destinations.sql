-- hookd schema, version 8 (PostgreSQL): destinations and polling consumers.

-- An endpoint that is not a plain HTTP endpoint (a destination: polling, FIFO, RabbitMQ,
-- PostgreSQL table) keeps its kind and settings here; NULL for an HTTP endpoint.
ALTER TABLE endpoint ADD COLUMN destination JSONB;

-- Pollers read an application's messages in an order no later commit can step behind: by the
-- id of the transaction that stored each message, and only from transactions older than every
-- one still running (pg_snapshot_xmin), so a message that commits late is never behind the
-- position a poller has already passed. Existing rows take this migration's transaction id
-- (the volatile default rewrites the table once).
ALTER TABLE message ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX message_app_xid ON message (app_id, xid, id);

-- Where each consumer of a polling destination stands: the position after the last message
-- it was handed. Deleted with its destination or application.
CREATE TABLE poll_consumer (
    endpoint_id TEXT COLLATE "C" NOT NULL,
    consumer_id TEXT COLLATE "C" NOT NULL,
    app_id      TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    msg_id      TEXT COLLATE "C" NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, consumer_id)
);
CREATE INDEX poll_consumer_app ON poll_consumer (app_id);
