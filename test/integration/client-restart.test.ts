/**
 * The client SDK across a server restart: the embedded server stops (closing its sockets with
 * 1012), nothing listens for a while, then a new server starts on the same port and data
 * directory. The client reconnects by itself with backoff.
 * - On the memory bus and session store nothing survived, so the channel's epoch is new: the
 *   subscription says `resync` and goes on.
 * - With Redis (the bus history and the sessions live there) the client resumes its session and
 *   gets what was published while the server was away — by another node, here a bus producer —
 *   exactly once, in order.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBus, defaultNamespaces } from '../../src/bus/index.js';
import { ClientState, TemClient, type ConnectedContext, type DisconnectedContext, type ResyncContext } from '../../src/client/index.js';
import { REDIS_URL, services } from '../helpers/services.js';
import { NodeWebSocket, startServer, waitUntil, type TestServer } from './client-server.js';

const servers: TestServer[] = [];
const clients: TemClient[] = [];

afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const s of servers) await s.close().catch(() => undefined);
  for (const s of servers) s.remove();
});

describe('client SDK across a server restart (memory bus)', () => {
  let first: TestServer;
  let c: TemClient;

  beforeAll(async () => {
    first = await startServer({ config: { heartbeatIntervalMs: 1_000 } });
    servers.push(first);
  });

  it('reconnects after 1012 once the server is back, resubscribes, and resyncs the lost history', async () => {
    const key = await first.createUser('u_restart');
    await first.addMember('live:9:chat', 'u_restart');

    c = new TemClient(first.wsUrl, { websocket: NodeWebSocket, token: key, backoff: { minDelay: 50, maxDelay: 500, factor: 2 } });
    clients.push(c);
    const disconnected: DisconnectedContext[] = [];
    const resyncs: ResyncContext[] = [];
    let connects = 0;
    c.on('disconnected', (d) => disconnected.push(d));
    c.on('connected', () => connects++);
    c.connect();
    const sub = c.subscribe('live:9:chat');
    sub.on('resync', (r) => resyncs.push(r));
    await sub.ready(10_000);
    const got: number[] = [];
    sub.on('publication', (p) => got.push((p.payload as { n: number }).n));
    await first.publish('live:9:chat', 'msg', { n: 1 });
    await waitUntil(() => got.length === 1, 10_000, 'first message');

    await first.close();
    await waitUntil(() => disconnected.length > 0, 10_000, 'disconnect');
    expect(disconnected[0]).toMatchObject({ code: 1012, reconnect: true });
    expect(c.state).not.toBe(ClientState.Closed);

    const second = await startServer({ dataDir: first.dataDir, port: first.port, config: { heartbeatIntervalMs: 1_000 } });
    servers.push(second);
    await waitUntil(() => connects === 2 && sub.state === 'subscribed', 20_000, 'reconnect to the new server');
    // Every attempt while the server was away waited a bounded, growing delay.
    for (const d of disconnected) expect(d.delay).toBeLessThanOrEqual(500);
    expect(c.connection?.resumed).toBe(false);
    await waitUntil(() => resyncs.length === 1, 10_000, 'resync');
    expect(resyncs[0]!.channel).toBe('live:9:chat');

    await second.publish('live:9:chat', 'msg', { n: 2 });
    await waitUntil(() => got.length === 2, 10_000, 'message after restart');
    expect(got).toEqual([1, 2]);
    const res = await c.ingest({ type: 'after.restart', payload: {} });
    expect(res.event_id).toMatch(/^[0-9a-f-]{36}$/);
  }, 120_000); // a second embedded server starts inside the test
});

describe.skipIf(!services.redis)('client SDK across a server restart (Redis bus and sessions)', () => {
  const prefix = `tem-client-it-${process.pid}-${Date.now()}:`;
  const config = { heartbeatIntervalMs: 1_000, redisUrl: REDIS_URL, redisPrefix: prefix };
  let first: TestServer;

  beforeAll(async () => {
    first = await startServer({ config });
    servers.push(first);
  });

  afterAll(async () => {
    // Servers save sessions as they close: close them before cleaning up their keys.
    for (const c of clients) c.disconnect();
    for (const s of servers) await s.close().catch(() => undefined);
    const redis = new Redis(REDIS_URL, { lazyConnect: true });
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
    await redis.quit();
  });

  it('resumes the session after the restart: what was published meanwhile arrives once, in order', async () => {
    const key = await first.createUser('u_redis');
    await first.addMember('live:10:chat', 'u_redis');
    const c = new TemClient(first.wsUrl, { websocket: NodeWebSocket, token: key, backoff: { minDelay: 50, maxDelay: 500, factor: 2 } });
    clients.push(c);
    const connected: ConnectedContext[] = [];
    const resyncs: ResyncContext[] = [];
    c.on('connected', (x) => connected.push(x));
    c.on('resync', (r) => resyncs.push(r));
    c.connect();
    const sub = c.subscribe('live:10:chat');
    sub.on('resync', (r) => resyncs.push(r));
    await sub.ready(10_000);
    const got: number[] = [];
    sub.on('publication', (p) => got.push((p.payload as { n: number }).n));
    for (let n = 1; n <= 2; n++) await first.publish('live:10:chat', 'msg', { n });
    await waitUntil(() => got.length === 2, 10_000, 'first messages');

    await first.close();
    await waitUntil(() => c.state !== ClientState.Connected, 10_000, 'disconnect');
    // Another node keeps publishing while this one is down.
    const producer = createBus({ redisUrl: REDIS_URL, prefix, namespaces: defaultNamespaces, name: 'client-it-producer' });
    for (let n = 3; n <= 6; n++) await producer.publish('live:10:chat', 'msg', { n });
    await producer.close();

    const second = await startServer({ dataDir: first.dataDir, port: first.port, config });
    servers.push(second);
    await waitUntil(() => connected.length === 2, 20_000, 'reconnect to the new server');
    expect(connected[1]).toMatchObject({ session_id: connected[0]!.session_id, resumed: true });
    await second.publish('live:10:chat', 'msg', { n: 7 });
    await waitUntil(() => got.length >= 7, 10_000, 'replay and live');
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(resyncs).toEqual([]);
  }, 120_000); // a second embedded server starts inside the test
});
