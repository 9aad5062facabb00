/**
 * pruneIdempotencyKeys(olderThan) → how many keys were cleared: events created before
 * `olderThan` give up their idempotency key (and request hash), so the key may be reused.
 */
import type { Db } from '../db.js';

export async function pruneIdempotencyKeys(db: Db, olderThan: Date): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `WITH pruned AS (
       UPDATE events SET idempotency_key = NULL, request_hash = NULL
       WHERE idempotency_key IS NOT NULL AND created_at < $1
       RETURNING 1
     )
     SELECT count(*)::int AS n FROM pruned`,
    [olderThan],
  );
  return row?.n ?? 0;
}
