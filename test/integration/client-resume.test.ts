/**
 * The client SDK coming back: resume after a network cut with no message missed or repeated,
 * `resync` when the gap is larger than the channel's history, token refresh through getToken
 * after 4001, and backoff bounds while nothing answers. Real embedded server, `ws` client.
 */
import { createServer } from 'node:net';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ClientState,
  TemClient,
  type ConnectedContext,
  type DisconnectedContext,
  type ResyncContext,
  type TemClientOptions,
  type TokenReason,
} from '../../src/client/index.js';
import { NetProxy, NodeWebSocket, startServer, waitUntil, type TestServer } from './client-server.js';

const SECRET = 'client-sdk-resume-secret-0123456789abcdef';
let s: TestServer;
let proxy: NetProxy;
const clients: TemClient[] = [];

function client(options: TemClientOptions, url = `ws://127.0.0.1:${proxy.port}/ws`): TemClient {
  const c = new TemClient(url, { websocket: NodeWebSocket, backoff: { minDelay: 50, maxDelay: 300, factor: 2 }, ...options });
  clients.push(c);
  return c;
}

function track(c: TemClient) {
  const connected: ConnectedContext[] = [];
  const disconnected: DisconnectedContext[] = [];
  const resyncs: ResyncContext[] = [];
  c.on('connected', (x) => connected.push(x));
  c.on('disconnected', (x) => disconnected.push(x));
  c.on('resync', (x) => resyncs.push(x));
  return { connected, disconnected, resyncs };
}

function jwt(sub: string, ttlSeconds: number): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(SECRET));
}

beforeAll(async () => {
  s = await startServer({ config: { heartbeatIntervalMs: 1_000, jwtSecret: SECRET, namespaces: { tiny: { historySize: 2 } } } });
  proxy = new NetProxy(s.port);
  await proxy.listen();
});

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
  proxy.restore();
});

afterAll(async () => {
  await proxy?.close();
  await s?.close();
  s?.remove();
});

