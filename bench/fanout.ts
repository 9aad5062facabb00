/**
 * bench:fanout — 10,000 subscribers on one channel, 100-byte messages: deliveries/s received by
 * the clients over a fixed window, for tem's gateway (`tem api` publishes via POST /api/publish,
 * Redis carries it to `tem gateway`), a plain `ws` broadcast loop and Socket.IO 4 broadcasting
 * to a room. Same client processes (counting frames, no parsing) for all three.
 * The publisher keeps about WINDOW messages per client in flight (closed loop on the delivered
 * count), so each server runs as fast as it can without queues growing without bound.
 * Target: tem ≥ 3× Socket.IO and ≥ 1.5× the plain loop.
 */
import { runBench } from './lib/cleanup.js';
import { startFleet, type Fleet } from './lib/clients.js';
import { benchDuration, envInt, sleep } from './lib/env.js';
import { postJson } from './lib/http.js';
import { freePort } from './lib/ports.js';
import { cpuMs, spawnNode, type Child } from './lib/proc.js';
import { printTable, writeResult } from './lib/report.js';
import { ratio, round } from './lib/stats.js';
import { deployTem } from './lib/tem.js';

const SUBSCRIBERS = envInt('BENCH_SUBSCRIBERS', 10_000);
const DURATION_S = benchDuration(10);
const WARMUP_S = envInt('BENCH_WARMUP', 2);
const WINDOW = envInt('BENCH_WINDOW', 20);
/** Publish requests in flight at once. */
const MAX_PUBLISH_REQUESTS = 8;
/** Which sides to run (debugging): BENCH_SIDES=ws,sio,tem. Results are written only for all three. */
const SIDES = new Set((process.env.BENCH_SIDES ?? 'ws,sio,tem').split(','));
const PAYLOAD = { d: 'x'.repeat(100 - JSON.stringify({ d: '' }).length) };

interface FanoutFigures {
  [key: string]: number;
  subscribers: number;
  deliveries_per_s: number;
  messages_per_s: number;
  published: number;
  delivered_share_after_drain: number;
  closed_sockets: number;
  publish_errors: number;
  server_cpu_s_per_s: number;
  /** CPU seconds per second used by all client processes together. */
  client_cpu_s_per_s: number;
  /** Deliveries per CPU second of the server process: its efficiency when the clients are the bottleneck. */
  deliveries_per_server_cpu_s: number;
  connect_s: number;
}

async function measure(
  label: string,
  fleet: Fleet,
  publish: () => Promise<void>,
  serverPids: number[],
): Promise<FanoutFigures> {
  const n = fleet.connected;
  let published = 0;
  let publishing = 0;
  let publishErrors = 0;
  const t0 = performance.now();
  const warmEnd = t0 + WARMUP_S * 1000;
  let startCount: number | null = null;
  let startAt = 0;
  let cpuStart = 0;
  let clientCpuStart = 0;
  let endCount = 0;
  let endAt = 0;
  for (;;) {
    const now = performance.now();
    const { received } = await fleet.count();
    if (startCount === null && now >= warmEnd) {
      startCount = received;
      startAt = now;
      cpuStart = await totalCpu(serverPids);
      clientCpuStart = await totalCpu(fleet.children.map((c) => c.pid));
    }
    if (process.env.BENCH_DEBUG) console.log(`${label}: t=${Math.round(now - t0)} ms received=${received} published=${published}`);
    if (startCount !== null && now - startAt >= DURATION_S * 1000) {
      endCount = received;
      endAt = now;
      break;
    }
    // Top the window up without waiting for each publish (a few requests in flight at once).
    let inFlight = published * n - received;
    while (inFlight < WINDOW * n && publishing < MAX_PUBLISH_REQUESTS) {
      published++;
      inFlight += n;
      publishing++;
      void publish()
        .catch((err: unknown) => {
          published--;
          publishErrors++;
          if (publishErrors <= 3) console.error(`${label}: publish failed: ${(err as Error).message}`);
        })
        .finally(() => publishing--);
    }
    await sleep(5);
  }
  const cpuEnd = await totalCpu(serverPids);
  const clientCpuEnd = await totalCpu(fleet.children.map((c) => c.pid));
  while (publishing > 0) await sleep(10);
  const seconds = (endAt - startAt) / 1000;
  // Let what is in flight arrive, to report losses.
  let after = await fleet.count();
  const drainUntil = performance.now() + 15_000;
  while (after.received < published * n && performance.now() < drainUntil) {
    await sleep(200);
    after = await fleet.count();
  }
  const figures: FanoutFigures = {
    subscribers: n,
    deliveries_per_s: Math.round((endCount - startCount!) / seconds),
    messages_per_s: round((endCount - startCount!) / seconds / n, 1),
    published,
    delivered_share_after_drain: published > 0 ? round(after.received / (published * n), 5) : 0,
    closed_sockets: after.closed,
    publish_errors: publishErrors,
    server_cpu_s_per_s: round((cpuEnd - cpuStart) / 1000 / seconds, 2),
    client_cpu_s_per_s: round((clientCpuEnd - clientCpuStart) / 1000 / seconds, 2),
    deliveries_per_server_cpu_s: Math.round((endCount - startCount!) / Math.max(0.001, (cpuEnd - cpuStart) / 1000)),
    connect_s: round(fleet.connectMs / 1000, 1),
  };
  console.log(`${label}: ${figures.deliveries_per_s.toLocaleString('en-US')} deliveries/s (${figures.messages_per_s} msg/s to ${n} clients)`);
  return figures;
}

