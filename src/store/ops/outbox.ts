/**
 * relayOutbox(limit, publish, skip) → how many messages were published (a row may stand for two:
 * src/store/rows.ts toOutbox).
 * In one transaction: try the single relay lock (another relay holds it → 0) and delete the
 * oldest rows, returning them — one statement — then await `publish` and commit. If `publish`
 * throws, the transaction rolls back and the rows stay for the next attempt: a notification is
 * never lost, at worst sent twice. One statement instead of lock, read and delete apart keeps a
 * relay round to three round trips (begin, this, commit): a new row waits at most about one
 * round before it goes out.
 * Rows of the channels in `skip` are not taken (their channel is held back while its Redis
 * Cluster node fails); `publish` may name channels whose messages did not go out, and their
 * rows are written back, ids and all, before the commit, so they keep their place in line.
 * `publish` must not call the store: on PGlite (one connection) it would wait for this very
 * transaction. peekOutbox(limit) → pending messages, oldest first.
 */
import type { Db } from '../db.js';
import type { OutboxMessage } from '../../core/types.js';
import type { RelayPublish } from '../types.js';
import { OUTBOX_COLUMN_NAMES, OUTBOX_COLUMNS, toOutbox, type OutboxRow } from '../rows.js';

/** Advisory lock key for the relay ("tem-rela" as hex). */
const RELAY_LOCK = 0x74656d2d72656c61n;

// The lock is taken once (a CTE runs once) before any row is read; without it nothing is taken.
// The rows are deleted by their physical address (a TID scan, whatever the planner thinks of the
// table's size): joined to `picked` by id instead, a plan cached while the table was small
// hash-joined it against a scan of the whole table, which between vacuums is mostly dead rows.
// The addresses cannot go stale within the statement: only the relay, under its lock, deletes
// outbox rows, and nothing updates them.
// The commit waits for its flush, although it only deletes what was published: were a confirmed
// delete lost in a crash, the rows would go out again after newer updates of the same events,
// which the relay only guards against for rounds whose commit failed (src/outbox/relay.ts).
const take = (picked: string): string => `
WITH lock AS (SELECT pg_try_advisory_xact_lock(${RELAY_LOCK.toString()}) AS locked),
picked AS (${picked})
DELETE FROM outbox WHERE outbox.ctid = ANY (ARRAY(SELECT ctid FROM picked))
RETURNING ${OUTBOX_COLUMNS}`;

const TAKE_SQL = take(`SELECT o.ctid FROM outbox o WHERE (SELECT locked FROM lock) ORDER BY o.id LIMIT $1`);

/**
 * How far past held-back rows a round looks for others. Held rows pile up at the head while a
 * node is away; without a bound every round would walk all of them. Past it, the other channels
 * wait too, as they did before channels could be held (docs/decisions/0028-redis-cluster.md).
 */
export const HELD_SCAN_WINDOW = 10_000;

const TAKE_SKIPPING_SQL = take(`
  SELECT w.ctid FROM (
    SELECT o.ctid, o.id, o.channel FROM outbox o WHERE (SELECT locked FROM lock) ORDER BY o.id LIMIT ${HELD_SCAN_WINDOW}
  ) w WHERE NOT EXISTS (SELECT 1 FROM unnest($2::text[]) AS s(channel) WHERE s.channel = w.channel)
  ORDER BY w.id LIMIT $1`);

// Rows put back as they were taken, ids and all; a column added later and not read by the relay
// gets its default.
const PUT_BACK_SQL = `INSERT INTO outbox (${OUTBOX_COLUMN_NAMES})
  SELECT ${OUTBOX_COLUMN_NAMES} FROM jsonb_populate_recordset(NULL::outbox, $1::jsonb)`;

export async function relayOutbox(db: Db, limit: number, publish: RelayPublish, skip: readonly string[] = []): Promise<number> {
  return db.tx(async (tx) => {
    const rows = await tx.query<OutboxRow>(skip.length === 0 ? TAKE_SQL : TAKE_SKIPPING_SQL, skip.length === 0 ? [limit] : [limit, skip]);
    if (rows.length === 0) return 0;
    // RETURNING gives no order: the relay publishes in id order.
    rows.sort((a, b) => Number(a.id) - Number(b.id));
    const messages = rows.flatMap(toOutbox);
    const failed = await publish(messages);
    if (!failed || failed.size === 0) return messages.length;
    const kept = rows.filter((r) => failed.has(r.channel));
    if (kept.length > 0) await tx.query(PUT_BACK_SQL, [JSON.stringify(kept)]);
    return messages.filter((m) => !failed.has(m.channel)).length;
  });
}

export async function peekOutbox(db: Db, limit: number): Promise<OutboxMessage[]> {
  const rows = await db.query<OutboxRow>(`SELECT ${OUTBOX_COLUMNS} FROM outbox ORDER BY id LIMIT $1`, [limit]);
  // A row may stand for two messages (toOutbox): the limit counts messages.
  return rows.flatMap(toOutbox).slice(0, limit);
}
