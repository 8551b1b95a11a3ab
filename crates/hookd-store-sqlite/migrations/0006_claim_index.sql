-- hookd schema, version 6 (SQLite): the due index covers what a claim reads, so walking past
-- deliveries of endpoints and applications that cannot take more touches no table rows.
CREATE INDEX delivery_due_claim ON delivery (next_attempt_at, lease_until, endpoint_id, app_id, id)
    WHERE next_attempt_at IS NOT NULL;
DROP INDEX delivery_due;
