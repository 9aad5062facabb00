/**
 * claim(options) → ClaimedJob[].
 * One statement: picks ready jobs of the queue (oldest run_at first) with FOR UPDATE SKIP LOCKED so
 * concurrent claimers never take the same job, gives each a new fencing token and a lease until
 * now + leaseMs, counts the attempt, and moves the events to `processing` with history and
 * notification. Each job comes with the processors whose effect is already recorded, so the
 * worker need not ask per job. The relay is woken after commit.
 */
import type { Db } from '../db.js';
import type { ClaimOptions, ClaimedJob } from '../types.js';
import { toEvent, type EventRow } from '../rows.js';
import { OUTBOX_CHANNEL, recordChangesSql } from './changes.js';

export const CLAIM_SQL = `
WITH picked AS (
  SELECT event_id FROM jobs
  WHERE queue = $1 AND lease_token IS NULL AND run_at <= $2
  ORDER BY run_at, event_id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
),
leased AS (
  UPDATE jobs SET locked_by = $4, lease_token = nextval('lease_tokens'), lease_expires_at = $5,
    attempts = jobs.attempts + 1
  FROM picked WHERE jobs.event_id = picked.event_id
  RETURNING jobs.*
),
changed AS (
  UPDATE events SET status = 'processing', attempts = leased.attempts, version = events.version + 1, updated_at = $2
  FROM leased WHERE events.id = leased.event_id
  RETURNING events.*
),
${recordChangesSql('changed', '$2')}
SELECT c.id::text AS id, c.type, c.payload, c.producer_id, c.user_id, c.channel, c.idempotency_key,
  c.request_hash, c.occurred_at, c.status, c.attempts, c.max_attempts, c.last_error, c.version,
  c.created_at, c.updated_at, c.processed_at, l.run_at,
  l.lease_token::text AS lease_token, l.lease_expires_at, l.attempts AS attempt, l.max_attempts AS job_max_attempts,
  ARRAY(SELECT pe.processor FROM processed_effects pe WHERE pe.event_id = c.id) AS effects
FROM changed c JOIN leased l ON l.event_id = c.id
ORDER BY l.run_at, c.id`;

interface ClaimRow extends EventRow {
  lease_token: string;
  lease_expires_at: Date;
  attempt: number;
  job_max_attempts: number;
  effects: string[] | null;
}

export async function claim(db: Db, o: ClaimOptions): Promise<ClaimedJob[]> {
  if (o.limit <= 0) return [];
  const until = new Date(o.now.getTime() + o.leaseMs);
  // One statement is atomic on its own: no BEGIN/COMMIT round trips around it.
  const rows = await db.query<ClaimRow>(CLAIM_SQL, [o.queue, o.now, o.limit, o.workerId, until]);
  if (rows.length > 0) db.notify([OUTBOX_CHANNEL]);
  return rows.map((r) => ({
    event: toEvent(r),
    leaseToken: r.lease_token,
    attempt: r.attempt,
    maxAttempts: r.job_max_attempts,
    leaseExpiresAt: r.lease_expires_at,
    ...(Array.isArray(r.effects) ? { recordedEffects: r.effects } : {}),
  }));
}
