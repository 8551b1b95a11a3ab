-- hookd schema, version 11 (PostgreSQL): an attempt's primary key becomes (msg_id, id), and
-- `attempt_msg`, the same columns without uniqueness, goes.
-- Every read of an attempt names its message (the API's and the dashboard's, retention's
-- expunging, the deletion of a message's or an application's attempts) or its endpoint
-- (`attempt_endpoint`), so the key on the id alone was only ever written: each attempt stored
-- wrote it and `attempt_msg` both. One unique index now serves as both. The table keeps a
-- primary key, its identity for logical replication; ids stay unique by construction (a time
-- prefix and 128 random bits). Building the new key reads the table once, and writes to it
-- wait meanwhile.
ALTER TABLE attempt DROP CONSTRAINT attempt_pkey;
DROP INDEX attempt_msg;
ALTER TABLE attempt ADD CONSTRAINT attempt_pkey PRIMARY KEY (msg_id, id);
