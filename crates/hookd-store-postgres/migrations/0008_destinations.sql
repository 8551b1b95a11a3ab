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

-- FIFO destinations: a delivery in an ordered lane carries the lane's number (NULL for every
-- other delivery). It is never due for the claim (next_attempt_at stays NULL): the FIFO engine
-- sends each lane's deliveries in the order their publishes committed, by the storing
-- transaction's id (below the snapshot's xmin, as the poller reads messages). Rows stored
-- before this migration keep a NULL xid; none of them is in a lane.
ALTER TABLE delivery ADD COLUMN lane INTEGER;
ALTER TABLE delivery ADD COLUMN xid xid8;
ALTER TABLE delivery ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX delivery_lane ON delivery (endpoint_id, lane, xid, msg_id) WHERE lane IS NOT NULL AND status IN (1, 3);

-- One row per lane of a FIFO destination (at most `fifo::LANES` per destination, created by
-- the first publish to reach the lane): which node works on it (a lease, fenced by a token),
-- and when its head may next be tried (after a failed attempt, or once a batch that is not
-- full has waited long enough). While `fill` is above 0 the lane waits for its batch to fill:
-- it is due as soon as that many deliveries wait, whatever `retry_at` says.
CREATE TABLE fifo_lane (
    endpoint_id TEXT COLLATE "C" NOT NULL,
    lane        INTEGER NOT NULL,
    app_id      TEXT COLLATE "C" NOT NULL,
    lease_token BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT NOT NULL DEFAULT 0,
    retry_at    BIGINT NOT NULL DEFAULT 0,
    fill        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, lane)
);
CREATE INDEX fifo_lane_app ON fifo_lane (app_id);
