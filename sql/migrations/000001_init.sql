-- Initial schema: principals and policy, events with their history, the job queue with leases,
-- the transactional outbox, the processed-effects log and maintenance tasks.

CREATE TABLE roles (
  name        text PRIMARY KEY,
  permissions jsonb NOT NULL DEFAULT '[]'::jsonb,
  builtin     boolean NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO roles (name, permissions, builtin) VALUES
  ('admin',   '["*"]', true),
  ('service', '["events.*", "channels.*", "presence.get.presence_list", "common.*"]', true),
  ('user',    '["events.post.event_ingest", "events.get.event_detail", "events.get.event_list", "presence.get.presence_list", "common.*"]', true);

CREATE TABLE principals (
  id                  text PRIMARY KEY,
  kind                text NOT NULL CHECK (kind IN ('service', 'user')),
  role                text NOT NULL REFERENCES roles (name),
  extra_permissions   jsonb NOT NULL DEFAULT '[]'::jsonb,
  revoked_permissions jsonb NOT NULL DEFAULT '[]'::jsonb,
  disabled            boolean NOT NULL DEFAULT false,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  principal_id text NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
  -- SHA-256 of the whole key, hex. The key itself is never stored.
  hash         text NOT NULL UNIQUE,
  prefix       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz
);
CREATE INDEX api_keys_principal ON api_keys (principal_id);

CREATE TABLE channel_members (
  channel    text NOT NULL,
  user_id    text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel, user_id)
);
CREATE INDEX channel_members_user ON channel_members (user_id);

CREATE TABLE events (
  id              uuid PRIMARY KEY,
  type            text NOT NULL,
  payload         jsonb NOT NULL,
  producer_id     text NOT NULL,
  user_id         text NOT NULL,
  channel         text,
  idempotency_key text,
  -- SHA-256 of the canonical request, to tell a replay from a conflicting reuse of a key.
  request_hash    text,
  occurred_at     timestamptz NOT NULL,
  status          text NOT NULL CHECK (status IN ('accepted', 'queued', 'processing', 'processed', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  max_attempts    integer NOT NULL,
  last_error      text,
  version         integer NOT NULL DEFAULT 1,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  processed_at    timestamptz
);
-- Idempotency keys are scoped to the producer; pruning clears the key after retention.
CREATE UNIQUE INDEX events_idempotency ON events (producer_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_user ON events (user_id, id DESC);
CREATE INDEX events_producer ON events (producer_id, id DESC);
CREATE INDEX events_status ON events (status, id DESC);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE event_history (
  id         bigserial PRIMARY KEY,
  event_id   uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  status     text NOT NULL,
  attempt    integer NOT NULL,
  error      text,
  version    integer NOT NULL,
  at         timestamptz NOT NULL
);
CREATE INDEX event_history_event ON event_history (event_id, version);

-- One row per event still to be processed. Deleted when the event reaches a terminal status,
-- so claims scan a small table. The lease (locked_by, lease_token, lease_expires_at) fences
-- completion: only the holder of the current token may complete or fail the job.
CREATE SEQUENCE lease_tokens;
CREATE TABLE jobs (
  event_id         uuid PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
  queue            text NOT NULL DEFAULT 'processing',
  type             text NOT NULL,
  run_at           timestamptz NOT NULL,
  attempts         integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL,
  locked_by        text,
  lease_token      bigint,
  lease_expires_at timestamptz
);
CREATE INDEX jobs_ready ON jobs (queue, run_at) WHERE lease_token IS NULL;
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE lease_token IS NOT NULL;

-- Transactional outbox: written in the same transaction as each status change; the relay
-- publishes rows in id order and deletes them. `version` orders updates of one event.
CREATE TABLE outbox (
  id         bigserial PRIMARY KEY,
  event_id   uuid NOT NULL,
  channel    text NOT NULL,
  event      text NOT NULL,
  payload    jsonb NOT NULL,
  created_at timestamptz NOT NULL
);

-- Exactly-once effects: a processor's result is recorded once per (event, processor).
CREATE TABLE processed_effects (
  event_id   uuid NOT NULL,
  processor  text NOT NULL,
  result     jsonb,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (event_id, processor)
);

-- Periodic work of the maintenance queue. Claimed like jobs, so several maintenance
-- processes share the work without running a task twice at once.
CREATE TABLE maintenance_tasks (
  name         text PRIMARY KEY,
  run_at       timestamptz NOT NULL,
  locked_by    text,
  locked_until timestamptz,
  last_run_at  timestamptz,
  last_error   text
);
INSERT INTO maintenance_tasks (name, run_at) VALUES
  ('sweep_leases', now()),
  ('prune_idempotency', now());
