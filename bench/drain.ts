/**
 * bench:drain — (1) 50,000 queued events drained by `tem worker` with a no-op processor vs
 * graphile-worker 0.17 with a no-op task, same database, same concurrency, each in its own
 * process; jobs are enqueued first, then the worker starts and we time until none are left.
 * (2) enqueue → processing-start latency at a steady 500/s for ~10 s on both (run first, on
 * fresh tables, with the worker already running).
 * Target: tem ≥ 1.2× graphile-worker jobs/s.
 */
import postgres from 'postgres';
import { Logger as GraphileLogger, makeWorkerUtils, runMigrations } from 'graphile-worker';
import { openStore } from '../src/store/index.js';
import type { IngestItem, Store } from '../src/store/types.js';
import { uuidv7 } from '../src/core/ids.js';
import { runBench, onCleanup } from './lib/cleanup.js';
import { benchDuration, envInt, sleep } from './lib/env.js';
import { nowMs, paced } from './lib/pace.js';
import { cpuMs, spawnNode, type Child } from './lib/proc.js';
import { printTable, writeResult } from './lib/report.js';
import { ratio, round, summarize, type Summary } from './lib/stats.js';
import { deployTem } from './lib/tem.js';

const JOBS = envInt('BENCH_JOBS', 50_000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 32);
// graphile-worker warns that a pool smaller than its concurrency may not be optimal; on 2 cores
// a pool of 33 measured worse for it than 10 (1,636 against 1,852 jobs/s draining, and its
// enqueue → start p50 448 ms against 18 ms, 32 workers polling at once), so it keeps 10, as tem.
const POOL_MAX = envInt('BENCH_POOL_MAX', 10);
const RATE = envInt('BENCH_RATE', 500);
const LAT_DURATION_S = benchDuration(10);
const PROCESSOR = 'bench/fixtures/noop-processor.ts';
/** Connections the benchmark itself enqueues with, on each side. */
const ENQUEUE_POOL = 8;

interface DrainFigures {
  [key: string]: number;
  jobs: number;
  seconds: number;
  jobs_per_s: number;
  /** CPU the worker process used per job while draining (its own cost, without PostgreSQL's). */
  worker_cpu_ms_per_job: number;
}

/**
 * Polls the queue table until it is empty. The clock starts at the first poll that sees work
 * taken (a lease, or fewer rows), so process start-up is not counted on either side.
 */
async function timeDrain(sql: postgres.Sql, countQuery: string, total: number, timeoutS = 600): Promise<DrainFigures> {
  let started: number | null = null;
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const [row] = await sql.unsafe<{ left: string; taken: string }[]>(countQuery);
    const left = Number(row!.left);
    const taken = Number(row!.taken);
    const now = performance.now();
    if (started === null && (taken > 0 || left < total)) started = now;
    if (left === 0) {
      const seconds = (now - (started ?? now)) / 1000;
      return { jobs: total, seconds: round(seconds, 3), jobs_per_s: round(total / seconds, 1), worker_cpu_ms_per_job: 0 };
    }
    if (Date.now() > deadline) throw new Error(`queue not drained after ${timeoutS} s (${left} left)`);
    await sleep(50);
  }
}

function item(i: number, now: Date): IngestItem {
  return {
    id: uuidv7(now.getTime()),
    type: 'bench.drain',
    payload: { i },
    producerId: 'bench',
    userId: 'bench-user',
    channel: null,
    idempotencyKey: null,
    requestHash: null,
    occurredAt: now,
    maxAttempts: 5,
  };
}

async function enqueueTem(store: Store, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    const now = new Date();
    const batch = Array.from({ length: Math.min(1000, n - i) }, (_, k) => item(i + k, now));
    await store.ingest(batch, now);
  }
}

interface LatencyFigures {
  summary: Summary;
  /** How long the enqueue call itself took: if this grows, the enqueue side is saturated. */
  enqueue: Summary;
  sent: number;
  failed: number;
}

