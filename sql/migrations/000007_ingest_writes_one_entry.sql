-- An ingested event enters `accepted` and `queued` in the same statement, at the same instant, with
-- the same attempt count. Its history and its outbox notification now take one row each for the
-- two states instead of two: the `queued` row carries `with_accepted`, and readers expand it into
-- the `accepted` entry (version − 1) followed by the `queued` one (src/store/ops/get-event.ts,
-- src/store/rows.ts). Two rows fewer per ingested event measured a fifth to a third more ingest
-- throughput (docs/decisions/0019-one-row-for-accepted-and-queued.md). Rows written before this
-- migration keep their two entries and read as before.
ALTER TABLE event_history ADD COLUMN with_accepted boolean NOT NULL DEFAULT false;
ALTER TABLE outbox ADD COLUMN with_accepted boolean NOT NULL DEFAULT false;
