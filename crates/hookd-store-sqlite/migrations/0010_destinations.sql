-- hookd schema, version 10 (SQLite): destinations and polling consumers.

-- An endpoint that is not a plain HTTP endpoint (a destination: polling, FIFO, RabbitMQ,
-- PostgreSQL table) keeps its kind and settings here as JSON; NULL for an HTTP endpoint.
ALTER TABLE endpoint ADD COLUMN destination TEXT;

-- Pollers read an application's messages in the order their publishes committed. The one
-- writer assigns rowids in commit order, so this index (its entries ordered by app_id, then
-- rowid) walks an application's stream.
CREATE INDEX message_app_seq ON message (app_id);

-- Where each consumer of a polling destination stands: the position after the last message
-- it was handed. Deleted with its destination or application.
CREATE TABLE poll_consumer (
    endpoint_id TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    msg_id      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, consumer_id)
);
CREATE INDEX poll_consumer_app ON poll_consumer (app_id);
