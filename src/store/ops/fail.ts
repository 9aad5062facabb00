/**
 * fail(job, {error, retryAt}, now) → boolean.
 * Fenced like complete. With retryAt: the lease is cleared and the job waits until retryAt, the
 * event goes back to `queued` with last_error. With retryAt null: the job is deleted and the event
 * is `failed` (the dead-letter set). History and notification either way.
 */
import type { Db } from '../db.js';
import type { FailInput, JobRef } from '../types.js';
import { isUuid } from '../../core/ids.js';
import { OUTBOX_CHANNEL, enterDeadLettersSql, jobsChannel, recordChangesSql } from './changes.js';

const HELD = `event_id = $1 AND lease_token = $2 AND lease_expires_at > $3`;

const RETRY_SQL = `
WITH job AS (
  UPDATE jobs SET locked_by = NULL, lease_token = NULL, lease_expires_at = NULL, run_at = $5
  WHERE ${HELD}
  RETURNING jobs.*
),
changed AS (
  UPDATE events SET status = 'queued', last_error = $4, updated_at = $3, version = events.version + 1
  FROM job WHERE events.id = job.event_id
  RETURNING events.*
),
${recordChangesSql('changed', '$3')}
SELECT job.queue FROM job`;

const DEAD_SQL = `
WITH job AS (
  DELETE FROM jobs WHERE ${HELD}
  RETURNING jobs.*
),
changed AS (
  UPDATE events SET status = 'failed', last_error = $4, updated_at = $3, version = events.version + 1
  FROM job WHERE events.id = job.event_id
  RETURNING events.*
),
${recordChangesSql('changed', '$3')},
${enterDeadLettersSql('changed', '$3')}
SELECT job.queue FROM job`;

export async function fail(db: Db, job: JobRef, input: FailInput, now: Date): Promise<boolean> {
  if (!isUuid(job.eventId) || !/^\d+$/.test(job.leaseToken)) return false;
  const params: unknown[] = [job.eventId, job.leaseToken, now, input.error];
  return db.tx(async (tx) => {
    const rows =
      input.retryAt === null
        ? await tx.query<{ queue: string }>(DEAD_SQL, params)
        : await tx.query<{ queue: string }>(RETRY_SQL, [...params, input.retryAt]);
    if (rows.length === 0) return false;
    const channels = [OUTBOX_CHANNEL, ...(input.retryAt === null ? [] : rows.map((r) => jobsChannel(r.queue)))];
    tx.notify(channels);
    return true;
  });
}
