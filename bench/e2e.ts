/**
 * bench:e2e — events ingested over HTTP at a steady 1,000/s for ~10 s; latency from sending the
 * POST to the owner's socket receiving the `processed` event.update. Distributed on PostgreSQL
 * and Redis: `tem api`, `tem worker`, `tem worker --queue maintenance` (outbox relay), `tem gateway`.
 * Baseline: the ingest alone (POST → 202) in the same run: ratio = e2e p50 / ingest p50.
 * Targets: e2e p50 ≤ 10 ms, p99 ≤ 50 ms.
 */
import postgres from 'postgres';
import WebSocket from 'ws';
import { runBench, onCleanup } from './lib/cleanup.js';
import { benchDuration, envInt, sleep } from './lib/env.js';
import { closeHttp, postJson } from './lib/http.js';
import { nowMs, paced } from './lib/pace.js';
import { printTable, writeResult } from './lib/report.js';
import { ratio, round, summarize, type Summary } from './lib/stats.js';
import { busyShare, cpuMs, cpuMsByName, machineTicks } from './lib/proc.js';
import { deployTem, principalWithKey, type TemDeployment } from './lib/tem.js';

const RATE = envInt('BENCH_RATE', 1000);
const DURATION_S = benchDuration(10);
const USERS = envInt('BENCH_USERS', 50);
// Warm-up at the measured rate for 2 s: a gentler one left the first seconds of the run to open
// database connections and fill their caches, under the full rate (p50 of 250 ms for 2 s, then 40).
const WARMUP_RATE = envInt('BENCH_WARMUP_RATE', RATE);
const WARMUP_EVENTS = envInt('BENCH_WARMUP_EVENTS', Math.max(500, 2 * WARMUP_RATE));

interface Owner {
  id: string;
  key: string;
  ws: WebSocket;
}

/** processed event.update arrival times by event id (epoch ms). */
const processedAt = new Map<string, number>();

async function connectOwner(gatewayWs: string, id: string, key: string): Promise<Owner> {
  const ws = new WebSocket(`${gatewayWs}?token=${encodeURIComponent(key)}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id}: no HELLO_ACK`)), 30_000);
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      // Only the processed updates are timed: the other frames are not parsed (the client shares the cores).
      if (!text.includes('"processed"') && !text.includes('HELLO_ACK')) return;
      const frame = JSON.parse(text) as { type: string; payload: { channel?: string; event?: string; payload?: { event_id: string; status: string } } };
      if (frame.type === 'HELLO_ACK') {
        clearTimeout(timer);
        resolve();
      } else if (frame.type === 'EVENT' && frame.payload.event === 'event.update' && frame.payload.payload?.status === 'processed') {
        processedAt.set(frame.payload.payload.event_id, nowMs());
      }
    });
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`${id}: closed ${code}`)));
  });
  return { id, key, ws };
}

interface Sent {
  t0: number;
  t202: number;
}

async function drive(dep: TemDeployment, owners: Owner[], rate: number, seconds: number): Promise<{ sent: Map<string, Sent>; failed: number; errors: string[]; sendLagMs: Summary }> {
  const sent = new Map<string, Sent>();
  const url = `${dep.apiUrl}/api/events`;
  // Timed from when the POST was due, not when it went out (lib/pace.ts).
  const load = await paced(rate, seconds, async (i, t0) => {
    const owner = owners[i % owners.length]!;
    const res = await postJson(url, JSON.stringify({ type: 'bench.e2e', payload: { i } }), { 'x-api-key': owner.key });
    const t202 = nowMs();
    if (res.status !== 202) throw new Error(`POST /api/events → ${res.status} ${res.body.slice(0, 200)}`);
    sent.set((JSON.parse(res.body) as { event_id: string }).event_id, { t0, t202 });
  });
  return { sent, failed: load.failed, errors: load.errors, sendLagMs: load.sendLagMs };
}

/** CPU ms used so far by each tem role of the deployment. */
async function roleCpu(dep: TemDeployment): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, child] of dep.children) out[name] = await cpuMs(child.pid).catch(() => 0);
  // Shared services, all their processes (other users of the machine's servers count too).
  out.postgresql = await cpuMsByName('postgres');
  out.redis = await cpuMsByName('redis-server');
  return out;
}

