-- Fencing for leases. Each claim stamps the delivery with a fresh random token; a node's
-- attempt record and lease renewals apply only while the token is still the one it claimed
-- with, so a node whose lease ran out and was taken over (it was partitioned, paused, or slow)
-- cannot undo the newer owner's outcome. 0 means "no claim since creation" (or created unleased).
ALTER TABLE delivery ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;

-- No schema change, a new value: `next_trigger` 2 marks a resend requested while the delivery
-- was leased (an attempt in flight). The attempt's record then keeps the resend's due time and
-- turns the mark into 1 (manual), instead of overwriting it; a claim reads 2 as manual.

-- The operational-webhook outbox: events (message.attempt.exhausted, endpoint.disabled, …)
-- written in the same transaction as the change that causes them, then published by a loop
-- that removes each row once its message is stored. A crash between the two loses nothing;
-- the row's id doubles as the message's eventId, so publishing twice (two nodes, or a crash
-- after the publish) stores it once.
CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    data       JSONB NOT NULL,
    created_at BIGINT NOT NULL
);