async function temLatency(store: Store, sql: postgres.Sql, rate: number, seconds: number): Promise<LatencyFigures> {
  const sentAt = new Map<string, number>();
  const enqueueMs: number[] = [];
  const load = await paced(rate, seconds, async (i, due) => {
    const now = new Date();
    const it = item(i, now);
    const t = nowMs();
    // Latency from when the enqueue was due (lib/pace.ts); the call's own time from its start.
    sentAt.set(it.id, due);
    await store.ingest([it], now);
    enqueueMs.push(nowMs() - t);
  });
  const ids = [...sentAt.keys()];
  await waitFor(async () => {
    const [row] = await sql<{ n: string }[]>`SELECT count(*)::text AS n FROM processed_effects WHERE event_id = ANY(${ids}::uuid[])`;
    return Number(row!.n) >= ids.length - load.failed;
  }, 60_000);
  const rows = await sql<{ event_id: string; result: { t: number } }[]>`
    SELECT event_id::text, result FROM processed_effects WHERE event_id = ANY(${ids}::uuid[])`;
  const lat = rows.map((r) => r.result.t - sentAt.get(r.event_id)!);
  return { summary: summarize(lat), enqueue: summarize(enqueueMs), sent: load.sent, failed: load.failed };
}

async function graphileLatency(
  utils: Awaited<ReturnType<typeof makeWorkerUtils>>,
  runner: Child,
  rate: number,
  seconds: number,
): Promise<LatencyFigures> {
  const sentAt = new Map<string, number>();
  const enqueueMs: number[] = [];
  const load = await paced(rate, seconds, async (_i, due) => {
    const t = nowMs();
    const job = await utils.addJob('noop', { lat: true });
    enqueueMs.push(nowMs() - t);
    sentAt.set(job.id, due);
  });
  const starts: [string, number][] = [];
  await waitFor(async () => {
    starts.push(...(await ask<{ starts: [string, number][] }>(runner, { cmd: 'report' })).starts);
    return starts.length >= load.sent - load.failed;
  }, 60_000);
  const lat = starts.filter(([id]) => sentAt.has(id)).map(([id, t]) => t - sentAt.get(id)!);
  return { summary: summarize(lat), enqueue: summarize(enqueueMs), sent: load.sent, failed: load.failed };
}

