/**
 * pruneIdempotencyKeys(olderThan) → how many keys were cleared: events created before
 * `olderThan` give up their idempotency key (and request hash), so the key may be reused.
 */
import type { Db } from '../db.js';
import { ID_CLOCK_MARGIN_MS, uuidv7Floor } from '../../core/ids.js';

// The primary key bounds the range (ids are minted in creation order, migration 000008);
// created_at decides exactly.
export async function pruneIdempotencyKeys(db: Db, olderThan: Date): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `WITH pruned AS (
       UPDATE events SET idempotency_key = NULL, request_hash = NULL
       WHERE id < $2::uuid AND idempotency_key IS NOT NULL AND created_at < $1
       RETURNING 1
     )
     SELECT count(*)::int AS n FROM pruned`,
    [olderThan, uuidv7Floor(olderThan.getTime() + ID_CLOCK_MARGIN_MS)],
  );
  return row?.n ?? 0;
}
