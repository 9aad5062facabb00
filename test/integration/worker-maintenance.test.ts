/**
 * The maintenance worker on real PostgreSQL: built-in sweeps and pruning on their schedule,
 * extra tasks, failures recorded, and several maintenance workers sharing tasks without ever
 * running one twice at once.
 */
import postgres from 'postgres';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { silentLogger } from '../../src/observability/logger.js';
import { MaintenanceWorker, type MaintenanceTask } from '../../src/worker/index.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import type { Store } from '../../src/store/types.js';
import { services } from '../helpers/services.js';
import { eventItems, gate, ingestEvents, sleep, waitFor, workerConfig } from '../fixtures/worker-helpers.js';

describe.skipIf(!services.postgres)('maintenance worker (postgres)', () => {
  let t: TestStore;
  let sql: postgres.Sql;
  let clock: ManualClock;
  const started: MaintenanceWorker[] = [];

  beforeEach(async () => {
    t = await createTestStore('postgres');
    sql = postgres(t.url!, { max: 1, onnotice: () => {} });
    clock = new ManualClock();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((m) => m.stop()));
    await sql.end({ timeout: 5 });
    await t.cleanup();
  });

  function maintenance(workerId: string, tasks: MaintenanceTask[] = [], overrides: Parameters<typeof workerConfig>[0] = {}) {
    const m = new MaintenanceWorker({ store: t.store, config: workerConfig(overrides), logger: silentLogger(), clock, workerId, tasks });
    const ran: string[] = [];
    const failed: string[] = [];
    m.events.on('task:completed', ({ name }) => ran.push(name));
    m.events.on('task:failed', ({ name, error }) => failed.push(`${name}: ${error}`));
    return { m, ran, failed };
  }

  function counter(name: string, intervalMs: number, run: () => Promise<unknown> = async () => null) {
    let runs = 0;
    const task: MaintenanceTask = {
      name,
      intervalMs,
      run: async () => {
        runs += 1;
        return run();
      },
    };
    return { task, runs: () => runs };
  }

  it('runs the built-in tasks when due and reschedules them by their interval', async () => {
    const { m, ran } = maintenance('m1', [], { sweepIntervalMs: 1000 });
    expect(m.taskNames()).toEqual(['sweep_leases', 'prune_idempotency', 'vacuum_queues']);
    expect(await m.runDue()).toBe(3);
    expect(ran.sort()).toEqual(['prune_idempotency', 'sweep_leases', 'vacuum_queues']);
    expect(await m.runDue()).toBe(0);
    clock.advance(999);
    expect(await m.runDue()).toBe(0);
    clock.advance(1);
    expect(await m.runDue()).toBe(1);
    expect(ran.at(-1)).toBe('sweep_leases');
    // The queue vacuum every 10 s by default, with the sweep then due too.
    clock.advance(9_000);
    expect(await m.runDue()).toBe(2);
    expect(ran.slice(-2).sort()).toEqual(['sweep_leases', 'vacuum_queues']);
    clock.advance(60_000);
    expect(await m.runDue()).toBe(3);
  });

  it('a queue vacuum that takes long holds up neither the sweep nor the loop', async () => {
    // Every call hangs, as the first vacuum after a long outage of maintenance might.
    const slow = Object.create(t.store) as Store;
    slow.vacuumQueues = () => new Promise<void>(() => {});
    const m = new MaintenanceWorker({ store: slow, config: workerConfig(), logger: silentLogger(), clock, workerId: 'm1' });
    const results = new Map<string, unknown>();
    m.events.on('task:completed', ({ name, result }) => results.set(name, result));
    expect(await m.runDue()).toBe(3);
    expect(results.get('vacuum_queues')).toBe('continuing in the background');
    clock.advance(1000);
    expect(await m.runDue()).toBe(1);
    clock.advance(9000);
    expect(await m.runDue()).toBe(2);
    expect(results.get('vacuum_queues')).toMatch(/^skipped/);
  });

  it('leaves the queue tables to autovacuum when TEM_QUEUE_VACUUM_INTERVAL_MS is 0', async () => {
    const { m } = maintenance('m1', [], { queueVacuumIntervalMs: 0 });
    expect(m.taskNames()).toEqual(['sweep_leases', 'prune_idempotency']);
  });

  it('sweeps expired leases: the job of a dead worker is queued again', async () => {
    const [id] = await ingestEvents(t.store, 1, clock.now());
    const [job] = await t.store.claim({ queue: 'processing', workerId: 'dead', limit: 1, leaseMs: 5000, now: clock.now() });
    expect(job?.event.id).toBe(id);
    const results: unknown[] = [];
    // The sweep logs each event it moves, with its id, as the worker logs its transitions.
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>));
        done();
      },
    });
    const m = new MaintenanceWorker({ store: t.store, config: workerConfig(), logger: pino({ level: 'info' }, sink), clock, workerId: 'm1' });
    m.events.on('task:completed', ({ name, result }) => name === 'sweep_leases' && results.push(result));
    await m.runDue();
    expect(results).toEqual([[]]);
    clock.advance(5000);
    await m.runDue();
    expect(results).toEqual([[], [{ eventId: id, status: 'queued', attempts: 1 }]]);
    const e = await t.store.getEvent(id!);
    expect(e?.status).toBe('queued');
    expect(e?.lastError).toBe('lease expired');
    expect(lines.filter((l) => l.event_id === id).map((l) => [l.level, l.msg, l.status])).toEqual([[40, 'lease expired, event requeued', 'queued']]);
  });

  it('with the default settings a dead worker\'s job is ready again within 10 s', async () => {
    const config = workerConfig();
    const [id] = await ingestEvents(t.store, 1, clock.now());
    const { m } = maintenance('m1');
    await m.runDue(); // the schedule is running before the worker dies
    const diedAt = clock.nowMs();
    await t.store.claim({ queue: 'processing', workerId: 'dead', limit: 1, leaseMs: config.leaseMs, now: clock.now() });
    // Step through time as the maintenance loop would (it ticks every 250 ms by default).
    let readyAfter: number | undefined;
    while (readyAfter === undefined && clock.nowMs() - diedAt <= 10_000) {
      clock.advance(250);
      await m.runDue();
      if ((await t.store.getEvent(id!))?.status === 'queued') readyAfter = clock.nowMs() - diedAt;
    }
    expect(readyAfter).toBeDefined();
    expect(readyAfter!).toBeGreaterThanOrEqual(config.leaseMs);
    expect(readyAfter!).toBeLessThanOrEqual(config.leaseMs + config.sweepIntervalMs + 250);
  });

  it('prunes idempotency keys older than the retention', async () => {
    const now = clock.now();
    const [item] = eventItems(1, now);
    const keyed = { ...item!, idempotencyKey: 'order-1', requestHash: 'h1' };
    expect((await t.store.ingest([keyed], now))[0]?.outcome).toBe('created');
    expect((await t.store.ingest([{ ...keyed, id: eventItems(1, now)[0]!.id }], now))[0]?.outcome).toBe('replayed');

    clock.advance(workerConfig().idempotencyRetentionMs + 1);
    const results: unknown[] = [];
    const { m } = maintenance('m1');
    m.events.on('task:completed', ({ name, result }) => name === 'prune_idempotency' && results.push(result));
    await m.runDue();
    expect(results).toEqual([1]);
    const later = clock.now();
    expect((await t.store.ingest([{ ...keyed, id: eventItems(1, later)[0]!.id }], later))[0]?.outcome).toBe('created');
  });

  it('runs extra tasks, records a failing run and keeps its schedule', async () => {
    const good = counter('relay', 500);
    const bad = counter('flaky_task', 500, async () => {
      throw new Error('relay target down');
    });
    const { m, ran, failed } = maintenance('m1', [good.task, bad.task], { queueVacuumIntervalMs: 0 });
    expect(await m.runDue()).toBe(4);
    expect(ran.sort()).toEqual(['prune_idempotency', 'relay', 'sweep_leases']);
    expect(failed).toEqual(['flaky_task: relay target down']);
    const [row] = await sql<{ last_error: string | null }[]>`SELECT last_error FROM maintenance_tasks WHERE name = 'flaky_task'`;
    expect(row?.last_error).toBe('relay target down');
    clock.advance(500);
    expect(await m.runDue()).toBe(2);
    expect([good.runs(), bad.runs()]).toEqual([2, 2]);
  });

  it('several maintenance workers never run a task twice at once, and each due run happens once', async () => {
    const hold = gate();
    const slowA = counter('slow', 10_000, () => hold.promise);
    const slowB = counter('slow', 10_000, () => hold.promise);
    const a = maintenance('A', [slowA.task], { queueVacuumIntervalMs: 0 });
    const b = maintenance('B', [slowB.task], { queueVacuumIntervalMs: 0 });
    const runningA = a.m.runDue();
    await waitFor('A running slow', () => slowA.runs() === 1);
    // B finds nothing it may run: A ran the due built-ins and holds `slow`.
    expect(await b.m.runDue()).toBe(0);
    expect(slowB.runs()).toBe(0);
    hold.open();
    expect(await runningA).toBe(3);
    expect(await b.m.runDue()).toBe(0);
    clock.advance(10_000);
    const counts = await Promise.all([a.m.runDue(), b.m.runDue()]);
    expect(slowA.runs() + slowB.runs()).toBe(2);
    // Ten seconds later `slow` and the sweep are due (pruning is not): two runs between the two.
    expect(counts[0] + counts[1]).toBe(2);
  });

  it('leaves a task it does not know to the processes that do', async () => {
    const relay = counter('relay', 10_000);
    const a = maintenance('A', [relay.task]);
    const b = maintenance('B');
    await a.m.runDue();
    expect(relay.runs()).toBe(1);
    clock.advance(10_000);
    await b.m.runDue();
    expect(b.ran).not.toContain('relay');
    clock.advance(5_000);
    await a.m.runDue();
    expect(relay.runs()).toBe(2);
  });

  it('start() runs its loop on its own; stop() ends it', async () => {
    const [id] = await ingestEvents(t.store, 1, clock.now());
    await t.store.claim({ queue: 'processing', workerId: 'dead', limit: 1, leaseMs: 100, now: clock.now() });
    const { m, ran } = maintenance('m1', [], { sweepIntervalMs: 40 });
    started.push(m);
    let stopped = false;
    m.events.on('stopped', () => (stopped = true));
    await m.start();
    await waitFor('first sweep', () => ran.includes('sweep_leases'));
    clock.advance(200);
    await waitFor('the expired lease swept', async () => (await t.store.getEvent(id!))?.status === 'queued');
    await m.stop();
    expect(stopped).toBe(true);
    const count = ran.length;
    clock.advance(10_000);
    await sleep(150);
    expect(ran.length).toBe(count);
  });

  it('rejects duplicate and malformed tasks', () => {
    const { m } = maintenance('m1');
    expect(() => m.register({ name: 'sweep_leases', intervalMs: 10, run: async () => null })).toThrow(/registered twice/);
    expect(() => m.register({ name: 'x', intervalMs: 0, run: async () => null })).toThrow(/intervalMs/);
  });
});
