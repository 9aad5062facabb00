/**
 * Start/stop and survival on real PostgreSQL: graceful shutdown finishes or releases in-flight
 * work, store errors do not end the loop, an unwritable completion is swept and re-run without
 * a second effect, and workers sharing a queue run each event once.
 */
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { CompleteItem, JobRef, Store } from '../../src/store/types.js';
import { Worker } from '../../src/worker/index.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { services } from '../helpers/services.js';
import { RecordingProcessor, gate, ingestEvents, sleep, statuses, waitFor, workerConfig } from '../fixtures/worker-helpers.js';

/**
 * The real store with some calls failing as they would while the database is down. A
 * `complete` fault also fails any completeMany (the worker's group commit) holding that job.
 */
function withFaults(store: Store, faults: { claim?: () => boolean; complete?: (job: JobRef) => boolean; releaseJobs?: () => boolean }): Store {
  const completeFault = faults.complete;
  const all: Record<string, ((...a: never[]) => boolean) | undefined> = {
    ...faults,
    completeMany: completeFault && ((items: CompleteItem[]) => items.some((i) => completeFault(i.job))),
  };
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const fault = all[String(prop)] as ((...a: unknown[]) => boolean) | undefined;
      return (...args: unknown[]) => {
        if (fault?.(...args)) return Promise.reject(createError('STORE_UNAVAILABLE', 'The database is not reachable'));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe.skipIf(!services.postgres)('worker lifecycle (postgres)', () => {
  let t: TestStore;
  let sql: postgres.Sql;
  const workers: Worker[] = [];
  const clock = new ManualClock();

  beforeAll(async () => {
    t = await createTestStore('postgres');
    sql = postgres(t.url!, { max: 1, onnotice: () => {} });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    // Each test starts from an empty queue.
    await sql`DELETE FROM jobs`;
  });
  afterAll(async () => {
    await sql?.end({ timeout: 5 });
    await t?.cleanup();
  });

  function worker(processors: RecordingProcessor[], overrides: Parameters<typeof workerConfig>[0] = {}, store: Store = t.store): Worker {
    const w = new Worker({ store, config: workerConfig(overrides), logger: silentLogger(), clock, processors, workerId: `w${workers.length}` });
    workers.push(w);
    return w;
  }

  it('graceful stop lets short jobs finish within shutdownTimeoutMs', async () => {
    const recorder = new RecordingProcessor('slowish', ['slowish.*']);
    const release = gate();
    recorder.behaviour = async () => {
      await release.promise;
      return { done: true };
    };
    const w = worker([recorder], { shutdownTimeoutMs: 10_000 });
    let stoppedWith: number | undefined;
    w.events.on('stopped', ({ released }) => (stoppedWith = released));
    const ids = await ingestEvents(t.store, 3, clock.now(), { type: 'slowish.op' });
    await w.start();
    await waitFor('three jobs running', () => recorder.runs.length === 3);
    const stopping = w.stop();
    await sleep(100);
    expect(stoppedWith).toBeUndefined();
    release.open();
    await stopping;
    expect(stoppedWith).toBe(0);
    expect(await statuses(t.store, ids)).toEqual(['processed', 'processed', 'processed']);
    expect(recorder.runs.every((r) => !r.signal.aborted)).toBe(true);
  });

  it('graceful stop releases jobs still running after the timeout, uncounted, and commits none of their results', async () => {
    const stuck = new RecordingProcessor('shared', ['stop.*']);
    const release = gate();
    stuck.behaviour = async () => {
      await release.promise; // ignores its signal on purpose
      return { from: 'stopped worker' };
    };
    const w = worker([stuck], { shutdownTimeoutMs: 150 });
    const released: string[] = [];
    w.events.on('job:released', ({ job }) => released.push(job.event.id));
    const ids = await ingestEvents(t.store, 2, clock.now(), { type: 'stop.op' });
    await w.start();
    await waitFor('both jobs running', () => stuck.runs.length === 2);
    await w.stop();

    expect(released.sort()).toEqual([...ids].sort());
    expect(stuck.runs.every((r) => r.signal.aborted)).toBe(true);
    for (const id of ids) {
      const e = await t.store.getEvent(id);
      expect(e?.status).toBe('queued');
      expect(e?.attempts).toBe(0);
      expect(e?.history.map((h) => h.status)).toEqual(['accepted', 'queued', 'processing', 'queued']);
    }
    expect((await t.store.stats(clock.now())).leased).toBe(0);

    // The stopped worker no longer listens or claims.
    await ingestEvents(t.store, 1, clock.now(), { type: 'stop.op' });
    await sleep(200);
    expect(stuck.runs).toHaveLength(2);

    // Another worker takes the released jobs at once; the stopped run's late result is dropped.
    const next = new RecordingProcessor('shared', ['stop.*']);
    next.behaviour = async () => ({ from: 'next worker' });
    await worker([next]).start();
    await waitFor('the released events processed', async () => (await statuses(t.store, ids)).every((s) => s === 'processed'));
    release.open();
    await sleep(100);
    const rows = await sql<{ result: { from: string } }[]>`SELECT result FROM processed_effects WHERE event_id = ANY(${ids})`;
    expect(rows.map((r) => r.result.from)).toEqual(['next worker', 'next worker']);
  });

  it('says so when the jobs it gives back at shutdown could not be released: the sweep requeues them', async () => {
    const stuck = new RecordingProcessor('stuck', ['unrel.*']);
    const release = gate();
    stuck.behaviour = async () => {
      await release.promise;
      return null;
    };
    const w = worker([stuck], { shutdownTimeoutMs: 100 }, withFaults(t.store, { releaseJobs: () => true }));
    const released: string[] = [];
    const unreleased: string[] = [];
    w.events.on('job:released', ({ job }) => released.push(job.event.id));
    w.events.on('job:unreleased', ({ job }) => unreleased.push(job.event.id));
    let stoppedWith = -1;
    w.events.on('stopped', ({ released: n }) => (stoppedWith = n));
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'unrel.op' });
    await w.start();
    await waitFor('the job running', () => stuck.runs.length === 1);
    await w.stop();
    release.open();
    expect(released).toEqual([]);
    expect(unreleased).toEqual([id]);
    expect(stoppedWith).toBe(0);
    // Still leased: left to the sweep, not silently "released".
    expect((await t.store.getEvent(id!))?.status).toBe('processing');
  });

  it('a claim the database does not answer holds a stop no longer than shutdownTimeoutMs, and what it takes later goes back', async () => {
    const recorder = new RecordingProcessor('late', ['lateclaim.*']);
    const answer = gate();
    let claims = 0;
    // The database stops answering: the claim hangs until it is let through.
    const hanging = new Proxy(t.store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (prop !== 'claim' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          claims++;
          await answer.promise;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const w = worker([recorder], { shutdownTimeoutMs: 200, pollIntervalMs: 50 }, hanging);
    await w.start();
    await waitFor('a claim under way', () => claims > 0);
    const ids = await ingestEvents(t.store, 2, clock.now(), { type: 'lateclaim.op' });
    const started = Date.now();
    await w.stop();
    expect(Date.now() - started).toBeLessThan(2000);

    // The claim goes through after all: its jobs are given back, not run by a stopped worker.
    answer.open();
    await waitFor('the late claim released', async () => (await t.store.stats(clock.now())).leased === 0 && claims > 0);
    await sleep(100);
    expect(recorder.runs).toHaveLength(0);
    expect(await statuses(t.store, ids)).toEqual(['queued', 'queued']);
  });

  it('stop() before start, twice, or while starting leaves nothing running', async () => {
    const recorder = new RecordingProcessor('never', ['never.*']);
    const idle = worker([recorder]);
    await idle.stop();
    await idle.stop();
    const racing = worker([recorder]);
    const starting = racing.start();
    const stopping = racing.stop();
    await Promise.all([starting, stopping, racing.stop()]);
    await ingestEvents(t.store, 1, clock.now(), { type: 'never.op' });
    await sleep(200);
    expect(recorder.runs).toHaveLength(0);
    await expect(racing.start()).rejects.toThrow(/already started/);
  });

  it('survives store errors while claiming and carries on once the database answers', async () => {
    let failures = 3;
    const store = withFaults(t.store, { claim: () => failures-- > 0 });
    const recorder = new RecordingProcessor('resilient', ['resilient.*']);
    const w = worker([recorder], {}, store);
    const errors: string[] = [];
    w.events.on('error', ({ context, error }) => errors.push(`${context}:${(error as { code?: string }).code}`));
    const ids = await ingestEvents(t.store, 5, clock.now(), { type: 'resilient.op' });
    await w.start();
    await waitFor('all processed', async () => (await statuses(t.store, ids)).every((s) => s === 'processed'));
    expect(errors).toEqual(['claim:STORE_UNAVAILABLE', 'claim:STORE_UNAVAILABLE', 'claim:STORE_UNAVAILABLE']);
    expect(recorder.runs).toHaveLength(5);
  });

  it('keeps going when its database connections are killed under it', async () => {
    const recorder = new RecordingProcessor('outage', ['outage.*']);
    recorder.behaviour = async () => {
      await sleep(2);
      return null;
    };
    // No polling to fall back on: after the outage only a re-established LISTEN wakes it.
    const w = worker([recorder], { workerConcurrency: 4, workerBatchSize: 4, pollIntervalMs: 60_000 });
    const errors: string[] = [];
    w.events.on('error', ({ context }) => errors.push(context));
    const ids = await ingestEvents(t.store, 200, clock.now(), { type: 'outage.op' });
    await w.start();
    const [{ pid: ours } = { pid: -1 }] = await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
    for (let i = 0; i < 3; i++) {
      await sleep(150);
      await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> ${ours}`;
    }
    await waitFor('all processed', async () => {
      const [{ left } = { left: -1 }] = await sql<{ left: number }[]>`SELECT count(*)::int AS left FROM events WHERE id = ANY(${ids}) AND status <> 'processed'`;
      if (left > 0) {
        // Jobs whose completion was lost with a connection are swept after their lease.
        clock.advance(6000);
        // (Through the worker's store, whose pool may still hold a killed connection.)
        await t.store.sweepExpiredLeases(clock.now()).catch(() => []);
      }
      return left === 0;
    }, 20_000, 200);
    const [{ count } = { count: -1 }] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM processed_effects WHERE event_id = ANY(${ids})`;
    expect(count).toBe(200);
    expect(errors.length).toBeGreaterThan(0);
    // Still listening afterwards: a new event is picked up. The ingest goes through the same
    // store, whose pool may still hand out a connection killed above: that call fails with
    // STORE_UNAVAILABLE (a 503 to an HTTP client), and is retried as a client would.
    let late: string | undefined;
    await waitFor('the late event ingested', async () => {
      try {
        [late] = await ingestEvents(t.store, 1, clock.now(), { type: 'outage.op' });
        return true;
      } catch (err) {
        if ((err as { code?: string }).code !== 'STORE_UNAVAILABLE') throw err;
        return false;
      }
    }, 5_000, 100);
    await waitFor('the late event processed', async () => (await t.store.getEvent(late!))?.status === 'processed');
  });

  it('a completion that cannot be written stays leased, is swept, re-run and recorded once', async () => {
    const config = { leaseMs: 5000 };
    let firstToken: string | undefined;
    const store = withFaults(t.store, {
      complete: (job) => {
        firstToken ??= job.leaseToken;
        return job.leaseToken === firstToken;
      },
    });
    const recorder = new RecordingProcessor('unlucky', ['unlucky.*']);
    const w = worker([recorder], config, store);
    const contexts: string[] = [];
    w.events.on('error', ({ context }) => contexts.push(context));
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'unlucky.op' });
    await w.start();
    // The database "unavailable": the worker keeps trying while its lease may hold.
    await waitFor('retrying past the short sequence', () => contexts.filter((c) => c === 'complete').length >= 5, 15_000);
    expect(w.inFlightCount).toBe(1);
    let e = await t.store.getEvent(id!);
    expect(e?.status).toBe('processing');
    expect((await t.store.stats(clock.now())).leased).toBe(1);

    // Past the lease it gives up; a renewal meanwhile may have moved the lease on once more.
    clock.advance(config.leaseMs + 1);
    await waitFor('the completion given up', () => w.inFlightCount === 0, 10_000);
    clock.advance(config.leaseMs + 1);
    expect(await t.store.sweepExpiredLeases(clock.now())).toHaveLength(1);
    await waitFor('the re-run processed', async () => (await t.store.getEvent(id!))?.status === 'processed');
    e = await t.store.getEvent(id!);
    expect(e?.attempts).toBe(2);
    expect(recorder.runsOf(id!)).toBe(2);
    const [{ count } = { count: -1 }] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM processed_effects WHERE event_id = ${id!}`;
    expect(count).toBe(1);
  });

  it('a completion the database refuses for longer than the short retries is written once it answers, within the lease', async () => {
    // Five refusals take about 5 s of retries (0.1 + 0.3 + 0.9 + 2 + 2): the run's result is
    // kept, not left to the sweep, which would count the attempt and run the processor again.
    let refusals = 5;
    const store = withFaults(t.store, { complete: () => refusals-- > 0 });
    const recorder = new RecordingProcessor('patient', ['patient.*']);
    const w = worker([recorder], { leaseMs: 60_000 }, store);
    const contexts: string[] = [];
    w.events.on('error', ({ context }) => contexts.push(context));
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'patient.op' });
    await w.start();
    await waitFor('processed', async () => (await t.store.getEvent(id!))?.status === 'processed', 20_000);
    expect(contexts.filter((c) => c === 'complete')).toHaveLength(5);
    const e = await t.store.getEvent(id!);
    expect(e?.attempts).toBe(1);
    expect(recorder.runsOf(id!)).toBe(1);
  }, 30_000);

  it('several workers on one queue run every event exactly once', async () => {
    const shared = new RecordingProcessor('fanout', ['fanout.*']);
    shared.behaviour = async () => {
      await sleep(Math.random() * 3);
      return null;
    };
    const ids = await ingestEvents(t.store, 300, clock.now(), { type: 'fanout.op' });
    const ws = [0, 1, 2].map(() => worker([shared], { workerConcurrency: 8, workerBatchSize: 5 }));
    await Promise.all(ws.map((w) => w.start()));
    await waitFor('all processed', async () => {
      const [{ left } = { left: -1 }] = await sql<{ left: number }[]>`SELECT count(*)::int AS left FROM events WHERE id = ANY(${ids}) AND status <> 'processed'`;
      return left === 0;
    }, 20_000);
    expect(await statuses(t.store, ids)).toEqual(ids.map(() => 'processed'));
    expect(shared.runs).toHaveLength(300);
    expect(new Set(shared.runs.map((r) => r.eventId)).size).toBe(300);
    const [{ count } = { count: -1 }] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM processed_effects WHERE event_id = ANY(${ids})`;
    expect(count).toBe(300);
  });
});
