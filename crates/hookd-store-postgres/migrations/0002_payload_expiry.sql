-- hookd schema, version 2 (PostgreSQL): payload retention.
--
-- The expiry job looks for messages whose retention ended and that still hold a payload; this
-- partial index keeps that look-up small however many expired messages accumulate.
CREATE INDEX message_expiry ON message (expires_at) WHERE payload IS NOT NULL;
