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

-- FIFO destinations: a delivery in an ordered lane carries the lane's number (NULL for every
-- other delivery). It is never due for the claim (next_attempt_at stays NULL): the FIFO engine
-- sends each lane's deliveries oldest first, in rowid (commit) order, which this index walks.
ALTER TABLE delivery ADD COLUMN lane INTEGER;
CREATE INDEX delivery_lane ON delivery (endpoint_id, lane) WHERE lane IS NOT NULL AND status IN (1, 3);

-- One row per lane of a FIFO destination (at most `fifo::LANES` per destination, created by
-- the first publish to reach the lane): which node works on it (a lease, fenced by a token),
-- and when its head may next be tried (after a failed attempt, or once a batch that is not
-- full has waited long enough). While `fill` is above 0 the lane waits for its batch to fill:
-- it is due as soon as that many deliveries wait, whatever `retry_at` says.
CREATE TABLE fifo_lane (
    endpoint_id TEXT NOT NULL,
    lane        INTEGER NOT NULL,
    app_id      TEXT NOT NULL,
    lease_token INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER NOT NULL DEFAULT 0,
    retry_at    INTEGER NOT NULL DEFAULT 0,
    fill        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, lane)
);
CREATE INDEX fifo_lane_app ON fifo_lane (app_id);
