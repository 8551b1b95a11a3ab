-- hookd schema, version 8 (SQLite): an operator can mark a failed delivery reviewed; resending
-- it clears the mark.
ALTER TABLE delivery ADD COLUMN reviewed_at INTEGER;
