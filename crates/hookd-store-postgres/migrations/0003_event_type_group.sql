-- Event types can be listed under a group (e.g. `content`).
ALTER TABLE event_type ADD COLUMN group_name TEXT;
