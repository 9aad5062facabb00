/**
 * Statements that lock several leased jobs lock them in one order (event_id), so two of them
 * sharing jobs wait for each other instead of deadlocking. In their input's order they did: a
 * worker renews its leases in claim order while its group commit completes the same jobs in
 * finishing order, and once the jobs table is large PostgreSQL plans both as nested loops over
 * the input, taking the row locks in that order. Each deadlock cost a second (deadlock_timeout)
 * and a failed completion batch or a lost renewal round.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import type { ClaimedJob, Store } from '../../src/store/types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { services } from '../helpers/services.js';
import { ingestEvents } from '../fixtures/worker-helpers.js';

const ROUNDS = 12;
const BATCH = 200;

describe.skipIf(!services.postgres)('lock order of lease renewal, release and group completion (PostgreSQL)', () => {
  let db: TestDatabase;
  let store: Store;
  let sql: postgres.Sql;

  beforeAll(async () => {
    db = await createTestDatabase();
    store = await openStore({ databaseUrl: db.url, poolMax: 4 });
    sql = postgres(db.url, { max: 1, onnotice: () => undefined });
    // A large jobs table (on a queue nobody claims here), so the planner picks nested loops.
    await sql.unsafe(`
      INSERT INTO events (id, type, payload, producer_id, user_id, occurred_at, status, max_attempts, created_at, updated_at)
      SELECT gen_random_uuid(), 'bulk', '{}', 'svc', 'u_bulk', now(), 'queued', 5, now(), now() FROM generate_series(1, 50000);
      INSERT INTO jobs (event_id, queue, type, run_at, max_attempts)
      SELECT id, 'bulk', type, now(), 5 FROM events WHERE type = 'bulk';
      ANALYZE events; ANALYZE jobs;`);
    await ingestEvents(store, ROUNDS * BATCH * 2, new Date());
  }, 120_000);

  afterAll(async () => {
    await sql?.end();
    await store?.close();
    await db?.drop();
  });

  async function claim(): Promise<ClaimedJob[]> {
    const jobs = await store.claim({ queue: 'processing', workerId: 'w', limit: BATCH, leaseMs: 60_000, now: new Date() });
    expect(jobs).toHaveLength(BATCH);
    return jobs;
  }

  const refs = (jobs: ClaimedJob[]) => jobs.map((j) => ({ eventId: j.event.id, leaseToken: j.leaseToken }));

  it('renewals in claim order and completions in another order never deadlock', async () => {
    const errors: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const jobs = await claim();
      const finished = [...jobs].reverse().map((j) => ({ job: { eventId: j.event.id, leaseToken: j.leaseToken }, input: { processor: 'p', result: null } }));
      const [renewed, completed] = await Promise.allSettled([store.extendLeases(refs(jobs), 60_000, new Date()), store.completeMany(finished, new Date())]);
      for (const r of [renewed, completed]) if (r.status === 'rejected') errors.push(String((r.reason as { cause?: { code?: string } }).cause?.code ?? r.reason));
      if (completed.status === 'fulfilled') expect(completed.value.every(Boolean)).toBe(true);
    }
    expect(errors).toEqual([]);
  }, 120_000);

  it('releases in claim order and completions in another order never deadlock', async () => {
    const errors: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const jobs = await claim();
      const finished = [...jobs].reverse().map((j) => ({ job: { eventId: j.event.id, leaseToken: j.leaseToken }, input: { processor: 'p', result: null } }));
      const [released, completed] = await Promise.allSettled([store.releaseJobs(refs(jobs), new Date()), store.completeMany(finished, new Date())]);
      for (const r of [released, completed]) if (r.status === 'rejected') errors.push(String((r.reason as { cause?: { code?: string } }).cause?.code ?? r.reason));
      // Every job went one way or the other, never both and never neither.
      if (released.status === 'fulfilled' && completed.status === 'fulfilled') {
        expect(released.value + completed.value.filter(Boolean).length).toBe(BATCH);
      }
    }
    expect(errors).toEqual([]);
  }, 120_000);
});
