/**
 * bench:ingest — POST /api/events with a 1 KiB payload, 64 connections, as fast as answered.
 * tem: `tem api` on PostgreSQL (admin key, rate limits off, no worker running).
 * Baseline: a minimal Fastify route doing one INSERT per request with postgres.js, same database,
 * same pool size. Target: tem ≥ 1.5× baseline req/s with p99 ≤ 25 ms.
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

runBench(async () => {
  const payload = body();
  console.log(`bench:ingest — ${CONNECTIONS} connections, ${WARMUP_S} s warm-up + ${DURATION_S} s each, body ${Buffer.byteLength(payload)} bytes`);

  const tem = await deployTem('ingest', { roles: ['api'] });
  await waitHttpOk(`${tem.apiUrl}/healthz`);

  // Baseline first, on the same database, while tem's API idles.
  const port = await freePort();
  const baselineServer = spawnNode('baseline-ingest', 'bench/fixtures/baseline-ingest-server.ts', [], {
    env: { DATABASE_URL: tem.db.url, PORT: String(port), POOL_MAX: String(POOL_MAX) },
  });
  await baselineServer.waitForLog((l) => l.msg === 'listening');
  const headers = { 'content-type': 'application/json' };
  const baseline: LoadFigures = await hammer(`http://127.0.0.1:${port}/api/events`, {
    connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S, headers, body: payload, serverPid: baselineServer.pid,
  });
  await baselineServer.stop();
  const baselineRows = await countRows(tem.db.url, 'baseline_events');

  const temFigures: LoadFigures = await hammer(`${tem.apiUrl}/api/events`, {
    connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S, headers: { ...headers, 'x-api-key': tem.adminKey }, body: payload, serverPid: tem.children.get('api')!.pid,
  });
  const temRows = await countRows(tem.db.url, 'events');

  printTable('bench:ingest — POST /api/events, 1 KiB payload', ['', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', '2xx', 'non-2xx', 'errors', 'rows', 'cpu ms/req'], [
    ['tem api', temFigures.req_per_s, temFigures.p50_ms, temFigures.p90_ms, temFigures.p99_ms, temFigures.max_ms, temFigures.ok, temFigures.non2xx, temFigures.errors + temFigures.timeouts, temRows, temFigures.server_cpu_ms_per_request],
    ['baseline (1 INSERT/request)', baseline.req_per_s, baseline.p50_ms, baseline.p90_ms, baseline.p99_ms, baseline.max_ms, baseline.ok, baseline.non2xx, baseline.errors + baseline.timeouts, baselineRows, baseline.server_cpu_ms_per_request],
  ]);
  const r = ratio(temFigures.req_per_s, baseline.req_per_s);
  writeResult({
    name: 'ingest',
    params: { connections: CONNECTIONS, duration_s: DURATION_S, warmup_s: WARMUP_S, payload_bytes: 1024, body_bytes: Buffer.byteLength(payload), pool_max: POOL_MAX },
    tem: { ...temFigures, rows_in_db: temRows },
    baseline: { ...baseline, rows_in_db: baselineRows },
    ratio: r,
    ratio_of: 'req/s tem / baseline',
    target: {
      description: 'tem ≥ 1.5× baseline req/s with p99 ≤ 25 ms',
      met: r >= 1.5 && temFigures.p99_ms <= 25 && temFigures.non2xx === 0 && temFigures.errors === 0,
    },
    notes: [
      'rows_in_db counts warm-up requests too; every 2xx must have its row.',
      'tem writes per event: the event, two history entries, the job and two outbox rows (decision 0001); the baseline writes one row.',
    ],
  });
});
