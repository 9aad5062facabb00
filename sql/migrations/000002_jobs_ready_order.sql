-- The claim orders ready jobs by (run_at, event_id). With event_id in the index the scan returns
-- them in that order and stops after the batch; without it PostgreSQL sorted the whole backlog
-- on every claim, so claims got slower the more jobs were waiting.
DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs (queue, run_at, event_id) WHERE lease_token IS NULL;
