/**
 * The client SDK across a server restart: the embedded server stops (closing its sockets with
 * 1012), nothing listens for a while, then a new server starts on the same port and data
 * directory. The client reconnects by itself with backoff. The memory bus and session store
 * did not survive, so the channel's epoch is new: the subscription says `resync` and goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientState, TemClient, type DisconnectedContext, type ResyncContext } from '../../src/client/index.js';
import { NodeWebSocket, startServer, waitUntil, type TestServer } from './client-server.js';

const servers: TestServer[] = [];
let first: TestServer;
let c: TemClient | undefined;

beforeAll(async () => {
  first = await startServer({ config: { heartbeatIntervalMs: 1_000 } });
  servers.push(first);
});

afterAll(async () => {
  c?.disconnect();
  for (const s of servers) await s.close().catch(() => undefined);
  servers[0]?.remove();
});

describe('client SDK across a server restart', () => {
  it('reconnects after 1012 once the server is back, resubscribes, and resyncs the lost history', async () => {
    const key = await first.createUser('u_restart');
    await first.addMember('live:9:chat', 'u_restart');

    c = new TemClient(first.wsUrl, { websocket: NodeWebSocket, token: key, backoff: { minDelay: 50, maxDelay: 500, factor: 2 } });
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
