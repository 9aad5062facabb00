/**
 * ingest(items, now) → IngestOutcome[] in input order.
 * The whole batch is ONE statement, hence one transaction and one round trip: a multi-row insert
 * that writes the events (status queued, version 2), their jobs, and one history entry and one
 * outbox notification each that stand for both `accepted` and `queued` (`with_accepted`, migration
 * 000007: readers expand them), and wakes workers and the relay at commit.
 * ON CONFLICT DO NOTHING makes duplicates in one batch and concurrent duplicates across
 * transactions resolve to the one row that won; only when a key was already taken does a second
 * statement read the winners (same request hash → replayed, other → conflict). That read runs
 * after the insert committed, so it sees rows committed by concurrent transactions too.
 */
import type { Db } from '../db.js';
import type { IngestItem, IngestOutcome } from '../types.js';
import type { TemEvent } from '../../core/types.js';
import { toEvent, type EventRow } from '../rows.js';
import { OUTBOX_CHANNEL, OUTBOX_INSERT_COLUMNS, PROCESSING_QUEUE, jobsChannel, updateRowSql } from './changes.js';
import { createError, type TemError } from '../../core/errors.js';
import { mapDbError } from '../errors.js';

const INSERT_SQL = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
    ord int, id uuid, type text, payload jsonb, producer_id text, user_id text, channel text,
    idempotency_key text, request_hash text, occurred_at timestamptz, max_attempts int)
),
ins AS (
  INSERT INTO events (id, type, payload, producer_id, user_id, channel, idempotency_key, request_hash,
    occurred_at, status, attempts, max_attempts, version, created_at, updated_at)
  SELECT id, type, payload, producer_id, user_id, channel, idempotency_key, request_hash,
    occurred_at, 'queued', 0, max_attempts, 2, $2, $2
  FROM input ORDER BY ord
  ON CONFLICT (producer_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING id, type, user_id, max_attempts, attempts, updated_at, last_error
),
hist AS (
  INSERT INTO event_history (event_id, status, attempt, error, version, at, with_accepted)
  SELECT ins.id, 'queued', 0, NULL, 2, $2, true FROM ins
),
job AS (
  INSERT INTO jobs (event_id, queue, type, run_at, attempts, max_attempts)
  SELECT id, '${PROCESSING_QUEUE}', type, $2, 0, max_attempts FROM ins
),
note AS (
  INSERT INTO outbox (${OUTBOX_INSERT_COLUMNS}, created_at, with_accepted)
  SELECT ${updateRowSql('x')}, $2, true
  FROM (SELECT ins.id, 'queued' AS status, ins.user_id, ins.type, ins.attempts, ins.updated_at, 2 AS version, ins.last_error FROM ins) x
  -- Input order: a batch's ids are minted in order (uuidv7 counts up within a millisecond), so
  -- ordering by id needs no join back to the input, which then is read once and not kept.
  ORDER BY x.id
)
-- Wakes workers and the relay at commit. The subquery runs once, and only when a row was
-- inserted. In the statement rather than after it (src/store/notifier.ts): an API process
-- runs a couple of ingest commits at a time at most, and a separate NOTIFY round trip per batch measured
-- about 15 % of ingest throughput.
SELECT ins.id::text AS id,
  (SELECT count(pg_notify(c, '')) FROM unnest(ARRAY['${jobsChannel(PROCESSING_QUEUE)}', '${OUTBOX_CHANNEL}']) AS c) AS woke
FROM ins`;

const EXISTING_SQL = `
SELECT e.id::text AS id, e.type, e.payload, e.producer_id, e.user_id, e.channel, e.idempotency_key,
  e.request_hash, e.occurred_at, e.status, e.attempts, e.max_attempts, e.last_error, e.version,
  e.created_at, e.updated_at, e.processed_at, j.run_at
FROM events e LEFT JOIN jobs j ON j.event_id = e.id
WHERE e.idempotency_key IS NOT NULL AND (e.producer_id, e.idempotency_key) IN (
  SELECT producer_id, idempotency_key FROM jsonb_to_recordset($1::jsonb) AS t(producer_id text, idempotency_key text)
)`;

const keyOf = (producerId: string, key: string): string => `${producerId}\u0000${key}`;

/**
 * The event as INSERT_SQL wrote it, built from the input instead of read back: the statement
 * returns only ids, so a 1 KiB payload is not sent back and parsed again for every event.
 * (The stored payload is the same JSON; jsonb may order its keys differently.)
 */
function createdEvent(it: IngestItem, now: Date): TemEvent {
  return {
    id: it.id,
    type: it.type,
    payload: it.payload,
    producerId: it.producerId,
    userId: it.userId,
    channel: it.channel,
    idempotencyKey: it.idempotencyKey,
    occurredAt: it.occurredAt,
    status: 'queued',
    attempts: 0,
    maxAttempts: it.maxAttempts,
    lastError: null,
    runAt: now,
    createdAt: now,
    updatedAt: now,
    processedAt: null,
    version: 2,
  };
}

export async function ingest(db: Db, items: IngestItem[], now: Date): Promise<IngestOutcome[]> {
  if (items.length === 0) return [];
  const input = items.map((it, ord) => ({
    ord,
    id: it.id,
    type: it.type,
    payload: it.payload,
    producer_id: it.producerId,
    user_id: it.userId,
    channel: it.channel,
    idempotency_key: it.idempotencyKey,
    request_hash: it.requestHash,
    occurred_at: it.occurredAt.toISOString(),
    max_attempts: it.maxAttempts,
  }));
  const created = await db.query<{ id: string }>(INSERT_SQL, [JSON.stringify(input), now]);
  // After the statement committed: wake workers and the relay (src/store/notifier.ts).
  const byId = new Set(created.map((r) => r.id));
  const missing = items.filter((it) => !byId.has(it.id));
  const byKey = new Map<string, EventRow>();
  // The insert has committed: from here on a failure is the missing items' alone. Thrown, it
  // would fail the whole batch — created events answered 503 (and retried as duplicates by
  // clients without a key), or the batch retried item by item, inserting its events again.
  let lookupFailed: TemError | null = null;
  if (missing.length > 0) {
    const keys = missing.map((it) => ({ producer_id: it.producerId, idempotency_key: it.idempotencyKey }));
    try {
      const rows = await db.query<EventRow>(EXISTING_SQL, [JSON.stringify(keys)]);
      for (const r of rows) byKey.set(keyOf(r.producer_id, r.idempotency_key ?? ''), r);
    } catch (err) {
      lookupFailed = mapDbError(err);
    }
  }
  return items.map((it): IngestOutcome => {
    if (byId.has(it.id)) return { outcome: 'created', event: createdEvent(it, now) };
    if (lookupFailed) return { outcome: 'failed', error: lookupFailed };
    const existing = it.idempotencyKey === null ? undefined : byKey.get(keyOf(it.producerId, it.idempotencyKey));
    // Only if the winner's key was pruned in between: rare enough to ask the caller to retry.
    if (!existing) return { outcome: 'failed', error: createError('CONFLICT', 'The idempotency key changed hands; retry the request') };
    const same = existing.request_hash === it.requestHash;
    return { outcome: same ? 'replayed' : 'conflict', event: toEvent(existing) };
  });
}
