/**
 * completeMany(items: {job, input}[], now) → boolean[] (input order).
 * The worker's group commit: many completions in one statement, so one commit (one WAL flush)
 * covers a whole batch instead of one transaction per job.
 * Each item is fenced exactly like complete(): it acts only while its job still carries that
 * lease token and the lease has not run out at `now`; otherwise its answer is false and nothing
 * of it changes, whatever the other items do. For each item that holds: the job is deleted, the
 * effect recorded once per (event, processor), the event moves to `processed` with history and
 * notification, and the delivery to the event's channel is queued — the same rows as complete().
 * One statement needs no explicit transaction (it is atomic on its own); the relay is woken
 * after it has committed.
 */
import type { Db } from '../db.js';
import { isUuid } from '../../core/ids.js';
import type { CompleteItem } from '../types.js';
import { OUTBOX_CHANNEL, recordChangesSql } from './changes.js';

// `result` travels as JSON text so a null result stays the jsonb value null (as complete() has
// always stored it) while an undefined one stays SQL NULL: jsonb_to_recordset maps JSON null
// in a jsonb column to SQL NULL.
const COMPLETE_MANY_SQL = `
WITH input AS (
  SELECT i.ord, i.event_id, i.lease_token, i.processor, i.result::jsonb AS result
  FROM jsonb_to_recordset($1::jsonb) AS i(ord int, event_id uuid, lease_token bigint, processor text, result text)
),
-- Rows locked in event_id order, as every statement that locks several leased jobs does
-- (leases.ts): in input order, a lease renewal and a completion holding the same jobs in other
-- orders deadlocked once the table was large enough for nested-loop plans.
held AS (
  SELECT jobs.event_id, input.ord, input.processor, input.result
  FROM jobs JOIN input ON jobs.event_id = input.event_id AND jobs.lease_token = input.lease_token
  WHERE jobs.lease_expires_at > $2
  ORDER BY jobs.event_id
  FOR UPDATE OF jobs
),
done AS (
  DELETE FROM jobs USING held
  WHERE jobs.event_id = held.event_id
  RETURNING jobs.event_id, held.ord, held.processor, held.result
),
effect AS (
  INSERT INTO processed_effects (event_id, processor, result, created_at)
  SELECT event_id, processor, result, $2 FROM done
  ON CONFLICT (event_id, processor) DO NOTHING
),
changed AS (
  -- The error of an earlier attempt stays in the history only: a processed event has none.
  UPDATE events SET status = 'processed', processed_at = $2, updated_at = $2, version = events.version + 1, last_error = NULL
  FROM done WHERE events.id = done.event_id
  RETURNING events.*
),
${recordChangesSql('changed', '$2', { delivery: true })}
SELECT d.ord FROM done d`;

/** A token that cannot be a bigint sequence value can hold no lease (and must not reach SQL). */
const TOKEN = /^\d{1,18}$/;

export async function completeMany(db: Db, items: CompleteItem[], now: Date): Promise<boolean[]> {
  const results = items.map(() => false);
  const rows = items.flatMap(({ job, input }, ord) =>
    isUuid(job.eventId) && TOKEN.test(job.leaseToken)
      ? [{
          ord,
          event_id: job.eventId,
          lease_token: job.leaseToken,
          processor: input.processor,
          result: input.resultJson ?? (input.result === undefined ? null : JSON.stringify(input.result)),
        }]
      : [],
  );
  if (rows.length === 0) return results;
  const done = await db.query<{ ord: number }>(COMPLETE_MANY_SQL, [JSON.stringify(rows), now]);
  for (const { ord } of done) results[ord] = true;
  if (done.length > 0) db.notify([OUTBOX_CHANNEL]);
  return results;
}
