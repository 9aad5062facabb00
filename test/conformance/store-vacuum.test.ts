/**
 * Store conformance, queue vacuum: one suite run against PGlite and PostgreSQL.
 * vacuumQueues() must leave the planner statistics of the queue tables true to their contents
 * (that is what makes cached plans use the indexes) and keep working while the tables are in use.
 */
import postgres from 'postgres';
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
    // Three outbox rows (one per event, standing for accepted + queued); relay two of them.
    expect(await t.store.relayOutbox(2, async () => {})).toBe(4);
    await t.store.vacuumQueues();
    expect(await reltuples('jobs')).toBe(3);
    expect(await reltuples('outbox')).toBe(1);

    await t.store.relayOutbox(10, async () => {});
    await t.store.vacuumQueues();
    expect(await reltuples('outbox')).toBe(0);
    // The store goes on working after it.
    await t.store.ingest([item()], clock.now());
    expect(await t.store.peekOutbox(10)).toHaveLength(2);
  });

  // The pool's behaviour (PGlite has one connection and no pool).
  if (kind === 'postgres') {
    it('an isolated script has a connection of its own: queries issued meanwhile do not wait behind it', async () => {
      let slowDone = false;
      const slow = t.db.exec('SELECT pg_sleep(0.8)', { isolated: { timeoutMs: 5000 } }).then(() => (slowDone = true));
      await new Promise((r) => setTimeout(r, 50));
      // More queries than the pool (3) has connections, all at once.
      const quick = await Promise.all(Array.from({ length: 12 }, () => t.db.query<{ ok: number }>('SELECT 1 AS ok').then(() => slowDone)));
      expect(quick.every((finishedAfterSlow) => finishedAfterSlow === false)).toBe(true);
      await slow;
    });

    it('an isolated script whose backend dies fails alone: the store goes on working', async () => {
      const admin = postgres(t.url!, { max: 1, onnotice: () => undefined });
      try {
        const running = t.db.exec('SELECT pg_sleep(5)', { isolated: { timeoutMs: 10_000 } });
        const failed = running.then(
          () => null,
          (err: { code?: string }) => err.code ?? 'error',
        );
        let killed = 0;
        for (let i = 0; i < 50 && killed === 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
          const rows = await admin<{ ok: boolean }[]>`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
            WHERE datname = current_database() AND query = 'SELECT pg_sleep(5)' AND state = 'active'`;
          killed = rows.length;
        }
        expect(killed).toBe(1);
        expect(await failed).toBe('CONNECTION_CLOSED');
        // Every pooled connection still answers, and so does a new isolated script.
        await Promise.all(Array.from({ length: 6 }, () => t.db.query('SELECT 1 AS ok')));
        await t.db.exec('SELECT 1', { isolated: { timeoutMs: 1000 } });
        await t.store.vacuumQueues();
      } finally {
        await admin.end();
      }
    });

    it('an isolated script is cancelled past its timeout, and the timeout stays with it', async () => {
      await expect(t.db.exec('SELECT pg_sleep(3)', { isolated: { timeoutMs: 100 } })).rejects.toMatchObject({ code: '57014' });
      const settings = await Promise.all(Array.from({ length: 6 }, () => t.db.query<{ statement_timeout: string }>('SHOW statement_timeout')));
      // The pool's own bound (PostgresDb queryTimeoutMs, 10 s), not the script's 100 ms.
      expect(settings.map(([row]) => row!.statement_timeout)).toEqual(Array(6).fill('10s'));
    });
  }
});
