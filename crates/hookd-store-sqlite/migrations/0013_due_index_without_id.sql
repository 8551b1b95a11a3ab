-- hookd schema, version 13 (SQLite): the due index leaves out the delivery's text id. A claim
-- reads the id with the rest of the row it leases, by the rowid every index entry ends with, so
-- walking past deliveries of endpoints and applications that cannot take more still touches no
-- table rows. Each entry is about a third smaller, and every delivery inserts one, and moves or
-- removes it at each claim and each attempt recorded.
CREATE INDEX delivery_due ON delivery (next_attempt_at, lease_until, endpoint_id, app_id)
    WHERE next_attempt_at IS NOT NULL;
DROP INDEX delivery_due_claim;
