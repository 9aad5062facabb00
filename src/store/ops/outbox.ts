/**
 * relayOutbox(limit, publish, skip, onParked) → how many messages were published (a row may stand for two:
 * src/store/rows.ts toOutbox).
 * In one transaction: try the single relay lock (another relay holds it → 0) and delete the
 * oldest rows, returning them — one statement — then await `publish` and commit. If `publish`
 * throws, the transaction rolls back and the rows stay for the next attempt: a notification is
 * never lost, at worst sent twice. One statement instead of lock, read and delete apart keeps a
 * relay round to three round trips (begin, this, commit): a new row waits at most about one
 * round before it goes out.
 * Rows of the channels in `skip` are not taken (their channel is held back while its Redis
 * Cluster node fails): they are parked in `outbox_held`, ids and all, out of the way of the
 * others, and so are the rows of any channel that already has parked rows (they must go out
 * behind those). A channel's parked rows are taken again, oldest first, once it is no longer in
 * `skip`. `publish` may name channels whose messages did not go out: their rows are parked
 * before the commit. `onParked` hears how many rows the round moved out of the outbox's head.
 * `publish` must not call the store: on PGlite (one connection) it would wait for this very
 * transaction. peekOutbox(limit) → pending messages, parked ones included, oldest first.
 */
import type { Db } from '../db.js';
import type { OutboxMessage } from '../../core/types.js';
import type { RelayPublish } from '../types.js';
import { OUTBOX_COLUMN_NAMES, OUTBOX_COLUMNS, toOutbox, type OutboxRow } from '../rows.js';

/** Advisory lock key for the relay ("tem-rela" as hex). Exported for tests. */
export const RELAY_LOCK = 0x74656d2d72656c61n;

/** The relay lock, tried once (a CTE runs once) before any row is read; without it nothing is taken. */
const LOCK_CTE = `lock AS (SELECT pg_try_advisory_xact_lock(${RELAY_LOCK.toString()}) AS locked)`;

/**
 * How far a round looks at the head of the outbox while channels are held back: the rows of held
 * channels among them are moved to `outbox_held` (parked) rather than left in the way, so this
 * bounds the rows one round moves, not what the other channels can get past.
 */
export const HELD_SCAN_WINDOW = 4096;

// Rows are deleted by their physical address (a TID scan, whatever the planner thinks of the
// table's size): joined to `picked` by id instead, a plan cached while the table was small
// hash-joined it against a scan of the whole table, which between vacuums is mostly dead rows.
// The addresses cannot go stale within the statement: only the relay, under its lock, deletes
// these rows, and nothing updates them.
// The commit waits for its flush, although it only deletes what was published: were a confirmed
// delete lost in a crash, the rows would go out again after newer updates of the same events,
// which the relay only guards against for rounds whose commit failed (src/outbox/relay.ts).

// A statement sees the rows as they were when it started, and the lock is taken only as it runs:
// when another relay committed a round in between, the rows read here may already be gone (taken
// or parked by it). Such a round is stale: it could take a channel's newer row while that relay
// parked an older one it cannot see. Each statement therefore checks that it deleted every row
// it picked, says `stale` otherwise, and the round is rolled back and run again on fresh rows.

// The usual round, with no channel held and nothing parked: the oldest rows. While any row is
// parked (a one-time check of an empty table) it takes nothing and answers one row of nulls
// marked `parked` instead, and TAKE_HOLDING_SQL runs, which keeps each parked channel's rows in
// order. Exported for tests.
export const TAKE_SQL = `
WITH ${LOCK_CTE},
parked AS (SELECT EXISTS (SELECT 1 FROM outbox_held) AS found),
picked AS (
  SELECT o.ctid FROM outbox o
  WHERE (SELECT locked FROM lock) AND NOT (SELECT found FROM parked)
  ORDER BY o.id LIMIT $1
),
taken AS (
  DELETE FROM outbox WHERE outbox.ctid = ANY (ARRAY(SELECT ctid FROM picked))
  RETURNING ${OUTBOX_COLUMNS}
)
SELECT t.*, NULL::text AS mark FROM taken t
UNION ALL
SELECT taken.*, CASE WHEN parked.found THEN 'parked' ELSE 'stale' END
FROM parked LEFT JOIN taken ON false
WHERE (SELECT locked FROM lock) AND (parked.found OR (SELECT count(*) FROM picked) > (SELECT count(*) FROM taken))`;

