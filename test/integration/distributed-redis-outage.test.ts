/**
 * Redis goes away for several seconds mid-run, for every role at once (their Redis connections go
 * through a proxy this test cuts; the shared Redis server keeps running). Ingest must keep
 * answering 202; once Redis is back, every notification arrives — the outbox relay held its
 * position — and the count balances: one `processed` update per accepted event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { services } from '../helpers/services.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { killAll } from '../helpers/processes.js';
import { WsTestClient, closeAllClients, wsUrlFor } from '../helpers/ws.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!services.postgres || !services.redis)('distributed: a Redis outage', () => {
  let cluster: Cluster;
  let key: string;

  beforeAll(async () => {
    cluster = await startCluster({ workers: 1, gateways: 1, redisProxy: true });
    key = await cluster.createUser('carol');
  }, 240_000);

  afterAll(async () => {
    await closeAllClients();
    await cluster?.stop();
    killAll();
  });

  it('keeps accepting while Redis is down and delivers every notification once it is back', async () => {
    const gateway = cluster.gatewayUrls[0]!;
    let client = await WsTestClient.ready(wsUrlFor(gateway, { token: key }));
    const sessionId = String(client.frames.find((f) => f.type === 'HELLO_ACK')!.payload.session_id);
    const clients = [client];

    const accepted: string[] = [];
    const codes = new Map<number, number>();
    const post = async (i: number) => {
      const res = await fetch(`${cluster.apiUrl}/api/events`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'redis.outage', payload: { i } }),
      });
      codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
      if (res.status === 202) accepted.push(((await res.json()) as { event_id: string }).event_id);
    };

    let i = 0;
    for (; i < 20; i++) await post(i);
    cluster.redisProxy!.cut();
    const cutAt = Date.now();
    while (Date.now() - cutAt < 5000) {
      await post(i++);
      await sleep(20);
    }
    const health = (await (await fetch(`${cluster.apiUrl}/api/v1/health`)).json()) as { redis: string; database: string };
    expect(health).toMatchObject({ redis: 'down', database: 'ok' });
    cluster.redisProxy!.restore();
    for (let j = 0; j < 20; j++) await post(i++);

    // Only 202s, throughout.
    expect([...codes.keys()]).toEqual([202]);
    expect(accepted.length).toBe(i);

    // The socket may have been closed while the gateway lost Redis; a client then resumes.
    const processed = () => {
      const seen = new Set<string>();
      for (const c of clients) {
        for (const f of c.events('user:carol', 'event.update')) {
          const p = f.payload.payload as { event_id: string; status: string };
          if (p.status === 'processed') seen.add(p.event_id);
        }
      }
      return seen;
    };
    const deadline = Date.now() + 60_000;
    while (processed().size < accepted.length && Date.now() < deadline) {
      if (client.ws.readyState !== client.ws.OPEN) {
        const since: Record<string, { offset: number; epoch: string }> = {};
        const last = clients.flatMap((c) => c.events('user:carol')).at(-1);
        if (last) since['user:carol'] = { offset: Number(last.payload.offset), epoch: String(last.payload.epoch) };
        try {
          client = await WsTestClient.connect(wsUrlFor(gateway));
          clients.push(client);
          client.send('HELLO', { token: key, session_id: sessionId, since }, 'resume');
          await client.waitFor((f) => f.type === 'HELLO_ACK', 5000);
        } catch {
          await sleep(500);
        }
      }
      await sleep(200);
    }
    const seen = processed();
    expect(accepted.filter((id) => !seen.has(id))).toEqual([]);
    expect(seen.size).toBe(accepted.length);
    // Status never went backwards for any event on the socket.
    const order = ['accepted', 'queued', 'processing', 'processed'];
    const last = new Map<string, number>();
    for (const c of clients) {
      for (const f of c.events('user:carol', 'event.update')) {
        const p = f.payload.payload as { event_id: string; status: string; version: number };
        expect(p.version).toBeGreaterThan(last.get(p.event_id) ?? 0);
        last.set(p.event_id, p.version);
        expect(order).toContain(p.status);
      }
    }
  }, 120_000);

  it('closes 1013 a connection whose own channel cannot be subscribed while Redis is down; after, it gets its updates', async () => {
    const gateway = cluster.gatewayUrls[0]!;
    const erin = await cluster.createUser('erin');
    cluster.redisProxy!.cut();
    try {
      const early = await WsTestClient.connect(wsUrlFor(gateway, { token: erin }));
      const closed = await withTimeout(early.closed, 15_000, 'the close of a connection without its own channel');
      expect(closed.code).toBe(1013);
    } finally {
      cluster.redisProxy!.restore();
    }
    // The client's reconnect, once Redis is back, has its own channel.
    let client: WsTestClient | null = null;
    for (let attempt = 0; attempt < 40 && !client; attempt++) {
      const c = await WsTestClient.connect(wsUrlFor(gateway, { token: erin }));
      const first = await withTimeout(c.next((f) => f.type === 'HELLO_ACK'), 10_000, 'HELLO_ACK').catch(() => null);
      if (first && (first.payload.channels as Record<string, unknown>)['user:erin']) client = c;
      else await sleep(250);
    }
    expect(client).not.toBeNull();
    const res = await fetch(`${cluster.apiUrl}/api/events`, { method: 'POST', headers: { 'x-api-key': erin, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'redis.back', payload: {} }) });
    const { event_id } = (await res.json()) as { event_id: string };
    await client!.waitFor((f) => f.type === 'EVENT' && (f.payload.payload as { event_id?: string; status?: string })?.event_id === event_id && (f.payload.payload as { status: string }).status === 'processed', 20_000);
  }, 90_000);

  it('closes the sockets of a key revoked while Redis was down within seconds of its return, and refuses the key after', async () => {
    const gateway = cluster.gatewayUrls[0]!;
    const key = await cluster.createUser('frank');
    const keys = await cluster.admin<{ data: { key_id: string }[] }>('GET', '/api/admin/principals/frank/keys');
    const client = await WsTestClient.ready(wsUrlFor(gateway, { token: key }));
    cluster.redisProxy!.cut();
    let back = 0;
    try {
      expect((await cluster.admin('DELETE', `/api/admin/keys/${keys.body.data[0]!.key_id}`)).status).toBeLessThan(300);
      await sleep(1500);
    } finally {
      cluster.redisProxy!.restore();
      back = Date.now();
    }
    // Before: only the gateway's 60 s re-check caught it.
    const closed = await withTimeout(client.closed, 20_000, 'the revoked key\'s socket to close');
    expect(closed.code).toBe(4001);
    expect(Date.now() - back).toBeLessThan(15_000);
    const again = await WsTestClient.connect(wsUrlFor(gateway, { token: key }));
    expect((await withTimeout(again.closed, 10_000, 'the revoked key to be refused')).code).toBe(4001);
  }, 90_000);
});

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))]).finally(() => clearTimeout(timer));
}
