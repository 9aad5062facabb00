/**
 * bench:connections — 20,000 idle authenticated connections, each subscribed to 2 channels:
 * server memory per connection, (RSS after − RSS before) / N, both read after a full GC (through
 * the inspector). Baseline: plain `ws` servers holding the same number of idle connections.
 * One process may hold at most 20,000 open files, so the connections are split over
 * BENCH_SERVERS server processes (2 by default) and the figures summed. Target ≤ 16 KiB.
 */
import { runBench } from './lib/cleanup.js';
import { startFleet, type Fleet } from './lib/clients.js';
import { envInt, sleep } from './lib/env.js';
import { attachInspector, type Inspector } from './lib/inspector.js';
import { freePort } from './lib/ports.js';
import { cpuMs, rssBytes, spawnNode, type Child } from './lib/proc.js';
import { printTable, writeResult } from './lib/report.js';
import { ratio, round } from './lib/stats.js';
import { deployTem } from './lib/tem.js';
import { REDIS_URL } from './lib/env.js';
import { Redis } from 'ioredis';

const N = envInt('BENCH_CONNECTIONS', 20_000);
const SERVERS = envInt('BENCH_SERVERS', 2);
const ROOMS = envInt('BENCH_ROOMS', 200);
const SETTLE_MS = 5000;
/** Idle means: each server used under this much CPU in the last second (after SETTLE_MS). */
const QUIET_CPU_MS_PER_S = 20;
const QUIET_MAX_WAIT_MS = 120_000;
const WARMUP_CONNECTIONS = 200;

interface Server {
  child: Child;
  inspector: Inspector;
  wsUrl: string;
}

interface MemFigures {
  [key: string]: number;
  connections: number;
  rss_before_mib: number;
  rss_after_mib: number;
  bytes_per_connection: number;
  kib_per_connection: number;
  heap_bytes_per_connection: number;
  failed: number;
}

/**
 * Waits until every server is idle. Why: on a slow machine a gateway still works through the
 * connection burst (presence writes, session records) for many seconds after the last handshake,
 * and the heap read then holds that backlog, not what an idle connection costs.
 */
async function untilQuiet(servers: Server[]): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < QUIET_MAX_WAIT_MS) {
    const before = await Promise.all(servers.map((s) => cpuMs(s.child.pid)));
    await sleep(1000);
    const after = await Promise.all(servers.map((s) => cpuMs(s.child.pid)));
    if (after.every((ms, i) => ms - before[i]! < QUIET_CPU_MS_PER_S)) break;
  }
  return Date.now() - started;
}

async function snapshot(servers: Server[]): Promise<{ rss: number; heap: number }> {
  let rss = 0;
  let heap = 0;
  for (const s of servers) {
    await s.inspector.gc();
    await sleep(200);
    rss += await rssBytes(s.child.pid);
    heap += (await s.inspector.memoryUsage()).heapUsed;
  }
  return { rss, heap };
}

/** Redis's own memory in use (its sessions and presence entries are per-connection state too). */
async function redisUsedBytes(): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
  } finally {
    redis.disconnect();
  }
}

async function measure(
  label: string,
  servers: Server[],
  connect: (server: Server, index: number, n: number) => Promise<Fleet>,
  redisBytes?: () => Promise<number>,
): Promise<MemFigures & { redis_bytes_per_connection?: number }> {
  // Warm-up: code paths and caches set up by the first connections are not per-connection cost.
  for (let k = 0; k < servers.length; k++) {
    const warm = await connect(servers[k]!, k + 100, WARMUP_CONNECTIONS);
    await warm.close();
  }
  await sleep(1000);
  const before = await snapshot(servers);
  const redisBefore = await redisBytes?.();
  const fleets: Fleet[] = [];
  const per = Math.ceil(N / servers.length);
  for (let k = 0; k < servers.length; k++) {
    const n = Math.min(per, N - k * per);
    const fleet = await connect(servers[k]!, k, n);
    console.log(`${label}: server ${k + 1}: ${fleet.connected} connected, ${fleet.failed} failed in ${(fleet.connectMs / 1000).toFixed(1)} s${fleet.errors.length ? ` (${fleet.errors.join('; ')})` : ''}`);
    fleets.push(fleet);
  }
  const connected = fleets.reduce((a, f) => a + f.connected, 0);
  await sleep(SETTLE_MS);
  const quietAfterMs = await untilQuiet(servers);
  console.log(`${label}: servers idle ${(quietAfterMs / 1000).toFixed(1)} s after the settle time`);
  const after = await snapshot(servers);
  const redisAfter = await redisBytes?.();
  const { closed } = (await Promise.all(fleets.map((f) => f.count()))).reduce((a, c) => ({ closed: a.closed + c.closed }), { closed: 0 });
  for (const f of fleets) await f.close();
  const perConn = (after.rss - before.rss) / connected;
  return {
    connections: connected - closed,
    rss_before_mib: round(before.rss / 1048576, 1),
    rss_after_mib: round(after.rss / 1048576, 1),
    bytes_per_connection: Math.round(perConn),
    kib_per_connection: round(perConn / 1024, 2),
    heap_bytes_per_connection: Math.round((after.heap - before.heap) / connected),
    failed: fleets.reduce((a, f) => a + f.failed, 0) + closed,
    ...(redisBefore !== undefined && redisAfter !== undefined ? { redis_bytes_per_connection: Math.round((redisAfter - redisBefore) / connected) } : {}),
  };
}