// A round while channels are held or rows are parked, in one statement:
// - skipped: the held channels ($2), as a set (looked up by hash, however many);
// - head: the oldest outbox rows ($3 of them); a row of a skipped channel or of a channel with
//   parked rows (an index probe) moves to outbox_held, behind that channel's parked rows, ids
//   and all;
// - picked: the oldest $1 of the head's other rows and of the parked rows of channels not
//   skipped (a held channel whose node answers again, or one another relay held back), which
//   come before that channel's newer rows because those were just parked behind them. The
//   parked rows are read in id order past those of skipped channels: every parked row at worst,
//   which only a long outage of a busy node makes many;
// - the picked rows are deleted and returned, with the count of rows parked and whether the
//   round is stale (above).
// The two deletes most rounds have nothing for are gated on having something (a one-time filter):
// on a small table the planner may pick a sequential scan for a ctid list, which an empty list
// would otherwise still run. Exported for tests.
export const TAKE_HOLDING_SQL = `
WITH ${LOCK_CTE},
skipped AS (SELECT unnest($2::text[]) AS channel),
head AS (
  SELECT o.ctid, o.id,
    -- The probe is a scalar subquery with LIMIT, which PostgreSQL cannot turn into a hash of the
    -- whole outbox_held (as it did an EXISTS: a scan of every parked row each round).
    (o.channel IN (SELECT channel FROM skipped)
      OR (SELECT true FROM outbox_held h WHERE h.channel = o.channel LIMIT 1) IS NOT NULL) AS park
  FROM outbox o WHERE (SELECT locked FROM lock) ORDER BY o.id LIMIT $3
),
moved AS (
  DELETE FROM outbox WHERE (SELECT bool_or(park) FROM head) AND outbox.ctid = ANY (ARRAY(SELECT ctid FROM head WHERE park))
  RETURNING ${OUTBOX_COLUMN_NAMES}
),
parked AS (INSERT INTO outbox_held (${OUTBOX_COLUMN_NAMES}) SELECT ${OUTBOX_COLUMN_NAMES} FROM moved),
picked AS (
  SELECT false AS held, ctid, id FROM head WHERE NOT park
  UNION ALL
  (SELECT true, h.ctid, h.id FROM outbox_held h
    WHERE (SELECT locked FROM lock) AND h.channel NOT IN (SELECT channel FROM skipped)
    ORDER BY h.id LIMIT $1)
  ORDER BY id LIMIT $1
),
from_outbox AS (
  DELETE FROM outbox WHERE outbox.ctid = ANY (ARRAY(SELECT ctid FROM picked WHERE NOT held))
  RETURNING ${OUTBOX_COLUMNS}
),
from_held AS (
  DELETE FROM outbox_held outbox WHERE (SELECT bool_or(held) FROM picked) AND outbox.ctid = ANY (ARRAY(SELECT ctid FROM picked WHERE held))
  RETURNING ${OUTBOX_COLUMNS}
)
-- Always one row at least, which carries the count of parked rows and whether the round is stale
-- (its other columns are null when nothing was taken).
SELECT t.*, m.parked, m.stale FROM (
  SELECT (SELECT count(*) FROM moved)::int AS parked,
    (SELECT count(*) FROM head WHERE park) + (SELECT count(*) FROM picked)
      > (SELECT count(*) FROM moved) + (SELECT count(*) FROM from_outbox) + (SELECT count(*) FROM from_held) AS stale
) m
LEFT JOIN (SELECT * FROM from_outbox UNION ALL SELECT * FROM from_held) t ON true`;

