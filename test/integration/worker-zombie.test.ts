/**
 * Zombies on real PostgreSQL: a worker whose lease ran out (paused, partitioned) must not commit
 * once the sweep has handed its job to another worker. The final state and the one effect row
 * come from the new owner.
 */
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import type { Store } from '../../src/store/types.js';
import { MaintenanceWorker, Worker, type WorkerEventMap } from '../../src/worker/index.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { services } from '../helpers/services.js';
import { RecordingProcessor, gate, ingestEvents, sleep, waitFor, workerConfig } from '../fixtures/worker-helpers.js';

describe.skipIf(!services.postgres)('zombie workers cannot commit (postgres)', () => {
  let t: TestStore;
  let sql: postgres.Sql;
  const workers: Worker[] = [];
  const clock = new ManualClock();
  const LEASE = 5000;

  beforeAll(async () => {
    t = await createTestStore('postgres');
    sql = postgres(t.url!, { max: 1, onnotice: () => {} });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await sql`DELETE FROM jobs`;
  });
  afterAll(async () => {
    await sql?.end({ timeout: 5 });
    await t?.cleanup();
  });

  /**
   * Renewal only when the test asks (renewLeases), so the clock alone decides when a lease runs
   * out. One job at a time: a stalled worker has no room to claim its own swept job again.
   */
  function worker(id: string, processor: RecordingProcessor, metrics?: Metrics, store: Store = t.store) {
    const w = new Worker({
      store,
      config: workerConfig({ leaseMs: LEASE, shutdownTimeoutMs: 100, workerConcurrency: 1 }),
      logger: silentLogger(),
      clock,
      metrics,
      processors: [processor],
      workerId: id,
      renewIntervalMs: 3_600_000,
    });
    workers.push(w);
    const lost: WorkerEventMap['job:lease_lost'][] = [];
    w.events.on('job:lease_lost', (e) => lost.push(e));
    return { w, lost };
  }

  async function effects(id: string) {
    return sql<{ result: { owner: string } }[]>`SELECT result FROM processed_effects WHERE event_id = ${id}`;
  }

  it('a worker past its lease, swept and replaced, cannot commit its result', async () => {
    const holdA = gate();
    const a = new RecordingProcessor('effect', ['zombie.*']);
    a.behaviour = async () => {
      await holdA.promise;
      return { owner: 'A' };
    };
    const metricsA = createMetrics();
    const { w: workerA, lost } = worker('A', a, metricsA);
    await workerA.start();
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'zombie.one' });
    await waitFor('A running the job', () => a.runs.length === 1);

    // A stalls past its lease; maintenance sweeps the job back to the queue.
    clock.advance(LEASE + 1);
    const metricsM = createMetrics();
    const maintenance = new MaintenanceWorker({ store: t.store, config: workerConfig(), logger: silentLogger(), clock, metrics: metricsM, workerId: 'M' });
    await maintenance.runDue();
    expect((await metricsM.leaseExpiries.get()).values[0]?.value).toBe(1);
    let e = await t.store.getEvent(id!);
    expect(e?.status).toBe('queued');
    expect(e?.lastError).toBe('lease expired');

    const b = new RecordingProcessor('effect', ['zombie.*']);
    b.behaviour = async () => ({ owner: 'B' });
    const { w: workerB } = worker('B', b);
    await workerB.start();
    await waitFor('B processed the event', async () => (await t.store.getEvent(id!))?.status === 'processed');

    // A wakes up and tries to complete: fenced out.
    holdA.open();
    await waitFor('A noticed', () => lost.length === 1);
    expect(lost[0]).toMatchObject({ stage: 'complete', processor: 'effect' });
    expect((await metricsA.leaseLost.get()).values[0]?.value).toBe(1);
    await sleep(50);

    e = await t.store.getEvent(id!);
    expect(e?.status).toBe('processed');
    expect(e?.attempts).toBe(2);
    expect(e?.history.map((h) => h.status)).toEqual(['accepted', 'queued', 'processing', 'queued', 'processing', 'processed']);
    expect((await effects(id!)).map((r) => r.result.owner)).toEqual(['B']);
  });

  it('renewal finds the lease gone: the run is aborted and nothing is committed', async () => {
    const a = new RecordingProcessor('effect', ['zombie.*']);
    a.behaviour = async (_e, ctx) => {
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      return { owner: 'A' }; // a result after the abort must be discarded
    };
    let completesByA = 0;
    const countingStore = new Proxy(t.store, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (prop === 'complete' || prop === 'completeMany' || prop === 'fail') completesByA += 1;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const { w: workerA, lost } = worker('A', a, undefined, countingStore);
    await workerA.start();
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'zombie.two' });
    await waitFor('A running the job', () => a.runs.length === 1);

    // While the lease holds, renewal keeps it and nothing is aborted.
    await workerA.renewLeases();
    expect(a.runs[0]!.signal.aborted).toBe(false);

    clock.advance(LEASE + 1);
    expect(await t.store.sweepExpiredLeases(clock.now())).toHaveLength(1);
    const holdB = gate();
    const b = new RecordingProcessor('effect', ['zombie.*']);
    b.behaviour = async () => {
      await holdB.promise;
      return { owner: 'B' };
    };
    const { w: workerB } = worker('B', b);
    await workerB.start();
    await waitFor('B running the job', () => b.runs.length === 1);

    await workerA.renewLeases();
    expect(a.runs[0]!.signal.aborted).toBe(true);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ stage: 'renew' });
    await waitFor('A finished its run', () => workerA.inFlightCount === 0);
    expect(completesByA).toBe(0);
    expect((await t.store.getEvent(id!))?.status).toBe('processing');

    holdB.open();
    await waitFor('B processed the event', async () => (await t.store.getEvent(id!))?.status === 'processed');
    expect((await effects(id!)).map((r) => r.result.owner)).toEqual(['B']);
  });

  it('a lease that ran out is fenced even before any sweep', async () => {
    const holdA = gate();
    const a = new RecordingProcessor('effect', ['zombie.*']);
    a.behaviour = async () => {
      await holdA.promise;
      throw new Error('A failed late'); // a late failure is fenced just like a late success
    };
    const { w: workerA, lost } = worker('A', a);
    await workerA.start();
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'zombie.three' });
    await waitFor('A running the job', () => a.runs.length === 1);
    clock.advance(LEASE);
    holdA.open();
    await waitFor('A noticed', () => lost.length === 1);
    expect(lost[0]).toMatchObject({ stage: 'fail' });
    const e = await t.store.getEvent(id!);
    expect(e?.status).toBe('processing');
    expect(e?.lastError).toBeNull();
    expect(await t.store.sweepExpiredLeases(clock.now())).toHaveLength(1);
    expect((await t.store.getEvent(id!))?.status).toBe('queued');
  });
});
