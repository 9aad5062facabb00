/**
 * bench:jitter — 2,000 clients, each with its socket cut every 5–15 s while messages flow on
 * their channels (100 channels, 20 clients each). With the client SDK (resume with session_id +
 * since) vs a baseline client that reconnects and subscribes again without `since`.
 * Reports the share of messages delivered (target 100%), duplicates, and the replay latency
 * (publish → receive for messages published while the client was cut off; target p99 reported).
 */
import { runBench, onCleanup } from './lib/cleanup.js';
import { benchDuration, envInt, sleep } from './lib/env.js';
import { closeHttp, postJson } from './lib/http.js';
import { nowMs, paced } from './lib/pace.js';
import { LOCAL_ADDRESSES } from './lib/ports.js';
import { spawnNode, type Child } from './lib/proc.js';
import { request } from './lib/clients.js';
import { printTable, writeResult } from './lib/report.js';
import { round, summarize, type Summary } from './lib/stats.js';
import { deployTem, type TemDeployment } from './lib/tem.js';
import type { JitterSpec } from './fixtures/jitter-clients.js';

const CLIENTS = envInt('BENCH_CLIENTS', 2000);
const CHANNELS = envInt('BENCH_CHANNELS', 100);
const RATE = envInt('BENCH_RATE', 200);
const DURATION_S = benchDuration(40);
const PER_CHILD = 1000;

interface Report {
  clients: { channel: string; unique: number; duplicates: number; resyncs: number; cuts: number }[];
  latencies: number[];
  replayLatencies: number[];
  outageMs: number[];
  reopenDelayMs: number[];
  handshakeMs: number[];
  afterReconnectMs: number[];
}

interface ModeFigures {
  [key: string]: unknown;
  clients: number;
  published: number;
  expected: number;
  delivered: number;
  delivered_share: number;
  duplicates: number;
  resyncs: number;
  cuts: number;
  latency_ms: Summary;
  replay_latency_ms: Summary;
  outage_ms: Summary;
  /** Cut → the new socket is created: the client's reconnect delay. */
  reconnect_delay_ms: Summary;
  /** New socket → connected (SDK: HELLO_ACK of the resumed session; baseline: SUBSCRIBED). */
  handshake_ms: Summary;
  /** Replayed messages: connected again → received. */
  replay_after_reconnect_ms: Summary;
}

async function runMode(dep: TemDeployment, gatewayWs: string, mode: 'sdk' | 'plain'): Promise<ModeFigures> {
  const channelPrefix = `jit:${dep.tag}_${mode}:`;
  const children: Child[] = [];
  for (let c = 0; c * PER_CHILD < CLIENTS; c++) {
    const child = spawnNode(`jitter-${mode}-${c}`, 'bench/fixtures/jitter-clients.ts', [], { ipc: true });
    await child.waitForLog((l) => l.msg === 'listening');
    children.push(child);
  }
  let ok = 0;
  for (let c = 0; c < children.length; c++) {
    const spec: JitterSpec = {
      mode,
      url: gatewayWs,
      first: c * PER_CHILD,
      n: Math.min(PER_CHILD, CLIENTS - c * PER_CHILD),
      jwtSecret: dep.jwtSecret,
      userPrefix: `u_${dep.tag}_${mode}_`,
      channelPrefix,
      channels: CHANNELS,
      localAddresses: LOCAL_ADDRESSES,
      cutMinMs: 5000,
      cutMaxMs: 15000,
    };
    const r = await request<{ type: string; ok: number; failed: number; errors: string[] }>(children[c]!, { cmd: 'start', spec }, 'started');
    if (r.failed) console.log(`${mode}: ${r.failed} clients failed to start: ${r.errors.join('; ')}`);
    ok += r.ok;
  }
  console.log(`${mode}: ${ok} clients subscribed; publishing ${RATE}/s over ${CHANNELS} channels for ${DURATION_S} s`);

  const published = new Map<string, number>();
  const load = await paced(RATE, DURATION_S, async (i) => {
    const channel = `${channelPrefix}${i % CHANNELS}`;
    const res = await postJson(`${dep.apiUrl}/api/publish`, JSON.stringify({ channel, event: 'tick', payload: { seq: i, t: nowMs() } }), { 'x-api-key': dep.adminKey });
    if (res.status < 200 || res.status > 299) throw new Error(`publish → ${res.status} ${res.body.slice(0, 200)}`);
    published.set(channel, (published.get(channel) ?? 0) + 1);
  });
  if (load.failed) console.log(`${mode}: ${load.failed} publishes failed: ${load.errors.join('; ')}`);
  for (const ch of children) await request(ch, { cmd: 'stop-cuts' }, 'cuts-stopped');

  // Let the last cut clients come back and replay (SDK backoff is at most a few seconds here).
  const gather = async (): Promise<Report> => {
    const reports = await Promise.all(children.map((ch) => request<Report & { type: string }>(ch, { cmd: 'report' }, 'report')));
    return {
      clients: reports.flatMap((r) => r.clients),
      latencies: reports.flatMap((r) => r.latencies),
      replayLatencies: reports.flatMap((r) => r.replayLatencies),
      outageMs: reports.flatMap((r) => r.outageMs),
      reopenDelayMs: reports.flatMap((r) => r.reopenDelayMs),
      handshakeMs: reports.flatMap((r) => r.handshakeMs),
      afterReconnectMs: reports.flatMap((r) => r.afterReconnectMs),
    };
  };
  const expectedOf = (r: Report): number => r.clients.reduce((a, c) => a + (published.get(c.channel) ?? 0), 0);
  let report = await gather();
  let last = -1;
  for (let waited = 0; waited < 30_000; waited += 1000) {
    const delivered = report.clients.reduce((a, c) => a + c.unique, 0);
    if (delivered >= expectedOf(report) || (delivered === last && waited >= 5000)) break;
    last = delivered;
    await sleep(1000);
    report = await gather();
  }
  for (const ch of children) ch.proc.send!({ cmd: 'close' });
  await Promise.all(children.map((ch) => Promise.race([ch.exited, sleep(5000)])));
  await Promise.all(children.map((ch) => ch.stop()));

  const expected = expectedOf(report);
  const delivered = report.clients.reduce((a, c) => a + c.unique, 0);
  const figures: ModeFigures = {
    clients: report.clients.length,
    published: load.sent - load.failed,
    expected,
    delivered,
    delivered_share: round(delivered / expected, 5),
    duplicates: report.clients.reduce((a, c) => a + c.duplicates, 0),
    resyncs: report.clients.reduce((a, c) => a + c.resyncs, 0),
    cuts: report.clients.reduce((a, c) => a + c.cuts, 0),
    latency_ms: summarize(report.latencies),
    replay_latency_ms: summarize(report.replayLatencies),
    outage_ms: summarize(report.outageMs),
    reconnect_delay_ms: summarize(report.reopenDelayMs),
    handshake_ms: summarize(report.handshakeMs),
    replay_after_reconnect_ms: summarize(report.afterReconnectMs),
  };
  console.log(`${mode}: delivered ${delivered} of ${expected} (${(figures.delivered_share * 100).toFixed(3)}%), ${figures.cuts} cuts`);
  return figures;
}