describe('client SDK: coming back', () => {
  it('resumes after a network cut: every missed message once, in order, then live ones', async () => {
    const key = await s.createUser('u_resume');
    await s.addMember('live:4:chat', 'u_resume');
    const c = client({ token: key });
    const t = track(c);
    c.connect();
    const sub = c.subscribe('live:4:chat');
    await sub.ready(10_000);
    const got: number[] = [];
    sub.on('publication', (p) => got.push((p.payload as { n: number }).n));
    for (let n = 1; n <= 3; n++) await s.publish('live:4:chat', 'msg', { n });
    await waitUntil(() => got.length === 3, 10_000, 'first messages');

    proxy.cut();
    await waitUntil(() => c.state !== ClientState.Connected, 10_000, 'the client to notice');
    for (let n = 4; n <= 10; n++) await s.publish('live:4:chat', 'msg', { n });
    proxy.restore();
    await waitUntil(() => t.connected.length === 2, 15_000, 'reconnect');
    await s.publish('live:4:chat', 'msg', { n: 11 });
    await waitUntil(() => got.length >= 11, 10_000, 'replay and live');

    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(t.connected[1]).toMatchObject({ session_id: t.connected[0]!.session_id, resumed: true });
    expect(t.disconnected[0]).toMatchObject({ reconnect: true });
    expect(t.resyncs).toEqual([]);
    expect(sub.state).toBe('subscribed');
  });

  it('emits `resync` when more was missed than the channel keeps, then carries on live', async () => {
    const key = await s.createUser('u_gap');
    await s.addMember('tiny:1:feed', 'u_gap');
    const c = client({ token: key });
    const t = track(c);
    c.connect();
    const sub = c.subscribe('tiny:1:feed');
    await sub.ready(10_000);
    const subResyncs: ResyncContext[] = [];
    sub.on('resync', (r) => subResyncs.push(r));
    const got: number[] = [];
    sub.on('publication', (p) => got.push((p.payload as { n: number }).n));
    const first = await s.publish('tiny:1:feed', 'msg', { n: 1 });
    await waitUntil(() => got.length === 1, 10_000, 'first message');

    proxy.cut();
    await waitUntil(() => c.state !== ClientState.Connected, 10_000, 'the client to notice');
    for (let n = 2; n <= 6; n++) await s.publish('tiny:1:feed', 'msg', { n }); // history keeps 2
    proxy.restore();
    await waitUntil(() => subResyncs.length === 1, 15_000, 'resync');
    expect(subResyncs[0]).toEqual({ channel: 'tiny:1:feed', lost: { offset: first.offset, epoch: first.epoch } });
    expect(t.resyncs).toEqual([]); // the user channel itself was recovered

    await s.publish('tiny:1:feed', 'msg', { n: 7 });
    await waitUntil(() => got.includes(7), 10_000, 'live after resync');
    expect(got).toEqual([1, 7]);
  });

  it('gets a new token from getToken after the server closes 4001 (expired JWT), and resumes', async () => {
    const reasons: TokenReason[] = [];
    const c = client({
      getToken: async ({ reason }) => {
        reasons.push(reason);
        return jwt('u_jwt', reasons.length === 1 ? 2 : 3_600); // the first one expires in ~2 s
      },
    });
    const t = track(c);
    c.connect();
    await c.ready(10_000);
    await waitUntil(() => t.connected.length === 2, 15_000, 'reconnect with a fresh token');
    expect(t.disconnected[0]).toMatchObject({ code: 4001, reconnect: true });
    expect(reasons).toEqual(['connect', 'unauthorized']);
    expect(t.connected[1]).toMatchObject({ user_id: 'u_jwt', session_id: t.connected[0]!.session_id, resumed: true });
    expect(c.state).toBe(ClientState.Connected);
  });

  it('after a revoked key, reconnects with the key getToken returns; with a static key it stays closed', async () => {
    await s.createPrincipal('u_rotate');
    const { key: first, key_id: firstId } = await s.newKey('u_rotate');
    const second = await s.newKey('u_rotate');
    let current = first;
    const c = client({ getToken: () => current });
    const t = track(c);
    const fixed = client({ token: first });
    const errors: string[] = [];
    fixed.on('error', (e) => errors.push(e.code));
    c.connect();
    fixed.connect();
    await Promise.all([c.ready(10_000), fixed.ready(10_000)]);

    current = second.key;
    expect((await s.api('DELETE', `/api/admin/keys/${firstId}`)).status).toBeLessThan(300);
    await waitUntil(() => t.connected.length === 2, 15_000, 'reconnect with the new key');
    expect(t.disconnected[0]!.code).toBe(4001);
    await waitUntil(() => fixed.state === ClientState.Closed, 15_000, 'static-key client closed');
    expect(errors).toContain('UNAUTHORIZED');
    const sockets = proxy.connections;
    await new Promise((r) => setTimeout(r, 700)); // well past maxDelay: nothing tries again
    expect(fixed.state).toBe(ClientState.Closed);
    expect(proxy.connections).toBeLessThanOrEqual(sockets);
  });

  it('keeps its reconnect delays within the backoff bounds while nothing listens', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const a = srv.address();
        srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    const c = client({ token: 'tem_whatever', backoff: { minDelay: 20, maxDelay: 120, factor: 2 } }, `ws://127.0.0.1:${port}/ws`);
    const t = track(c);
    c.connect();
    await waitUntil(() => t.disconnected.length >= 8, 15_000, 'eight attempts');
    c.disconnect();
    const delays = t.disconnected.filter((d) => d.reconnect).map((d) => d.delay!);
    expect(delays.length).toBeGreaterThanOrEqual(8);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(20);
      expect(d).toBeLessThanOrEqual(120);
    }
    expect(t.disconnected[0]!.code).toBe(1006);
    expect(c.state).toBe(ClientState.Closed);
  });
});
