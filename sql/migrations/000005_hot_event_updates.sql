-- Status changes become HOT updates. An event's row changes two or three times right after it is
-- written (processing, then processed), and an index on `status` made every one of those changes
-- insert a new entry into every index of `events` (PostgreSQL can only update a row in place,
-- "heap-only", when no indexed column changed and the page has room).
--
-- What the status index served is now served by smaller sets:
--   queued / processing  → events with a `jobs` row (the job is deleted when the event is final);
--   failed               → `dead_letters`, written by the statements that fail an event and
--                          cleared by retry;
--   processed            → most events: a newest-first scan finds them at once.
CREATE TABLE dead_letters (
  event_id  uuid PRIMARY KEY,
  failed_at timestamptz NOT NULL
);
INSERT INTO dead_letters (event_id, failed_at) SELECT id, updated_at FROM events WHERE status = 'failed';
DROP INDEX events_status;
-- Room on each page for the next version of its rows, so the update can stay on the page.
ALTER TABLE events SET (fillfactor = 80);