async function totalCpu(pids: number[]): Promise<number> {
  const v = await Promise.all(pids.map((p) => cpuMs(p).catch(() => 0)));
  return v.reduce((a, b) => a + b, 0);
}

function httpPublisher(url: string, headers: Record<string, string>, channel: string): () => Promise<void> {
  const body = JSON.stringify({ channel, event: 'tick', payload: PAYLOAD });
  return async () => {
    const res = await postJson(url, body, headers);
    if (res.status < 200 || res.status > 299) throw new Error(`publish → ${res.status} ${res.body.slice(0, 200)}`);
  };
}

async function baselineServer(name: string, script: string): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const child = spawnNode(name, script, [], { env: { PORT: String(port) } });
  await child.waitForLog((l) => l.msg === 'listening');
  return { child, port };
}

async function connectOrFail(label: string, fleet: Fleet): Promise<void> {
  console.log(`${label}: ${fleet.connected} connected, ${fleet.failed} failed in ${(fleet.connectMs / 1000).toFixed(1)} s${fleet.errors.length ? ` (${fleet.errors.join('; ')})` : ''}`);
  if (fleet.connected < SUBSCRIBERS * 0.99) throw new Error(`${label}: only ${fleet.connected} of ${SUBSCRIBERS} clients connected`);
}