runBench(async () => {
  console.log(`bench:jitter — ${CLIENTS} clients cut every 5–15 s, ${RATE} messages/s over ${CHANNELS} channels for ${DURATION_S} s`);
  const dep = await deployTem('jitter', {
    roles: ['api'],
    config: { namespaces: { jit: { presence: false, joinLeave: false, historySize: 200, historyTtlMs: 300_000 } } },
  });
  const gw = await dep.start('gateway');
  onCleanup('close http agent', () => closeHttp());
  const gatewayWs = `${gw.url!.replace('http', 'ws')}/ws`;

  const sdk = await runMode(dep, gatewayWs, 'sdk');
  const plain = await runMode(dep, gatewayWs, 'plain');

  const row = (label: string, f: ModeFigures): (string | number)[] => [
    label, f.cuts, f.expected, f.delivered, `${(f.delivered_share * 100).toFixed(3)}%`, f.duplicates, f.resyncs,
    f.replay_latency_ms.p50, f.replay_latency_ms.p99, f.latency_ms.p50, f.latency_ms.p99, f.outage_ms.p50, f.outage_ms.p99,
    f.reconnect_delay_ms.p50, f.handshake_ms.p50, f.handshake_ms.p99, f.replay_after_reconnect_ms.p50, f.replay_after_reconnect_ms.p99,
  ];
  printTable(`bench:jitter — ${CLIENTS} clients cut every 5–15 s (latencies in ms)`, ['', 'cuts', 'expected', 'delivered', 'share', 'dups', 'resyncs', 'replay p50', 'replay p99', 'all p50', 'all p99', 'outage p50', 'outage p99', 'delay p50', 'handshake p50', 'handshake p99', 'replay after reconnect p50', 'p99'], [
    row('tem SDK (resume)', sdk),
    row('baseline (no since)', plain),
  ]);
  writeResult({
    name: 'jitter',
    params: { clients: CLIENTS, channels: CHANNELS, publish_rate_per_s: RATE, duration_s: DURATION_S, cut_every_s: '5-15', history_size: 200 },
    tem: sdk,
    baseline: plain,
    ratio: round(sdk.delivered_share / plain.delivered_share, 4),
    ratio_of: 'delivered share tem SDK / baseline without resume',
    target: { description: '100% of messages delivered with resume, no duplicates (replay latency p99 reported)', met: sdk.delivered === sdk.expected && sdk.duplicates === 0 },
    notes: [
      'A cut is ws.terminate() on the client socket (no close handshake), like a network drop; the SDK reconnects with its default backoff (first retry uniform in 0.5–1 s), the baseline after the same first-retry delay.',
      'replay latency: publish → receive for messages published while the client was cut off (between the cut and the new HELLO_ACK/SUBSCRIBED); it includes the reconnect delay. replay_after_reconnect: connected again → such a message received, i.e. the replay itself.',
      'outage: cut → connected again (SDK: HELLO_ACK of the resumed session; baseline: SUBSCRIBED) = reconnect delay (cut → new socket) + handshake (new socket → connected).',
    ],
  });
});
