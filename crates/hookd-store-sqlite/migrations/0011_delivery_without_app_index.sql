-- hookd schema, version 11 (SQLite): deliveries lose their index on the application. Only
-- deleting an application read it, and that finds the deliveries through the application's
-- endpoints instead (`delivery_endpoint_msg`); every published delivery wrote one B-tree less.
DROP INDEX delivery_app;
