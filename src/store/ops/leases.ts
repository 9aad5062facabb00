/**
 * extendLeases(jobs, leaseMs, now) → the refs still held, their leases moved to now + leaseMs.
 * releaseJobs(jobs, now) → how many were released: held leases are cleared without counting the
 * attempt (graceful shutdown), the job is ready at once and the event is back to `queued`.
 */
import type { Db } from '../db.js';
import type { JobRef } from '../types.js';
import { isUuid } from '../../core/ids.js';
import { OUTBOX_CHANNEL, jobsChannel, recordChangesSql } from './changes.js';

const REFS = `jsonb_to_recordset($1::jsonb) AS r(event_id uuid, lease_token bigint)`;

function refsParam(jobs: JobRef[]): string {
  const valid = jobs.filter((j) => isUuid(j.eventId) && /^\d+$/.test(j.leaseToken));
  return JSON.stringify(valid.map((j) => ({ event_id: j.eventId, lease_token: j.leaseToken })));
}

/**
 * The held leases among `refs`, locked in event_id order. Every statement that locks several
 * leased jobs (renewal, release, completeMany) locks them in this one order, so two of them
 * sharing jobs wait for each other instead of deadlocking; in the order of their input they
 * deadlocked (a renewal lists jobs in claim order, a completion in finishing order) once the
 * jobs table was large enough for nested-loop plans.
 */
const HELD = `held AS (
  SELECT jobs.event_id FROM jobs JOIN ${REFS} ON jobs.event_id = r.event_id AND jobs.lease_token = r.lease_token
  WHERE jobs.lease_expires_at > $2
  ORDER BY jobs.event_id
  FOR UPDATE OF jobs
)`;

export async function extendLeases(db: Db, jobs: JobRef[], leaseMs: number, now: Date): Promise<JobRef[]> {
  if (jobs.length === 0) return [];
  const rows = await db.query<{ event_id: string; lease_token: string }>(
    `WITH ${HELD}
     UPDATE jobs SET lease_expires_at = $3
     FROM held WHERE jobs.event_id = held.event_id
     RETURNING jobs.event_id::text AS event_id, jobs.lease_token::text AS lease_token`,
    [refsParam(jobs), now, new Date(now.getTime() + leaseMs)],
  );
  return rows.map((r) => ({ eventId: r.event_id, leaseToken: r.lease_token }));
}

const RELEASE_SQL = `
WITH ${HELD},
job AS (
  UPDATE jobs SET locked_by = NULL, lease_token = NULL, lease_expires_at = NULL, run_at = $2,
    attempts = GREATEST(jobs.attempts - 1, 0)
  FROM held WHERE jobs.event_id = held.event_id
  RETURNING jobs.*
),
changed AS (
  UPDATE events SET status = 'queued', attempts = job.attempts, updated_at = $2, version = events.version + 1
  FROM job WHERE events.id = job.event_id
  RETURNING events.*
),
${recordChangesSql('changed', '$2')}
SELECT job.queue FROM job`;

export async function releaseJobs(db: Db, jobs: JobRef[], now: Date): Promise<number> {
  if (jobs.length === 0) return 0;
  return db.tx(async (tx) => {
    const rows = await tx.query<{ queue: string }>(RELEASE_SQL, [refsParam(jobs), now]);
    if (rows.length > 0) {
      tx.notify([OUTBOX_CHANNEL, ...rows.map((r) => jobsChannel(r.queue))]);
    }
    return rows.length;
  });
}
