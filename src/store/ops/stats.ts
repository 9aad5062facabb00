/**
 * stats(now) → EventStats: events per status, ready jobs (count and age of the oldest at `now`)
 * and leased jobs.
 */
import type { Db } from '../db.js';
import type { EventStats } from '../types.js';
import { EVENT_STATUSES, type EventStatus } from '../../core/types.js';

export async function stats(db: Db, now: Date): Promise<EventStats> {
  const byStatusRows = await db.query<{ status: EventStatus; n: number }>(
    `SELECT status, count(*)::int AS n FROM events GROUP BY status`,
  );
  const [jobs] = await db.query<{ ready: number; oldest: Date | null; leased: number }>(
    `SELECT count(*) FILTER (WHERE lease_token IS NULL AND run_at <= $1)::int AS ready,
            min(run_at) FILTER (WHERE lease_token IS NULL AND run_at <= $1) AS oldest,
            count(*) FILTER (WHERE lease_token IS NOT NULL)::int AS leased
     FROM jobs`,
    [now],
  );
  const byStatus = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<EventStatus, number>;
  for (const r of byStatusRows) byStatus[r.status] = r.n;
  return {
    byStatus,
    queueDepth: jobs?.ready ?? 0,
    oldestQueuedAgeMs: jobs?.oldest ? Math.max(0, now.getTime() - jobs.oldest.getTime()) : 0,
    leased: jobs?.leased ?? 0,
  };
}
