/**
 * On a Redis Cluster, one node stops answering for seconds mid-run (CLIENT PAUSE on the node every
 * role was given as REDIS_URL, which also holds the gateways' subscriber connections). Ingest
 * keeps answering 202; the relay's batches fail on that node only and are retried; the gateway's
 * subscriber moves or reconnects and reads what it missed; once the node answers again every
 * user has every `processed` update, each exactly once and never going backwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { services } from '../helpers/services.js';
import { disruptableCluster } from '../helpers/redis-cluster.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { killAll } from '../helpers/processes.js';
import { WsTestClient, closeAllClients, wsUrlFor } from '../helpers/ws.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const USERS = ['dora', 'emil', 'fay', 'gus'];

/** One user's sockets over the run: the first, and each resume after a close. */
class Watcher {
  readonly clients: WsTestClient[] = [];
  sessionId = '';

  constructor(
    readonly user: string,
    readonly key: string,
    private readonly gateway: string,
  ) {}

  async open(): Promise<void> {
    const client = await WsTestClient.ready(wsUrlFor(this.gateway, { token: this.key }));
    this.sessionId = String(client.frames.find((f) => f.type === 'HELLO_ACK')!.payload.session_id);
    this.clients.push(client);
  }

  /** Resumes the session on a new socket if the current one was closed. */
  async keepOpen(): Promise<void> {
    const current = this.clients.at(-1)!;
    if (current.ws.readyState === current.ws.OPEN) return;
    const since: Record<string, { offset: number; epoch: string }> = {};
    const last = this.clients.flatMap((c) => c.events(`user:${this.user}`)).at(-1);
    if (last) since[`user:${this.user}`] = { offset: Number(last.payload.offset), epoch: String(last.payload.epoch) };
    try {
      const client = await WsTestClient.connect(wsUrlFor(this.gateway));
      this.clients.push(client);
      client.send('HELLO', { token: this.key, session_id: this.sessionId, since }, 'resume');
      await client.waitFor((f) => f.type === 'HELLO_ACK', 5000);
    } catch {
      await sleep(300);
    }
  }

  updates(): { event_id: string; status: string; version: number }[] {
    return this.clients.flatMap((c) => c.events(`user:${this.user}`, 'event.update').map((f) => f.payload.payload as { event_id: string; status: string; version: number }));
  }

  processed(): Set<string> {
    return new Set(this.updates().filter((u) => u.status === 'processed').map((u) => u.event_id));
  }
}

describe.skipIf(!services.postgres || !services.redisCluster)('distributed on a Redis Cluster: a node stops answering', () => {
  let cluster: Cluster;
  const keys = new Map<string, string>();
  // A Redis Cluster of its own: pausing a node of the shared one would stall the suites that run
  // on it in parallel.
  let redisUrl = '';
  let stopRedis: (() => Promise<void>) | null = null;

  beforeAll(async () => {
    ({ url: redisUrl, stop: stopRedis } = await disruptableCluster(21399));
    cluster = await startCluster({ workers: 1, gateways: 1, env: { REDIS_URL: redisUrl, TEM_REDIS_CLUSTER: 'true' } });
    for (const user of USERS) keys.set(user, await cluster.createUser(user));
  }, 240_000);

  afterAll(async () => {
    await closeAllClients();
    await cluster?.stop();
    killAll();
    await stopRedis?.();
  });

  it('keeps accepting, and delivers every update exactly once and in order once the node is back', async () => {
    const watchers = USERS.map((u) => new Watcher(u, keys.get(u)!, cluster.gatewayUrls[0]!));
    for (const w of watchers) await w.open();
    const accepted = new Map<string, string[]>(USERS.map((u) => [u, []]));
    const codes = new Map<number, number>();
    let i = 0;
    const post = async () => {
      const user = USERS[i % USERS.length]!;
      const res = await fetch(`${cluster.apiUrl}/api/events`, {
        method: 'POST',
        headers: { 'x-api-key': keys.get(user)!, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'cluster.outage', payload: { i: i++ } }),
      });
      codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
      if (res.status === 202) accepted.get(user)!.push(((await res.json()) as { event_id: string }).event_id);
    };

    for (let j = 0; j < 20; j++) await post();
    const seed = new URL(redisUrl);
    const admin = new Redis({ host: seed.hostname, port: Number(seed.port) });
    await admin.client('PAUSE', 4000, 'ALL');
    admin.disconnect();
    const pausedAt = Date.now();
    while (Date.now() - pausedAt < 5000) {
      await post();
      await sleep(20);
    }
    for (let j = 0; j < 20; j++) await post();
    expect([...codes.keys()]).toEqual([202]);

    const missing = () => watchers.flatMap((w) => accepted.get(w.user)!.filter((id) => !w.processed().has(id)));
    const deadline = Date.now() + 60_000;
    while (missing().length > 0 && Date.now() < deadline) {
      for (const w of watchers) await w.keepOpen();
      await sleep(200);
    }
    expect(missing()).toEqual([]);
    // The pause was an outage for the relay: its batches failed on that node and were retried.
    expect(cluster.maintenance.output()).toContain('outbox relay recovered');
    for (const w of watchers) {
      // Each event's versions strictly increase on the user's sockets: no duplicate, no step back.
      const last = new Map<string, number>();
      for (const u of w.updates()) {
        expect(u.version, `${w.user} ${u.event_id} ${u.status}`).toBeGreaterThan(last.get(u.event_id) ?? 0);
        last.set(u.event_id, u.version);
      }
      expect(w.processed().size).toBe(accepted.get(w.user)!.length);
    }
  }, 120_000);
});
