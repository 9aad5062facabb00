/**
 * stats(now, totals) → EventStats: events per status, ready jobs (count and age of the oldest at
 * `now`) and leased jobs.
 *
 * No index on events.status (migration 000005): unfinished events are those with a job, failed
 * ones those with a dead letter, and every other event is processed — the total of events minus
 * the rest. Counting every event at every scrape grew with the table, which is never pruned
 * (a metrics scrape every few seconds, the console's too, read the whole primary key).
 * `EventTotals` counts each event once instead: events minted more than SETTLED_AFTER_MS before
 * `now` are counted once and remembered, only the recent ones are counted each time (a range of
 * the primary key: ids are UUIDv7, ordered by creation, decision 0020). Events are never deleted
 * by the system; a TRUNCATE is noticed at once (the table's file changes), anything else an
 * operator deletes by hand within RECOUNT_EVERY_MS, when everything is counted afresh.
 */
import type { Db } from '../db.js';
import type { EventStats } from '../types.js';
import { ID_CLOCK_MARGIN_MS, uuidv7Floor } from '../../core/ids.js';
import { EVENT_STATUSES, type EventStatus } from '../../core/types.js';

/** Past this age every event minted then has committed (ids are minted just before the commit). */
const SETTLED_AFTER_MS = 5 * ID_CLOCK_MARGIN_MS;
const RECOUNT_EVERY_MS = 10 * 60_000;
const FIRST_ID = '00000000-0000-0000-0000-000000000000';

/** What one store has counted so far: events with ids below `watermark` number `settled`. */
export class EventTotals {
  watermark = FIRST_ID;
  settled = 0;
  /** The events table's file (pg_relation_filenode): a TRUNCATE gives it a new one. */
  filenode: string | null = null;
  countedAfreshAtMs = 0;

  reset(nowMs: number): void {
    this.watermark = FIRST_ID;
    this.settled = 0;
    this.filenode = null;
    this.countedAfreshAtMs = nowMs;
  }
}

// One statement, one snapshot: the totals agree with each other.
const STATS_SQL = `
WITH failed AS (SELECT count(*)::int AS n FROM dead_letters d JOIN events e ON e.id = d.event_id AND e.status = 'failed'),
active AS (SELECT e.status, count(*)::int AS n FROM jobs j JOIN events e ON e.id = j.event_id GROUP BY e.status),
counted AS (
  SELECT count(*) FILTER (WHERE id < $2::uuid)::int AS settling, count(*)::int AS seen
  FROM events WHERE id >= $1::uuid
)
SELECT (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb) FROM active) AS active,
  (SELECT n FROM failed) AS failed,
  (SELECT count(*)::int FROM jobs) AS jobs,
  (SELECT seen FROM counted) AS seen,
  (SELECT settling FROM counted) AS settling,
  pg_relation_filenode('events')::text AS filenode`;

interface StatsRow {
  active: Record<string, number>;
  failed: number;
  jobs: number;
  seen: number;
  settling: number;
  filenode: string;
}

async function countEvents(db: Db, now: Date, totals: EventTotals): Promise<{ row: StatsRow; total: number }> {
  if (now.getTime() - totals.countedAfreshAtMs >= RECOUNT_EVERY_MS) totals.reset(now.getTime());
  for (;;) {
    const from = totals.watermark;
    const settled = totals.settled;
    const upTo = uuidv7Floor(now.getTime() - SETTLED_AFTER_MS);
    const [row] = await db.query<StatsRow>(STATS_SQL, [from, upTo]);
    if (!row) throw new Error('stats returned no row');
    if (totals.filenode !== null && totals.filenode !== row.filenode) {
      // Truncated since the last count: what was remembered is gone.
      totals.reset(now.getTime());
      continue;
    }
    // Another call may have moved the watermark meanwhile; it then counted these rows already.
    if (totals.watermark === from) {
      totals.filenode = row.filenode;
      if (upTo > from) {
        totals.settled = settled + row.settling;
        totals.watermark = upTo;
      }
    }
    return { row, total: settled + row.seen };
  }
}

export async function stats(db: Db, now: Date, totals: EventTotals): Promise<EventStats> {
  const { row, total } = await countEvents(db, now, totals);
  const [jobs] = await db.query<{ ready: number; oldest: Date | null; leased: number }>(
    `SELECT count(*) FILTER (WHERE lease_token IS NULL AND run_at <= $1)::int AS ready,
            min(run_at) FILTER (WHERE lease_token IS NULL AND run_at <= $1) AS oldest,
            count(*) FILTER (WHERE lease_token IS NOT NULL)::int AS leased
     FROM jobs`,
    [now],
  );
  const byStatus = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<EventStatus, number>;
  for (const [status, n] of Object.entries(row.active)) if (status in byStatus) byStatus[status as EventStatus] += n;
  byStatus.failed += row.failed;
  byStatus.processed += Math.max(0, total - row.jobs - row.failed);
  return {
    byStatus,
    queueDepth: jobs?.ready ?? 0,
    oldestQueuedAgeMs: jobs?.oldest ? Math.max(0, now.getTime() - jobs.oldest.getTime()) : 0,
    leased: jobs?.leased ?? 0,
  };
}