function ask<T>(child: Child, msg: unknown): Promise<T> {
  return new Promise((resolve) => {
    child.proc.once('message', (m) => resolve(m as T));
    child.proc.send!(msg as object);
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting for the queue');
    await sleep(100);
  }
}

runBench(async () => {
  console.log(`bench:drain — ${JOBS.toLocaleString('en-US')} jobs, concurrency ${CONCURRENCY}; latency at ${RATE}/s for ${LAT_DURATION_S} s`);
  const tem = await deployTem('drain', { roles: [], redis: false });
  const store = await openStore({ databaseUrl: tem.db.url, poolMax: ENQUEUE_POOL });
  onCleanup('close store', () => store.close());
  const sql = postgres(tem.db.url, { max: 2, onnotice: () => undefined });
  onCleanup('close sql', () => sql.end());

  // Each side: the latency phase first, on fresh tables, with the worker running; then the
  // worker is stopped, 50,000 jobs are enqueued and a new worker drains them.
  // ── tem ────────────────────────────────────────────────────────────────
  const workerEnv = { TEM_PROCESSORS: PROCESSOR, TEM_WORKER_CONCURRENCY: String(CONCURRENCY) };
  let worker = await tem.start('worker', { env: workerEnv });
  await temLatency(store, sql, 100, 1); // warm-up
  console.log(`tem: latency phase, ${RATE}/s for ${LAT_DURATION_S} s`);
  const temLat = await temLatency(store, sql, RATE, LAT_DURATION_S);
  await tem.stop(worker.child.name);
  const t0 = performance.now();
  await enqueueTem(store, JOBS);
  const temEnqueueS = (performance.now() - t0) / 1000;
  console.log(`tem: enqueued ${JOBS} events in ${temEnqueueS.toFixed(1)} s; starting tem worker`);
  // Each drain starts from a clean checkpoint, so one side's writes are not flushed in the other's window.
  await sql`CHECKPOINT`;
  const drainPromise = timeDrain(sql, 'SELECT count(*)::text AS left, count(*) FILTER (WHERE lease_token IS NOT NULL)::text AS taken FROM jobs', JOBS);
  worker = await tem.start('worker', { env: workerEnv });
  // The whole process's CPU, start-up included, on both sides: the worker drains while it is
  // still being waited for, so a reading taken after the wait missed most of the drain.
  const temDrain = await drainPromise;
  temDrain.worker_cpu_ms_per_job = round((await cpuMs(worker.child.pid)) / JOBS, 3);
  console.log(`tem: drained in ${temDrain.seconds} s (${temDrain.jobs_per_s} jobs/s)`);
  await tem.stop(worker.child.name);

  // ── graphile-worker ────────────────────────────────────────────────────
  await runMigrations({ connectionString: tem.db.url, maxPoolSize: 1, logger: quietLogger() });
  const utils = await makeWorkerUtils({ connectionString: tem.db.url, maxPoolSize: ENQUEUE_POOL, logger: quietLogger() });
  onCleanup('release graphile utils', () => utils.release());
  const startRunner = async (name: string, batched = false): Promise<Child> => {
    const runner = spawnNode(name, 'bench/fixtures/graphile-runner.ts', [], {
      ipc: true,
      env: { DATABASE_URL: tem.db.url, CONCURRENCY: String(CONCURRENCY), POOL_MAX: String(POOL_MAX), BATCHED: batched ? '1' : '0' },
    });
    await runner.waitForLog((l) => l.msg === 'listening');
    return runner;
  };
  const runner = await startRunner('graphile-worker');
  await graphileLatency(utils, runner, 100, 1); // warm-up
  console.log(`graphile-worker: latency phase, ${RATE}/s for ${LAT_DURATION_S} s`);
  const gwLat = await graphileLatency(utils, runner, RATE, LAT_DURATION_S);
  await runner.stop();
  // Two configurations: as the tem worker is run (defaults), and with graphile-worker's batching
  // on; the target is checked against whichever drains faster.
  const gwDrainOf = async (name: string, batched: boolean): Promise<{ drain: Awaited<ReturnType<typeof timeDrain>>; enqueueS: number }> => {
    const t = performance.now();
    for (let i = 0; i < JOBS; i += 1000) {
      await utils.addJobs(Array.from({ length: Math.min(1000, JOBS - i) }, (_, k) => ({ identifier: 'noop', payload: { i: i + k } })));
    }
    const enqueueS = (performance.now() - t) / 1000;
    console.log(`${name}: enqueued ${JOBS} jobs in ${enqueueS.toFixed(1)} s; starting runner`);
    await sql`VACUUM ANALYZE graphile_worker._private_jobs`;
    await sql`CHECKPOINT`;
    const drainPromise = timeDrain(sql, 'SELECT count(*)::text AS left, count(*) FILTER (WHERE locked_at IS NOT NULL)::text AS taken FROM graphile_worker._private_jobs', JOBS);
    const r = await startRunner(`${name}-drain`, batched);
    const drain = await drainPromise;
    drain.worker_cpu_ms_per_job = round((await cpuMs(r.pid)) / JOBS, 3);
    console.log(`${name}: drained in ${drain.seconds} s (${drain.jobs_per_s} jobs/s)`);
    await r.stop();
    return { drain, enqueueS };
  };
  const plain = await gwDrainOf('graphile-worker', false);
  const batchedGw = await gwDrainOf('graphile-worker (batched)', true);
  const best = batchedGw.drain.jobs_per_s > plain.drain.jobs_per_s ? batchedGw : plain;
  const gwDrain = best.drain;
  const gwEnqueueS = best.enqueueS;

  printTable(`bench:drain — ${JOBS.toLocaleString('en-US')} queued jobs, no-op processing, concurrency ${CONCURRENCY}`, ['', 'enqueue s', 'drain s', 'jobs/s', 'worker cpu ms/job'], [
    ['tem worker', round(temEnqueueS), temDrain.seconds, temDrain.jobs_per_s, temDrain.worker_cpu_ms_per_job],
    ['graphile-worker 0.17', round(plain.enqueueS), plain.drain.seconds, plain.drain.jobs_per_s, plain.drain.worker_cpu_ms_per_job],
    ['graphile-worker 0.17, batched', round(batchedGw.enqueueS), batchedGw.drain.seconds, batchedGw.drain.jobs_per_s, batchedGw.drain.worker_cpu_ms_per_job],
  ]);
  printTable(`enqueue → processing start at ${RATE}/s for ${LAT_DURATION_S} s (ms)`, ['', 'n', 'p50', 'p90', 'p99', 'max', 'mean', 'failed', 'enqueue p50', 'enqueue p99'], [
    ['tem worker', temLat.summary.count, temLat.summary.p50, temLat.summary.p90, temLat.summary.p99, temLat.summary.max, temLat.summary.mean, temLat.failed, temLat.enqueue.p50, temLat.enqueue.p99],
    ['graphile-worker 0.17', gwLat.summary.count, gwLat.summary.p50, gwLat.summary.p90, gwLat.summary.p99, gwLat.summary.max, gwLat.summary.mean, gwLat.failed, gwLat.enqueue.p50, gwLat.enqueue.p99],
  ]);
  const r = ratio(temDrain.jobs_per_s, gwDrain.jobs_per_s);
  writeResult({
    name: 'drain',
    params: { jobs: JOBS, concurrency: CONCURRENCY, enqueue_pool: ENQUEUE_POOL, pool_max_graphile: POOL_MAX, latency_rate_per_s: RATE, latency_duration_s: LAT_DURATION_S },
    tem: { ...temDrain, enqueue_s: round(temEnqueueS), latency_ms: temLat.summary, enqueue_call_ms: temLat.enqueue, latency_failed: temLat.failed },
    baseline: { ...gwDrain, enqueue_s: round(gwEnqueueS), configuration: best === batchedGw ? 'batched' : 'defaults', latency_ms: gwLat.summary, enqueue_call_ms: gwLat.enqueue, latency_failed: gwLat.failed },
    ratio: r,
    ratio_of: 'drain jobs/s tem / graphile-worker (the faster of its two configurations)',
    target: { description: 'tem ≥ 1.2× graphile-worker jobs/s', met: r >= 1.2 },
    extra: { baseline_configurations: { defaults: plain.drain, batched: batchedGw.drain }, latency_p50_ratio: ratio(temLat.summary.p50, gwLat.summary.p50), graphile_published_avg_latency_ms: 4 },
    notes: [
      'Drain time runs from the first poll (50 ms) that sees a job taken to the poll that sees none left, so process start-up is excluded on both sides; worker CPU per job is the whole process, start-up included, on both sides. Each drain starts after a CHECKPOINT.',
      'graphile-worker runs twice: with its defaults, and with its batching on (localQueue one deeper than the concurrency, completeJobBatchDelay 0); the ratio is against the faster.',
      'tem events were enqueued with Store.ingest in batches of 1,000 (event + history + job + outbox, as POST /api/events writes); graphile jobs with addJobs in batches of 1,000.',
      'Latency: from just before the enqueue call (Store.ingest of one event / addJob, each its own transaction, from a pool of ENQUEUE_POOL connections) to the processor or task start, both timestamped with performance.timeOrigin + now(). enqueue_call_ms shows whether the enqueue side kept up with the rate.',
      'Both workers log warnings only; tem worker pool size is its default (10), graphile maxPoolSize as in params (10: a pool of concurrency + 1, which graphile-worker advises, measured slower for it on 2 cores).',
    ],
  });
});

function quietLogger() {
  return new GraphileLogger(() => (level: string, message: string) => {
    if (level === 'error' || level === 'warning') console.error(`graphile ${level}: ${message}`);
  });
}
