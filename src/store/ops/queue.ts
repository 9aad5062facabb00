/**
 * Small reads for workers: nextRunAt(queue) → when the next not-leased job becomes ready (null
 * when none); hasEffect(eventId, processor) → whether that effect is already recorded.
 */
import type { Db } from '../db.js';
import { isUuid } from '../../core/ids.js';

export async function nextRunAt(db: Db, queue: string): Promise<Date | null> {
  // ORDER BY … LIMIT 1 walks jobs_ready from its start and stops at the first live entry. min()
  // under a generic plan read the whole index, and every entry of a job claimed since the last
  // vacuum is a dead heap tuple to visit: thousands per call on a busy queue, once per idle turn.
  const [row] = await db.query<{ at: Date | null }>(
    `SELECT run_at AS at FROM jobs WHERE queue = $1 AND lease_token IS NULL ORDER BY run_at LIMIT 1`,
    [queue],
  );
  return row?.at ?? null;
}

export async function hasEffect(db: Db, eventId: string, processor: string): Promise<boolean> {
  if (!isUuid(eventId)) return false;
  const rows = await db.query(`SELECT 1 AS ok FROM processed_effects WHERE event_id = $1 AND processor = $2`, [
    eventId,
    processor,
  ]);
  return rows.length > 0;
}