runBench(async () => {
  console.log(`bench:connections — ${N.toLocaleString('en-US')} idle connections over ${SERVERS} server process(es), 2 channels each`);

  // ── baseline: plain ws ─────────────────────────────────────────────────
  const wsServers: Server[] = [];
  for (let k = 0; k < SERVERS; k++) {
    const port = await freePort();
    const child = spawnNode(`ws-server-${k + 1}`, 'bench/fixtures/ws-broadcast-server.ts', [], { env: { PORT: String(port) }, nodeArgs: ['--inspect=127.0.0.1:0'] });
    await child.waitForLog((l) => l.msg === 'listening');
    wsServers.push({ child, inspector: await attachInspector(child), wsUrl: `ws://127.0.0.1:${port}/` });
  }
  const baseline = await measure('plain ws', wsServers, (s, k, n) => startFleet(`ws${k + 1}`, { mode: 'ws', url: s.wsUrl, parallel: 100 }, n));
  for (const s of wsServers) {
    s.inspector.close();
    await s.child.stop();
  }

  // ── tem ────────────────────────────────────────────────────────────────
  const tem = await deployTem('connections', {
    roles: ['api'],
    config: { namespaces: { room: { presence: true, joinLeave: false } } },
    env: { TEM_HEARTBEAT_INTERVAL_MS: '600000', TEM_PRESENCE_TTL_MS: '600000' },
  });
  const gateways: Server[] = [];
  for (let k = 0; k < SERVERS; k++) {
    const { child, url } = await tem.start('gateway', { nodeArgs: ['--inspect=127.0.0.1:0'] });
    gateways.push({ child, inspector: await attachInspector(child), wsUrl: `${url!.replace('http', 'ws')}/ws` });
  }
  const temFigures = await measure('tem', gateways, (s, k, n) =>
    startFleet(
      `tem${k + 1}`,
      {
        mode: 'tem',
        url: s.wsUrl,
        parallel: 100,
        tem: { jwtSecret: tem.jwtSecret, userPrefix: `u_${tem.tag}_${k}_`, channels: { kind: 'rooms', prefix: `room:${tem.tag}:`, rooms: ROOMS, perClient: 2 } },
      },
      n,
    ),
    redisUsedBytes,
  );
  for (const g of gateways) g.inspector.close();

  printTable(`bench:connections — ${N.toLocaleString('en-US')} idle connections (2 channels each for tem)`, ['', 'connections', 'RSS before MiB', 'RSS after MiB', 'KiB/conn', 'heap B/conn', 'Redis B/conn', 'failed'], [
    ['tem gateway', temFigures.connections, temFigures.rss_before_mib, temFigures.rss_after_mib, temFigures.kib_per_connection, temFigures.heap_bytes_per_connection, temFigures.redis_bytes_per_connection ?? '-', temFigures.failed],
    ['plain ws server', baseline.connections, baseline.rss_before_mib, baseline.rss_after_mib, baseline.kib_per_connection, baseline.heap_bytes_per_connection, '-', baseline.failed],
  ]);
  writeResult({
    name: 'connections',
    params: { connections: N, warmup_connections_per_server: WARMUP_CONNECTIONS, server_processes: SERVERS, channels_per_connection: 2, rooms: ROOMS, settle_ms: SETTLE_MS },
    tem: temFigures,
    baseline,
    ratio: ratio(temFigures.bytes_per_connection, baseline.bytes_per_connection),
    ratio_of: 'RSS bytes per connection tem / plain ws',
    target: { description: 'tem ≤ 16 KiB RSS per connection', met: temFigures.kib_per_connection <= 16 && temFigures.failed === 0 },
    notes: [
      'RSS summed over the server processes, read from /proc after two full GCs through the V8 inspector; heap figures from process.memoryUsage().heapUsed. The target is on the gateways\' RSS; what each connection also holds in Redis (its session, its presence entries) is shown apart as redis_bytes_per_connection (used_memory after − before, the shared Redis of the machine).',
      'tem clients authenticate with HS256 JWTs (TEM_JWT_SECRET) whose channels claim allows their two room channels, and are also subscribed to user:{id} automatically.',
      'Heartbeat interval raised to 10 minutes so idle clients need not PING during the run.',
    ],
  });
});
