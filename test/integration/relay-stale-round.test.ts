/**
 * A relay statement sees the outbox as it was when it started, but takes the relay lock only as
 * it runs: when another relay commits a round in between, the rows it read may be gone (taken,
 * or parked because their channel's node failed). Such a round could send a channel's newer row
 * while the older one waits parked; each take statement says `stale` instead, and the round is
 * run again on fresh rows (src/store/ops/outbox.ts). The gap is widened here with a sleep in the
 * lock's CTE, as a relay descheduled at that point would see it (PostgreSQL).
 */
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { RELAY_LOCK, TAKE_HOLDING_SQL, TAKE_SQL } from '../../src/store/ops/outbox.js';
import type { Store } from '../../src/store/types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { services } from '../helpers/services.js';

describe.skipIf(!services.postgres)('relay round that read the outbox before another relay committed (PostgreSQL)', () => {
  let db: TestDatabase;
  let store: Store;
  let a: postgres.Sql;
  let b: postgres.Sql;

  beforeAll(async () => {
    db = await createTestDatabase();
    store = await openStore({ databaseUrl: db.url, poolMax: 2 });
    a = postgres(db.url, { max: 1, onnotice: () => undefined });
    b = postgres(db.url, { max: 1, onnotice: () => undefined });
  });

  afterAll(async () => {
    await a?.end();
    await b?.end();
    await store?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    await a.unsafe('TRUNCATE outbox, outbox_held');
    for (const [id, channel] of [[1, 'user:q'], [2, 'user:s'], [3, 'user:q']] as const) {
      await a.unsafe(`INSERT INTO outbox (id, event_id, channel, event, payload, created_at) VALUES (${id}, gen_random_uuid(), '${channel}', 'e', '{}', now())`);
    }
  });

  /**
   * Relay A's round, under the lock: takes rows 1 and 2; user:q's node failed, so row 1 is
   * parked. It commits while relay B's statement (started meanwhile) waits for the lock's CTE.
   */
  function roundOfA(): Promise<unknown> {
    return a.begin(async (tx) => {
      await tx.unsafe(`SELECT pg_advisory_xact_lock(${RELAY_LOCK})`);
      await tx.unsafe('DELETE FROM outbox WHERE id IN (1, 2)');
      await tx.unsafe(`INSERT INTO outbox_held (id, event_id, channel, event, payload, created_at) VALUES (1, gen_random_uuid(), 'user:q', 'e', '{}', now())`);
      await tx.unsafe('SELECT pg_sleep(0.7)');
    });
  }

  /** Relay B's statement, started 200 ms into A's round, its lock reached 1.5 s after it started; rolled back. */
  async function statementOfB<T>(text: string, params: postgres.ParameterOrJSON<never>[]): Promise<T[]> {
    const slow = text.replace('AS locked)', 'AS locked FROM pg_sleep(1.5))');
    expect(slow).not.toBe(text);
    const aDone = roundOfA();
    await new Promise((r) => setTimeout(r, 200));
    let rows: T[] = [];
    await b
      .begin(async (tx) => {
        rows = (await tx.unsafe(slow, params)) as unknown as T[];
        throw new Error('rollback');
      })
      .catch((err: Error) => {
        if (err.message !== 'rollback') throw err;
      });
    await aDone;
    return rows;
  }

  it('the usual take says `stale` rather than send user:q\'s row 3 ahead of its parked row 1', async () => {
    const rows = await statementOfB<{ id: number | null; mark: string | null }>(TAKE_SQL, [3]);
    expect(rows.filter((r) => r.id !== null).map((r) => Number(r.id))).toEqual([3]);
    expect(rows.find((r) => r.id === null)?.mark).toBe('stale');
  });

  it('the take while channels are held says `stale` too', async () => {
    const rows = await statementOfB<{ id: number | null; stale: boolean }>(TAKE_HOLDING_SQL, [2, ['user:s'], 4096]);
    expect(rows[0]!.stale).toBe(true);
  });

  it('a round on fresh rows is not stale, and the store sends row 1 before row 3', async () => {
    await roundOfA();
    const sent: number[] = [];
    while ((await store.relayOutbox(1, async (m) => void sent.push(...m.map((x) => x.id)))) > 0);
    expect(sent).toEqual([1, 3]);
  });
});
