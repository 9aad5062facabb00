/**
 * Failures on real PostgreSQL: backoff driven by a ManualClock, non-retryable errors, exhausted
 * attempts and their retry, skipping an already recorded effect.
 */
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { NonRetryableError, Worker, type WorkerEventMap } from '../../src/worker/index.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { services } from '../helpers/services.js';
import { RecordingProcessor, eventItems, ingestEvents, sleep, waitFor, workerConfig } from '../fixtures/worker-helpers.js';

describe.skipIf(!services.postgres)('worker retries and failures (postgres)', () => {
  let t: TestStore;
  let sql: postgres.Sql;
  let worker: Worker | undefined;
  const clock = new ManualClock();

  beforeAll(async () => {
    t = await createTestStore('postgres');
    sql = postgres(t.url!, { max: 1, onnotice: () => {} });
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });
  afterAll(async () => {
    await sql?.end({ timeout: 5 });
    await t?.cleanup();
  });

  function start(recorder: RecordingProcessor, overrides: Parameters<typeof workerConfig>[0] = {}) {
    const metrics = createMetrics();
    const w = new Worker({
      store: t.store,
      config: workerConfig({ retryBaseMs: 1000, retryMaxMs: 60_000, ...overrides }),
      logger: silentLogger(),
      clock,
      metrics,
      processors: [recorder],
      workerId: `w-${Math.random()}`,
      random: () => 0.5,
    });
    worker = w;
    const log: { name: keyof WorkerEventMap; attempt?: number; at?: number; reason?: string }[] = [];
    w.events.on('job:retry', ({ job, retryAt }) => log.push({ name: 'job:retry', attempt: job.attempt, at: retryAt.getTime() }));
    w.events.on('job:failed', ({ job, reason }) => log.push({ name: 'job:failed', attempt: job.attempt, reason }));
    w.events.on('job:completed', ({ job }) => log.push({ name: 'job:completed', attempt: job.attempt }));
    return { worker: w, metrics, log };
  }

  async function event(id: string) {
    const e = await t.store.getEvent(id);
    if (!e) throw new Error(`no event ${id}`);
    return e;
  }

  it('retries a throwing processor after the backoff: not claimed before run_at, claimed after', async () => {
    const recorder = new RecordingProcessor('flaky', ['flaky.*']);
    recorder.behaviour = async (_e, ctx) => {
      if (ctx.attempt < 3) throw new Error(`downstream timeout #${ctx.attempt}`);
      return { ok: 'third time' };
    };
    const { worker: w, log, metrics } = start(recorder);
    await w.start();
    const t0 = clock.nowMs();
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'flaky.op', maxAttempts: 5 });

    await waitFor('first attempt failed', () => log.length === 1);
    // Attempt 1: ceiling 1000 ms, random 0.5 → 500 ms.
    expect(log[0]).toEqual({ name: 'job:retry', attempt: 1, at: t0 + 500 });
    let e = await event(id!);
    expect(e.status).toBe('queued');
    expect(e.lastError).toBe('downstream timeout #1');
    expect(e.attempts).toBe(1);

    // Polls (50 ms) and explicit wakes do not run it before its time.
    clock.advance(499);
    w.wake();
    await sleep(250);
    expect(recorder.runsOf(id!)).toBe(1);
    expect((await event(id!)).status).toBe('queued');

    clock.advance(1);
    w.wake();
    await waitFor('second attempt failed', () => log.length === 2);
    // Attempt 2: ceiling 2000 ms → 1000 ms after the failure time.
    expect(log[1]).toEqual({ name: 'job:retry', attempt: 2, at: t0 + 500 + 1000 });
    await sleep(150);
    expect(recorder.runsOf(id!)).toBe(2);

    clock.advance(1000);
    await waitFor('third attempt processed', () => log.length === 3);
    expect(log[2]).toEqual({ name: 'job:completed', attempt: 3 });
    e = await event(id!);
    expect(e.status).toBe('processed');
    expect(e.attempts).toBe(3);
    // The earlier attempts' errors are in the history; the processed event itself has none.
    expect(e.lastError).toBeNull();
    expect(e.history.map((h) => [h.status, h.attempt, h.error])).toEqual([
      ['accepted', 0, null],
      ['queued', 0, null],
      ['processing', 1, null],
      ['queued', 1, 'downstream timeout #1'],
      ['processing', 2, null],
      ['queued', 2, 'downstream timeout #2'],
      ['processing', 3, null],
      ['processed', 3, null],
    ]);
    expect(recorder.runs.map((r) => r.attempt)).toEqual([1, 2, 3]);
    // Every run of this processor for this event gets the same key, for effects outside tem.
    expect(new Set(recorder.runs.map((r) => r.idempotencyKey))).toEqual(new Set([`${id}:${recorder.name}`]));
    const outcomes = Object.fromEntries((await metrics.jobsCompleted.get()).values.map((v) => [v.labels.outcome, v.value]));
    expect(outcomes).toEqual({ retry: 2, processed: 1 });
  });

  it('fails a NonRetryableError at once, attempts left or not', async () => {
    const recorder = new RecordingProcessor('strict', ['strict.*']);
    recorder.behaviour = async () => {
      throw new NonRetryableError('payload has no account');
    };
    const { worker: w, log } = start(recorder);
    await w.start();
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'strict.op', maxAttempts: 10 });
    await waitFor('the event failed', () => log.length === 1);
    expect(log[0]).toMatchObject({ name: 'job:failed', attempt: 1, reason: 'non_retryable' });
    const e = await event(id!);
    expect(e.status).toBe('failed');
    expect(e.attempts).toBe(1);
    expect(e.lastError).toBe('payload has no account');
    expect(recorder.runs).toHaveLength(1);
    expect((await t.store.stats(clock.now())).byStatus.failed).toBeGreaterThanOrEqual(1);
  });

  it('fails at once, saying why, a result that cannot be stored (BigInt, NUL); a NUL in an error message is kept readable', async () => {
    const recorder = new RecordingProcessor('odd', ['odd.*']);
    recorder.behaviour = async (e) => {
      if (e.type === 'odd.bigint') return { n: 10n };
      if (e.type === 'odd.nul') return 'a\u0000b';
      if (e.type === 'odd.surrogate') return { s: 'a\ud800b' };
      throw new Error('bad\u0000byte');
    };
    const { worker: w, log } = start(recorder);
    await w.start();
    const [big] = await ingestEvents(t.store, 1, clock.now(), { type: 'odd.bigint', maxAttempts: 5 });
    const [nul] = await ingestEvents(t.store, 1, clock.now(), { type: 'odd.nul', maxAttempts: 5 });
    const [thrown] = await ingestEvents(t.store, 1, clock.now(), { type: 'odd.throw', maxAttempts: 1 });
    const [lone] = await ingestEvents(t.store, 1, clock.now(), { type: 'odd.surrogate', maxAttempts: 5 });
    await waitFor('all four failed', () => log.filter((l) => l.name === 'job:failed').length === 4);
    expect((await event(lone!)).lastError).toMatch(/result cannot be stored: it holds a lone UTF-16 surrogate/);
    const a = await event(big!);
    expect(a).toMatchObject({ status: 'failed', attempts: 1 });
    expect(a.lastError).toMatch(/result cannot be stored: it is not JSON .*BigInt/);
    const b = await event(nul!);
    expect(b).toMatchObject({ status: 'failed', attempts: 1 });
    expect(b.lastError).toMatch(/result cannot be stored: it holds a NUL character/);
    const c = await event(thrown!);
    expect(c).toMatchObject({ status: 'failed', attempts: 1, lastError: 'bad\uFFFDbyte' });
  });

  it('counts a processor run past TEM_PROCESSOR_TIMEOUT_MS as a failed attempt and aborts its signal', async () => {
    const recorder = new RecordingProcessor('hung', ['hung.*']);
    recorder.behaviour = () => new Promise(() => undefined); // never settles
    const { worker: w, log } = start(recorder, { processorTimeoutMs: 200 });
    await w.start();
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'hung.op', maxAttempts: 1 });
    await waitFor('the hung run was given up', () => log.length === 1);
    expect(log[0]).toMatchObject({ name: 'job:failed', attempt: 1, reason: 'exhausted' });
    const e = await event(id!);
    expect(e.status).toBe('failed');
    expect(e.lastError).toMatch(/timed out after 200 ms/);
    expect(recorder.runs[0]!.signal.aborted).toBe(true);
  });

  it('fails after maxAttempts with last_error; retryEvents brings the event back', async () => {
    const recorder = new RecordingProcessor('exhaust', ['exhaust.*']);
    let broken = true;
    recorder.behaviour = async (_e, ctx) => {
      if (broken) throw new Error(`still broken (attempt ${ctx.attempt})`);
      return { fixed: true };
    };
    // baseMs 0: retries are due at once, so the attempts run back to back.
    const { worker: w, log } = start(recorder, { retryBaseMs: 0 });
    await w.start();
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'exhaust.op', maxAttempts: 3 });
    await waitFor('the event failed', () => log.some((l) => l.name === 'job:failed'));
    expect(log.map((l) => [l.name, l.attempt])).toEqual([
      ['job:retry', 1],
      ['job:retry', 2],
      ['job:failed', 3],
    ]);
    expect(log[2]!.reason).toBe('exhausted');
    let e = await event(id!);
    expect(e.status).toBe('failed');
    expect(e.attempts).toBe(3);
    expect(e.lastError).toBe('still broken (attempt 3)');
    expect(await t.store.hasEffect(id!, 'exhaust')).toBe(false);

    broken = false;
    expect((await t.store.retryEvents({ ids: [id!] }, clock.now())).ids).toEqual([id]);
    await waitFor('the retried event processed', async () => (await event(id!)).status === 'processed');
    e = await event(id!);
    expect(e.attempts).toBe(1);
    expect(e.history.slice(-3).map((h) => h.status)).toEqual(['queued', 'processing', 'processed']);
    expect(recorder.runs).toHaveLength(4);
    const [row] = await sql<{ result: unknown }[]>`SELECT result FROM processed_effects WHERE event_id = ${id!}`;
    expect(row?.result).toEqual({ fixed: true });
  });

  it('skips the run when the effect is already recorded, and just completes', async () => {
    const recorder = new RecordingProcessor('once', ['once.*']);
    const { worker: w, log } = start(recorder);
    const [item] = eventItems(1, clock.now(), { type: 'once.op' });
    // The effect of an earlier run whose completion was lost (recorded out of band here).
    await sql`INSERT INTO processed_effects (event_id, processor, result, created_at)
              VALUES (${item!.id}, 'once', ${sql.json({ earlier: true })}, now())`;
    await t.store.ingest([item!], clock.now());
    await w.start();
    await waitFor('the event processed', async () => (await event(item!.id)).status === 'processed');
    expect(recorder.runs).toHaveLength(0);
    expect(log).toEqual([{ name: 'job:completed', attempt: 1 }]);
    const rows = await sql<{ result: unknown }[]>`SELECT result FROM processed_effects WHERE event_id = ${item!.id}`;
    expect(rows.map((r) => r.result)).toEqual([{ earlier: true }]);
  });

  it('stores only the message of an error, never its stack, and survives non-Error throws', async () => {
    const recorder = new RecordingProcessor('odd', ['odd.*']);
    recorder.behaviour = async () => {
      throw { code: 42 };
    };
    const { worker: w } = start(recorder, { retryBaseMs: 0 });
    await w.start();
    const [id] = await ingestEvents(t.store, 1, clock.now(), { type: 'odd.op', maxAttempts: 1 });
    await waitFor('the event failed', async () => (await event(id!)).status === 'failed');
    expect((await event(id!)).lastError).toBe('{"code":42}');
  });
});
