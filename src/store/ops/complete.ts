/**
 * complete(job, {processor, result}, now) → boolean.
 * Fenced: acts only while the job still carries this lease token and the lease has not run out
 * at `now`; otherwise returns false and changes nothing (a zombie worker cannot commit).
 * Deletes the job, records the effect once per (event, processor), moves the event to
 * `processed` with history and notification, and queues the delivery to the event's channel.
 */
import type { Db } from '../db.js';
import { isUuid } from '../../core/ids.js';
import type { CompleteInput, JobRef } from '../types.js';
import { OUTBOX_CHANNEL, recordChangesSql } from './changes.js';

const COMPLETE_SQL = `
WITH done AS (
  DELETE FROM jobs WHERE event_id = $1 AND lease_token = $2 AND lease_expires_at > $3
  RETURNING event_id
),
effect AS (
  INSERT INTO processed_effects (event_id, processor, result, created_at)
  SELECT event_id, $4, $5::jsonb, $3 FROM done
  ON CONFLICT (event_id, processor) DO NOTHING
),
changed AS (
  UPDATE events SET status = 'processed', processed_at = $3, updated_at = $3, version = events.version + 1
  FROM done WHERE events.id = done.event_id
  RETURNING events.*
),
${recordChangesSql('changed', '$3', { delivery: true })}
SELECT c.id::text AS id FROM changed c`;

export async function complete(db: Db, job: JobRef, input: CompleteInput, now: Date): Promise<boolean> {
  if (!isUuid(job.eventId) || !/^\d+$/.test(job.leaseToken)) return false;
  const result = input.result === undefined ? null : JSON.stringify(input.result);
  return db.tx(async (tx) => {
    const rows = await tx.query(COMPLETE_SQL, [job.eventId, job.leaseToken, now, input.processor, result]);
    if (rows.length === 0) return false;
    tx.notify([OUTBOX_CHANNEL]);
    return true;
  });
}
