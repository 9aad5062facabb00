/**
 * relayOutbox(limit, publish) → how many messages were published.
 * In one transaction: try the single relay lock (another relay holds it → 0), read the oldest
 * rows, await `publish`, delete them. If `publish` throws, the transaction rolls back and the
 * rows stay for the next attempt: a notification is never lost, at worst sent twice.
 * `publish` must not call the store: on PGlite (one connection) it would wait for this very
 * transaction. peekOutbox(limit) → pending messages, oldest first.
 */
import type { Db } from '../db.js';
import type { OutboxMessage } from '../../core/types.js';
import { OUTBOX_COLUMNS, toOutbox, type OutboxRow } from '../rows.js';

/** Advisory lock key for the relay ("tem-rela" as hex). */
const RELAY_LOCK = 0x74656d2d72656c61n;

export async function relayOutbox(
  db: Db,
  limit: number,
  publish: (messages: OutboxMessage[]) => Promise<void>,
): Promise<number> {
  return db.tx(async (tx) => {
    const [lock] = await tx.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_xact_lock(${RELAY_LOCK.toString()}) AS locked`,
    );
    if (!lock?.locked) return 0;
    const rows = await tx.query<OutboxRow>(`SELECT ${OUTBOX_COLUMNS} FROM outbox ORDER BY id LIMIT $1`, [limit]);
    if (rows.length === 0) return 0;
    await publish(rows.map(toOutbox));
    await tx.query(`DELETE FROM outbox WHERE id IN (SELECT value::bigint FROM jsonb_array_elements_text($1::jsonb))`, [
      JSON.stringify(rows.map((r) => String(r.id))),
    ]);
    return rows.length;
  });
}

export async function peekOutbox(db: Db, limit: number): Promise<OutboxMessage[]> {
  const rows = await db.query<OutboxRow>(`SELECT ${OUTBOX_COLUMNS} FROM outbox ORDER BY id LIMIT $1`, [limit]);
  return rows.map(toOutbox);
}