runBench(async () => {
  console.log(`bench:fanout — ${SUBSCRIBERS.toLocaleString('en-US')} subscribers, 100-byte payloads, ${WARMUP_S} s warm-up + ${DURATION_S} s window, ${WINDOW} messages in flight`);
  const channel = 'fan:room';

  const empty = (): FanoutFigures => ({ subscribers: 0, deliveries_per_s: 0, messages_per_s: 0, published: 0, delivered_share_after_drain: 0, closed_sockets: 0, publish_errors: 0, server_cpu_s_per_s: 0, client_cpu_s_per_s: 0, deliveries_per_server_cpu_s: 0, connect_s: 0 });
  let wsFigures = empty();
  let sioFigures = empty();
  let temFigures = empty();
  let fleet: Fleet;

  // ── plain ws loop ─────────────────────────────────────────────────────
  if (SIDES.has('ws')) {
    const ws = await baselineServer('ws-server', 'bench/fixtures/ws-broadcast-server.ts');
    fleet = await startFleet('ws', { mode: 'ws', url: `ws://127.0.0.1:${ws.port}/`, parallel: 100 }, SUBSCRIBERS);
    await connectOrFail('ws', fleet);
    wsFigures = await measure('plain ws loop', fleet, httpPublisher(`http://127.0.0.1:${ws.port}/publish`, {}, channel), [ws.child.pid]);
    await fleet.close();
    await ws.child.stop();
  }

  // ── Socket.IO ─────────────────────────────────────────────────────────
  if (SIDES.has('sio')) {
    const sio = await baselineServer('socketio-server', 'bench/fixtures/socketio-server.ts');
    fleet = await startFleet('sio', { mode: 'sio', url: `ws://127.0.0.1:${sio.port}`, parallel: 100 }, SUBSCRIBERS);
    await connectOrFail('socket.io', fleet);
    sioFigures = await measure('socket.io room', fleet, httpPublisher(`http://127.0.0.1:${sio.port}/publish`, {}, channel), [sio.child.pid]);
    await fleet.close();
    await sio.child.stop();
  }

  // ── tem ───────────────────────────────────────────────────────────────
  if (SIDES.has('tem')) {
    const tem = await deployTem('fanout', {
      roles: ['api'],
      config: { namespaces: { fan: { presence: false, joinLeave: false } } },
      env: { TEM_HEARTBEAT_INTERVAL_MS: '600000', TEM_PRESENCE_TTL_MS: '600000' },
    });
    const gw = await tem.start('gateway');
    const temChannel = `fan:${tem.tag}`;
    fleet = await startFleet(
      'tem',
      {
        mode: 'tem',
        url: `${gw.url!.replace('http', 'ws')}/ws`,
        parallel: 100,
        tem: { jwtSecret: tem.jwtSecret, userPrefix: `u_${tem.tag}_`, channels: { kind: 'same', names: [temChannel] } },
      },
      SUBSCRIBERS,
    );
    await connectOrFail('tem', fleet);
    temFigures = await measure(
      'tem gateway',
      fleet,
      httpPublisher(`${tem.apiUrl}/api/publish`, { 'x-api-key': tem.adminKey }, temChannel),
      [gw.child.pid],
    );
    await fleet.close();
  }

  printTable(`bench:fanout — ${SUBSCRIBERS.toLocaleString('en-US')} subscribers on one channel, 100-byte payloads`, ['', 'deliveries/s', 'msg/s', 'published', 'delivered', 'closed', 'server cpu/s', 'clients cpu/s', 'per server cpu-s', 'connect s'], [
    ['tem gateway', temFigures.deliveries_per_s, temFigures.messages_per_s, temFigures.published, temFigures.delivered_share_after_drain, temFigures.closed_sockets, temFigures.server_cpu_s_per_s, temFigures.client_cpu_s_per_s, temFigures.deliveries_per_server_cpu_s, temFigures.connect_s],
    ['plain ws loop', wsFigures.deliveries_per_s, wsFigures.messages_per_s, wsFigures.published, wsFigures.delivered_share_after_drain, wsFigures.closed_sockets, wsFigures.server_cpu_s_per_s, wsFigures.client_cpu_s_per_s, wsFigures.deliveries_per_server_cpu_s, wsFigures.connect_s],
    ['Socket.IO 4 room', sioFigures.deliveries_per_s, sioFigures.messages_per_s, sioFigures.published, sioFigures.delivered_share_after_drain, sioFigures.closed_sockets, sioFigures.server_cpu_s_per_s, sioFigures.client_cpu_s_per_s, sioFigures.deliveries_per_server_cpu_s, sioFigures.connect_s],
  ]);
  const vsSio = ratio(temFigures.deliveries_per_s, sioFigures.deliveries_per_s);
  const vsWs = ratio(temFigures.deliveries_per_s, wsFigures.deliveries_per_s);
  if (SIDES.size < 3) return console.log('partial run (BENCH_SIDES): no results written');
  // A side whose publishes failed measured nothing: no ratio against it counts.
  const sidesValid = [temFigures, wsFigures, sioFigures].every((f) => f.published > 0 && f.publish_errors === 0);
  if (!sidesValid) console.error('bench:fanout: a side published nothing or saw publish errors; the target is not judged met');
  writeResult({
    name: 'fanout',
    params: { subscribers: SUBSCRIBERS, payload_bytes: 100, warmup_s: WARMUP_S, duration_s: DURATION_S, in_flight_messages: WINDOW },
    tem: temFigures,
    baseline: { plain_ws: wsFigures, socket_io: sioFigures },
    ratio: vsSio,
    ratio_of: 'deliveries/s tem / Socket.IO (tem / plain ws in extra.ratio_vs_plain_ws)',
    target: { description: 'tem ≥ 3× Socket.IO and ≥ 1.5× the plain ws loop', met: vsSio >= 3 && vsWs >= 1.5 && temFigures.closed_sockets === 0 && sidesValid },
    extra: { ratio_vs_socket_io: vsSio, ratio_vs_plain_ws: vsWs },
    notes: [
      'server_cpu_s_per_s: CPU seconds per second used by the server process (tem: the gateway only; the API and Redis also work per publish). On a 2-core machine the client processes can be the bottleneck; deliveries_per_server_cpu_s then shows what each server does with the CPU it gets.',
      'Clients run in child processes of 5,000 sockets spread over 127.0.0.1..8 and count frames without parsing them; Socket.IO clients speak Engine.IO v4 over WebSocket directly.',
      'tem path: POST /api/publish → tem api → Redis → tem gateway; baselines: POST /publish on the server itself.',
    ],
  });
});
