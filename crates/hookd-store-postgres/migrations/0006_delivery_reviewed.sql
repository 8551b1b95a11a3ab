-- hookd schema, version 6 (PostgreSQL): an operator can mark a failed delivery reviewed;
-- resending it clears the mark.
ALTER TABLE delivery ADD COLUMN reviewed_at BIGINT;
