-- Leaner writes on the hot path. Every status change inserts history in the same statement that
-- changes the event, and events are never deleted, so the foreign keys from event_history and
-- jobs to events only cost a trigger (an index probe and a row lock on the event) per inserted
-- row. History is ordered by the event's version, which every change bumps, so its serial key
-- is dropped too: one index (event_id, version) per history row instead of two.
ALTER TABLE event_history DROP CONSTRAINT event_history_event_id_fkey;
ALTER TABLE jobs DROP CONSTRAINT jobs_event_id_fkey;
ALTER TABLE event_history DROP COLUMN id;
