/**
 * Store conformance, queue vacuum: one suite run against PGlite and PostgreSQL.
 * vacuumQueues() must leave the planner statistics of the queue tables true to their contents
 * (that is what makes cached plans use the indexes) and keep working while the tables are in use.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { KINDS, itemFactory } from './store-fixtures.js';

describe.each(KINDS)('Store queue vacuum ($kind)', ({ kind, skip }) => {
  let t: TestStore;
  const clock = new ManualClock();
  const item = itemFactory(clock);

  beforeAll(async () => {
    if (!skip) t = await createTestStore(kind);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  async function reltuples(table: string): Promise<number> {
    const [row] = await t.db.query<{ n: number }>(`SELECT reltuples::int AS n FROM pg_class WHERE relname = $1`, [table]);
    return row!.n;
  }

  it.skipIf(skip)('analyzes jobs and outbox: their statistics then count the live rows', async () => {
    await t.store.ingest([item(), item(), item()], clock.now());
    // Six outbox rows (accepted + queued per event); relay four of them.
    expect(await t.store.relayOutbox(4, async () => {})).toBe(4);
    await t.store.vacuumQueues();
    expect(await reltuples('jobs')).toBe(3);
    expect(await reltuples('outbox')).toBe(2);

    await t.store.relayOutbox(10, async () => {});
    await t.store.vacuumQueues();
    expect(await reltuples('outbox')).toBe(0);
    // The store goes on working after it.
    await t.store.ingest([item()], clock.now());
    expect(await t.store.peekOutbox(10)).toHaveLength(2);
  });
});
