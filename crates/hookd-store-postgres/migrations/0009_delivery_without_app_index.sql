-- Deliveries lose their index on the application. Only deleting an application read it, and
-- that finds the deliveries through the application's endpoints instead
-- (`delivery_endpoint_msg`). Every delivery wrote an entry into it twice: when it was stored,
-- and again when its attempt was recorded (that update changes indexed columns, so it is never
-- a heap-only update and every index gets a new entry).
DROP INDEX delivery_app;
