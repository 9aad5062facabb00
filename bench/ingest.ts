/**
 * bench:ingest — POST /api/events with a 1 KiB payload, 64 connections, as fast as answered.
 * tem: `tem api` on PostgreSQL (admin key, rate limits off, no worker running).
 * Baseline: a minimal Fastify route doing one INSERT per request with postgres.js, same database,
 * same pool size. Target: tem ≥ 1.5× baseline req/s with p99 ≤ 25 ms.
 *
 * The two sides take turns, BENCH_ROUNDS times (baseline, tem, baseline, tem, …), and each side's
 * median round is reported. Why: on a shared 2-core machine, a neighbour's burst during one
 * side's only window moved the ratio by a third from run to run; alternating puts both sides
 * through the same stretch of machine weather.
 */
import postgres from 'postgres';
import { runBench } from './lib/cleanup.js';
import { benchDuration, envInt } from './lib/env.js';
import { hammer, type LoadFigures } from './lib/http-load.js';
import { freePort } from './lib/ports.js';
import { spawnNode } from './lib/proc.js';
import { printTable, writeResult } from './lib/report.js';
import { ratio } from './lib/stats.js';
import { deployTem, waitHttpOk } from './lib/tem.js';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 64);
const DURATION_S = benchDuration(10);
const WARMUP_S = envInt('BENCH_WARMUP', 2);
const POOL_MAX = envInt('BENCH_POOL_MAX', 10);
const ROUNDS = Math.max(1, envInt('BENCH_ROUNDS', 3));

/** A 1 KiB event payload (the serialized `payload` object is 1,024 bytes). */
function body(): string {
  const filler = 'x'.repeat(1024 - JSON.stringify({ data: '' }).length);
  return JSON.stringify({ type: 'bench.ingest', payload: { data: filler } });
}

async function countRows(url: string, table: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [row] = await sql.unsafe<{ n: string }[]>(`SELECT count(*)::text AS n FROM ${table}`);
    return Number(row!.n);
  } finally {
    await sql.end();
  }
}

/** The round with the median req/s (the lower middle one for an even count). */
function medianRound(rounds: LoadFigures[]): LoadFigures {
  const sorted = [...rounds].sort((a, b) => a.req_per_s - b.req_per_s);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

runBench(async () => {
  const payload = body();
  console.log(
    `bench:ingest — ${CONNECTIONS} connections, ${ROUNDS} alternating rounds of ${WARMUP_S} s warm-up + ${DURATION_S} s per side, body ${Buffer.byteLength(payload)} bytes`,
  );

  const tem = await deployTem('ingest', { roles: ['api'] });
  await waitHttpOk(`${tem.apiUrl}/healthz`);

  // Both on the same database; each idles while the other is measured.
  const port = await freePort();
  const baselineServer = spawnNode('baseline-ingest', 'bench/fixtures/baseline-ingest-server.ts', [], {
    env: { DATABASE_URL: tem.db.url, PORT: String(port), POOL_MAX: String(POOL_MAX) },
  });
  await baselineServer.waitForLog((l) => l.msg === 'listening');
  const headers = { 'content-type': 'application/json' };
  const load = { connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S, body: payload };

  const baselineRounds: LoadFigures[] = [];
  const temRounds: LoadFigures[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    baselineRounds.push(await hammer(`http://127.0.0.1:${port}/api/events`, { ...load, headers, serverPid: baselineServer.pid }));
    temRounds.push(
      await hammer(`${tem.apiUrl}/api/events`, { ...load, headers: { ...headers, 'x-api-key': tem.adminKey }, serverPid: tem.children.get('api')!.pid }),
    );
    console.log(`round ${i + 1}/${ROUNDS}: baseline ${baselineRounds[i]!.req_per_s} req/s, tem ${temRounds[i]!.req_per_s} req/s`);
  }
  await baselineServer.stop();
  const baseline = medianRound(baselineRounds);
  const temFigures = medianRound(temRounds);
  const baselineRows = await countRows(tem.db.url, 'baseline_events');
  const temRows = await countRows(tem.db.url, 'events');
  const sum = (rounds: LoadFigures[], key: 'ok' | 'non2xx' | 'errors' | 'timeouts'): number => rounds.reduce((a, r) => a + r[key], 0);

  printTable(`bench:ingest — POST /api/events, 1 KiB payload (median of ${ROUNDS} rounds; rows and failures summed over all)`, ['', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', '2xx', 'non-2xx', 'errors', 'rows', 'cpu ms/req'], [
    ['tem api', temFigures.req_per_s, temFigures.p50_ms, temFigures.p90_ms, temFigures.p99_ms, temFigures.max_ms, sum(temRounds, 'ok'), sum(temRounds, 'non2xx'), sum(temRounds, 'errors') + sum(temRounds, 'timeouts'), temRows, temFigures.server_cpu_ms_per_request],
    ['baseline (1 INSERT/request)', baseline.req_per_s, baseline.p50_ms, baseline.p90_ms, baseline.p99_ms, baseline.max_ms, sum(baselineRounds, 'ok'), sum(baselineRounds, 'non2xx'), sum(baselineRounds, 'errors') + sum(baselineRounds, 'timeouts'), baselineRows, baseline.server_cpu_ms_per_request],
  ]);
  const r = ratio(temFigures.req_per_s, baseline.req_per_s);
  const failures = sum(temRounds, 'non2xx') + sum(temRounds, 'errors') + sum(temRounds, 'timeouts');
  // A baseline that failed requests ran fewer real inserts: its req/s would flatter the ratio.
  const baselineFailures = sum(baselineRounds, 'non2xx') + sum(baselineRounds, 'errors') + sum(baselineRounds, 'timeouts');
  if (baselineFailures > 0) console.log(`the baseline failed ${baselineFailures} requests: the ratio is not a fair one, and the target is not counted as met`);
  writeResult({
    name: 'ingest',
    params: { connections: CONNECTIONS, rounds: ROUNDS, duration_s: DURATION_S, warmup_s: WARMUP_S, payload_bytes: 1024, body_bytes: Buffer.byteLength(payload), pool_max: POOL_MAX },
    tem: { ...temFigures, rows_in_db: temRows, rounds_req_per_s: temRounds.map((x) => x.req_per_s), rounds_p99_ms: temRounds.map((x) => x.p99_ms) },
    baseline: { ...baseline, rows_in_db: baselineRows, rounds_req_per_s: baselineRounds.map((x) => x.req_per_s), rounds_p99_ms: baselineRounds.map((x) => x.p99_ms) },
    ratio: r,
    ratio_of: 'req/s tem / baseline (median rounds)',
    target: {
      description: 'tem ≥ 1.5× baseline req/s with p99 ≤ 25 ms',
      met: r >= 1.5 && temFigures.p99_ms <= 25 && failures === 0 && baselineFailures === 0,
    },
    extra: { round_ratios: temRounds.map((t, i) => ratio(t.req_per_s, baselineRounds[i]!.req_per_s)) },
    notes: [
      'Each side is the round with the median req/s (its p99 too; every round\'s are in rounds_*); rows_in_db counts warm-up requests too.',
      'tem writes per event: the event, one history entry and one outbox row standing for accepted and queued, and the job (decisions 0001, 0019); the baseline writes one row.',
    ],
  });
});
