/**
 * stats(now) → EventStats: events per status, ready jobs (count and age of the oldest at `now`)
 * and leased jobs.
 */
import type { Db } from '../db.js';
import type { EventStats } from '../types.js';
import { EVENT_STATUSES, type EventStatus } from '../../core/types.js';

export async function stats(db: Db, now: Date): Promise<EventStats> {
  // No index on events.status (migration 000005): unfinished events are those with a job, failed
  // ones those with a dead letter, and every other event is processed. One statement, one snapshot.
  const byStatusRows = await db.query<{ status: EventStatus; n: number }>(
    `WITH failed AS (SELECT count(*)::int AS n FROM dead_letters d JOIN events e ON e.id = d.event_id AND e.status = 'failed')
     SELECT e.status, count(*)::int AS n FROM jobs j JOIN events e ON e.id = j.event_id GROUP BY e.status
     UNION ALL
     SELECT 'failed', n FROM failed
     UNION ALL
     SELECT 'processed', ((SELECT count(*) FROM events) - (SELECT count(*) FROM jobs) - (SELECT n FROM failed))::int`,
  );
  const [jobs] = await db.query<{ ready: number; oldest: Date | null; leased: number }>(
    `SELECT count(*) FILTER (WHERE lease_token IS NULL AND run_at <= $1)::int AS ready,
            min(run_at) FILTER (WHERE lease_token IS NULL AND run_at <= $1) AS oldest,
            count(*) FILTER (WHERE lease_token IS NOT NULL)::int AS leased
     FROM jobs`,
    [now],
  );
  const byStatus = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<EventStatus, number>;
  for (const r of byStatusRows) byStatus[r.status] += r.n;
  return {
    byStatus,
    queueDepth: jobs?.ready ?? 0,
    oldestQueuedAgeMs: jobs?.oldest ? Math.max(0, now.getTime() - jobs.oldest.getTime()) : 0,
    leased: jobs?.leased ?? 0,
  };
}
