/**
 * sweepExpiredLeases(now) → the jobs recovered: each event's id and where it went (`queued` or
 * `failed`), for the maintenance log.
 * Jobs whose lease ran out (their worker died or stalled): when attempts are exhausted the job
 * is deleted and the event `failed`; otherwise the lease is cleared, the job is ready at once and
 * the event is back to `queued`. last_error 'lease expired', history and notification either way.
 * SKIP LOCKED: a job a worker is completing right now is left for the next sweep.
 */
import type { Db } from '../db.js';
import type { SweptLease } from '../types.js';
import { OUTBOX_CHANNEL, enterDeadLettersSql, jobsChannel, recordChangesSql } from './changes.js';

export const LEASE_EXPIRED = 'lease expired';

const SWEEP_SQL = `
WITH expired AS (
  SELECT event_id FROM jobs
  WHERE lease_token IS NOT NULL AND lease_expires_at <= $1
  ORDER BY lease_expires_at
  FOR UPDATE SKIP LOCKED
),
dead AS (
  DELETE FROM jobs USING expired
  WHERE jobs.event_id = expired.event_id AND jobs.attempts >= jobs.max_attempts
  RETURNING jobs.*
),
requeued AS (
  UPDATE jobs SET locked_by = NULL, lease_token = NULL, lease_expires_at = NULL, run_at = $1
  FROM expired
  WHERE jobs.event_id = expired.event_id AND jobs.attempts < jobs.max_attempts
  RETURNING jobs.*
),
outcome AS (
  SELECT event_id, 'failed' AS status, attempts, queue FROM dead
  UNION ALL
  SELECT event_id, 'queued' AS status, attempts, queue FROM requeued
),
changed AS (
  UPDATE events SET status = o.status, attempts = o.attempts, last_error = '${LEASE_EXPIRED}', updated_at = $1,
    version = events.version + 1
  FROM outcome o WHERE events.id = o.event_id
  RETURNING events.*
),
${recordChangesSql('changed', '$1')},
${enterDeadLettersSql('changed', '$1')}
SELECT o.event_id::text AS event_id, o.queue, o.status, o.attempts FROM outcome o`;

export async function sweepExpiredLeases(db: Db, now: Date): Promise<SweptLease[]> {
  return db.tx(async (tx) => {
    const rows = await tx.query<{ event_id: string; queue: string; status: 'queued' | 'failed'; attempts: number }>(SWEEP_SQL, [now]);
    if (rows.length > 0) {
      const queues = rows.filter((r) => r.status === 'queued').map((r) => jobsChannel(r.queue));
      tx.notify([OUTBOX_CHANNEL, ...queues]);
    }
    return rows.map((r) => ({ eventId: r.event_id, status: r.status, attempts: r.attempts }));
  });
}
