-- Attempts lose their index on the application. Every listing of attempts names a message or
-- an endpoint, and deleting an application finds its attempts through its messages
-- (`attempt_msg`). Attempts are only ever inserted, so each one wrote an entry into it for
-- nothing. The primary key stays: it is the table's identity for logical replication.
DROP INDEX attempt_app;