/**
 * Where the time goes, per event, from timestamps the system itself recorded: the ingest's commit
 * start (events.created_at), the processor's start (the no-op processor's result `t`), the
 * completion's commit start (events.processed_at) and the socket's receipt. Medians per stage.
 */
async function stages(dep: TemDeployment, sent: Map<string, Sent>): Promise<Record<string, number>> {
  const sql = postgres(dep.db.url, { max: 1, onnotice: () => undefined });
  try {
    const rows = await sql<{ id: string; created: number; started: number; completed: number }[]>`
      SELECT e.id::text AS id, extract(epoch FROM e.created_at) * 1000 AS created,
        (pe.result->>'t')::float8 AS started, extract(epoch FROM e.processed_at) * 1000 AS completed
      FROM events e JOIN processed_effects pe ON pe.event_id = e.id
      WHERE e.id = ANY(${[...sent.keys()]}::uuid[])`;
    const parts: Record<string, number[]> = { post_to_commit_start: [], commit_to_202: [], accepted_to_processing: [], processing_to_complete_start: [], complete_start_to_socket: [] };
    for (const r of rows) {
      const s = sent.get(r.id)!;
      const got = processedAt.get(r.id);
      if (got === undefined) continue;
      parts.post_to_commit_start!.push(Number(r.created) - s.t0);
      parts.commit_to_202!.push(s.t202 - Number(r.created));
      parts.accepted_to_processing!.push(Number(r.started) - s.t202);
      parts.processing_to_complete_start!.push(Number(r.completed) - Number(r.started));
      parts.complete_start_to_socket!.push(got - Number(r.completed));
    }
    return Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, summarize(v).p50]));
  } finally {
    await sql.end();
  }
}

async function waitAllProcessed(ids: Iterable<string>, timeoutMs: number): Promise<number> {
  const list = [...ids];
  const until = Date.now() + timeoutMs;
  for (;;) {
    const missing = list.filter((id) => !processedAt.has(id)).length;
    if (missing === 0 || Date.now() > until) return missing;
    await sleep(200);
  }
}