// Rows whose channel did not go out are parked as they were taken, ids and all; a column added
// later and not read by the relay gets its default.
const PARK_SQL = `INSERT INTO outbox_held (${OUTBOX_COLUMN_NAMES})
  SELECT ${OUTBOX_COLUMN_NAMES} FROM jsonb_populate_recordset(NULL::outbox, $1::jsonb)`;

type Nullable<T> = { [K in keyof T]: T[K] | null };
type FastRow = Nullable<OutboxRow> & { mark: 'parked' | 'stale' | null };
type HoldingRow = Nullable<OutboxRow> & { parked: number; stale: boolean };

/** A round that read rows another relay had taken meanwhile: rolled back and run again. */
class StaleRound extends Error {}

/** Stale rounds run again at once this many times; then the round reports nothing sent. */
const STALE_RETRIES = 3;

export async function relayOutbox(
  db: Db,
  limit: number,
  publish: RelayPublish,
  skip: readonly string[] = [],
  onParked?: (rows: number) => void,
): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await relayRound(db, limit, publish, skip, onParked);
    } catch (err) {
      if (!(err instanceof StaleRound)) throw err;
      if (attempt >= STALE_RETRIES) return 0;
    }
  }
}

async function relayRound(
  db: Db,
  limit: number,
  publish: RelayPublish,
  skip: readonly string[],
  onParked?: (rows: number) => void,
): Promise<number> {
  return db.tx(async (tx) => {
    const fast = skip.length === 0 ? await tx.query<FastRow>(TAKE_SQL, [limit]) : null;
    const mark = fast?.find((r) => r.id === null)?.mark;
    if (mark === 'stale') throw new StaleRound();
    const taken: Nullable<OutboxRow>[] = fast && mark !== 'parked' ? fast : await takeHolding(tx, limit, skip, onParked);
    // The markers (mark, parked, stale) ride along; PARK_SQL ignores what is not a column.
    const rows = taken.filter((r): r is OutboxRow => r.id !== null);
    if (rows.length === 0) return 0;
    // RETURNING gives no order: the relay publishes in id order.
    rows.sort((a, b) => Number(a.id) - Number(b.id));
    const messages = rows.flatMap(toOutbox);
    const failed = await publish(messages);
    if (!failed || failed.size === 0) return messages.length;
    const kept = rows.filter((r) => failed.has(r.channel));
    if (kept.length > 0) await tx.query(PARK_SQL, [JSON.stringify(kept)]);
    return messages.filter((m) => !failed.has(m.channel)).length;
  });
}

/** TAKE_HOLDING_SQL's rows; tells `onParked` how many rows it parked. */
async function takeHolding(tx: Db, limit: number, skip: readonly string[], onParked?: (rows: number) => void): Promise<HoldingRow[]> {
  // Without held channels the head is just the batch; with them, a window past their rows.
  const head = skip.length === 0 ? limit : Math.max(limit, HELD_SCAN_WINDOW);
  const rows = await tx.query<HoldingRow>(TAKE_HOLDING_SQL, [limit, skip, head]);
  if (rows[0]?.stale) throw new StaleRound();
  const parked = rows[0]?.parked ?? 0;
  if (parked > 0) onParked?.(parked);
  return rows;
}

/** Pending messages, parked ones included, oldest first. */
export async function peekOutbox(db: Db, limit: number): Promise<OutboxMessage[]> {
  const rows = await db.query<OutboxRow>(
    `SELECT ${OUTBOX_COLUMNS} FROM (SELECT * FROM outbox UNION ALL SELECT * FROM outbox_held) outbox ORDER BY id LIMIT $1`,
    [limit],
  );
  // A row may stand for two messages (toOutbox): the limit counts messages.
  return rows.flatMap(toOutbox).slice(0, limit);
}