runBench(async () => {
  console.log(`bench:e2e — ${RATE}/s for ${DURATION_S} s over HTTP, ${USERS} owners with one socket each`);
  const dep = await deployTem('e2e', {
    roles: ['api', 'worker', 'maintenance'],
    // Owners only listen: a long heartbeat interval spares them PING frames during the run.
    env: { TEM_PROCESSORS: 'bench/fixtures/noop-processor.ts', TEM_HEARTBEAT_INTERVAL_MS: '600000' },
  });
  const gw = await dep.start('gateway');
  onCleanup('close http agent', () => closeHttp());
  const gatewayWs = `${gw.url!.replace('http', 'ws')}/ws`;
  const owners: Owner[] = [];
  for (let u = 0; u < USERS; u++) {
    const id = `u_${dep.tag}_${u}`;
    const key = await principalWithKey(dep, id, 'user', 'user');
    owners.push(await connectOwner(gatewayWs, id, key));
  }
  onCleanup('close owner sockets', () => owners.forEach((o) => o.ws.terminate()));

  // Warm-up end to end (also proves every role is up), figures discarded.
  const warm = await drive(dep, owners, WARMUP_RATE, WARMUP_EVENTS / WARMUP_RATE);
  const warmMissing = await waitAllProcessed(warm.sent.keys(), 60_000);
  if (warmMissing > 0) throw new Error(`warm-up: ${warmMissing} of ${warm.sent.size} events never reached their owner as processed`);
  await sleep(1000);

  const cpu0 = await roleCpu(dep);
  const clientCpu0 = process.cpuUsage();
  const ticks0 = await machineTicks();
  const runStart = nowMs();
  const run = await drive(dep, owners, RATE, DURATION_S);
  const missing = await waitAllProcessed(run.sent.keys(), 30_000);
  const lastUpdate = Math.max(...[...run.sent.keys()].map((id) => processedAt.get(id) ?? 0));
  const lastAccepted = Math.max(...[...run.sent.values()].map((s) => s.t202));
  const cpu1 = await roleCpu(dep);
  const machineBusy = round(busyShare(ticks0, await machineTicks()) * 100, 1);
  const clientCpu = process.cpuUsage(clientCpu0);
  // The load generator shares the machine's cores with the system it measures: its CPU is shown.
  const roleCpuS = {
    ...Object.fromEntries(Object.keys(cpu1).map((k) => [k, round((cpu1[k]! - (cpu0[k] ?? 0)) / 1000, 2)])),
    bench_client: round((clientCpu.user + clientCpu.system) / 1e6, 2),
  };
  const ingestLat: number[] = [];
  const e2eLat: number[] = [];
  // Also per second of the run: a stall (vacuum, GC, a neighbour) shows as one bad second, queueing as all.
  const perSecond: number[][] = [];
  for (const [id, s] of run.sent) {
    ingestLat.push(s.t202 - s.t0);
    const t = processedAt.get(id);
    if (t === undefined) continue;
    e2eLat.push(t - s.t0);
    (perSecond[Math.floor((s.t0 - runStart) / 1000)] ??= []).push(t - s.t0);
  }
  const e2e = summarize(e2eLat);
  const timeline = perSecond.map((l, second) => {
    const { p50, p99 } = summarize(l);
    return { second, n: l.length, p50, p99 };
  });
  console.log(`by second (p50/p99 ms): ${timeline.map((x) => `${x.p50}/${x.p99}`).join('  ')}`);
  const ingest = summarize(ingestLat);
  printTable(`bench:e2e — ${RATE}/s for ${DURATION_S} s: POST → owner receives processed (ms)`, ['', 'n', 'p50', 'p90', 'p99', 'max', 'mean', 'missing', 'failed'], [
    ['e2e POST → processed update', e2e.count, e2e.p50, e2e.p90, e2e.p99, e2e.max, e2e.mean, missing, run.failed],
    ['baseline: POST → 202', ingest.count, ingest.p50, ingest.p90, ingest.p99, ingest.max, ingest.mean, '-', run.failed],
  ]);
  if (run.errors.length) console.log(`errors: ${run.errors.join('; ')}`);
  console.log(`POSTs went out late by p50 ${run.sendLagMs.p50} ms, p99 ${run.sendLagMs.p99} ms (counted in the latencies above)`);
  console.log(`CPU seconds used during the run by role: ${JSON.stringify(roleCpuS)}; machine ${machineBusy} % busy`);
  const stageP50 = await stages(dep, run.sent);
  console.log(`median ms per stage: ${JSON.stringify(stageP50)}`);
  writeResult({
    name: 'e2e',
    params: { rate_per_s: RATE, duration_s: DURATION_S, owners: USERS, warmup_events: WARMUP_EVENTS, warmup_rate_per_s: WARMUP_RATE, offered: Math.round(RATE * DURATION_S) },
    tem: {
      latency_ms: e2e,
      missing_updates: missing,
      failed_posts: run.failed,
      // Offered RATE/s: if these fall behind it, the latencies are queueing, not service time.
      achieved_ingest_per_s: round(run.sent.size / ((lastAccepted - runStart) / 1000), 1),
      achieved_processed_updates_per_s: round((run.sent.size - missing) / ((lastUpdate - runStart) / 1000), 1),
      cpu_seconds_by_role: roleCpuS,
      // All cores, everything on the machine (PostgreSQL and Redis included), POSTs to last update.
      machine_busy_percent: machineBusy,
      stage_p50_ms: stageP50,
      // How late the load generator sent the POSTs; latencies count from when each was due.
      send_lag_ms: run.sendLagMs,
      by_second: timeline,
    },
    baseline: { latency_ms: ingest, what: 'POST /api/events → 202 on the same requests' },
    ratio: ratio(e2e.p50, ingest.p50),
    ratio_of: 'e2e p50 / ingest (POST → 202) p50',
    target: { description: 'e2e p50 ≤ 10 ms and p99 ≤ 50 ms, nothing missing', met: e2e.p50 <= 10 && e2e.p99 <= 50 && missing === 0 && run.failed === 0 },
    notes: [
      'Open-loop pacing: each POST is sent on schedule whatever earlier answers do, and timed from when it was due, so the load generator falling behind counts against the result (send_lag_ms says by how much).',
      'Each owner (a user principal with its own key) has one WebSocket, auto-subscribed to user:{id}; requests rotate over the owners.',
      'Path: api (group commit) → PostgreSQL → worker (LISTEN/NOTIFY, no-op processor) → outbox → maintenance relay → Redis → gateway → socket.',
    ],
  });
});
