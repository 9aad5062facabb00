/**
 * The WebSocket protocol (contract §4) frame by frame, on the embedded stack: API + gateway on
 * PGlite and the memory bus, real ws clients. Every reply, error and close code.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublication, startGatewayHarness, WsTestClient, type GatewayHarness, type GatewayNode } from '../helpers/ws.js';
import type { TestPrincipal } from '../helpers/api.js';

let h: GatewayHarness;
let alice: TestPrincipal;
let bob: TestPrincipal;
let carol: TestPrincipal;
let svc: TestPrincipal;

beforeAll(async () => {
  h = await startGatewayHarness({
    config: { wsMaxFrameBytes: 4096, wsHelloTimeoutMs: 400, namespaces: { live: { clientPublish: true } } },
  });
  alice = await h.api.createPrincipal({ id: 'alice' });
  bob = await h.api.createPrincipal({ id: 'bob' });
  carol = await h.api.createPrincipal({ id: 'carol', revoked_permissions: ['events.post.event_ingest'] });
  svc = await h.api.createPrincipal({ id: 'svc', kind: 'service' });
  await h.api.store.addChannelMember('live:1:chat', 'alice');
  await h.api.store.addChannelMember('live:1:chat', 'bob');
});

afterAll(async () => {
  await h?.close();
});

const ready = (token: string, path?: string) => WsTestClient.ready(h.wsUrl({ token, path }));

describe('authentication', () => {
  it('a token in the query gets HELLO_ACK at once, with the own channel subscribed', async () => {
    const c = await WsTestClient.connect(h.wsUrl({ token: alice.key }));
    const ack = await c.waitFor((f) => f.type === 'HELLO_ACK');
    expect(ack.payload).toMatchObject({ user_id: 'alice', resumed: false, recovered: false, heartbeat_interval: h.api.config.heartbeatIntervalMs });
    expect(ack.payload.session_id).toMatch(/^sess_/);
    expect(Object.keys(ack.payload.channels as object)).toEqual(['user:alice']);
    expect(ack.ref).toBeUndefined();
    await c.close();
  });

  it('accepts Authorization: Bearer or X-API-Key on the upgrade, and the /api/v1/ws alias', async () => {
    const c = await WsTestClient.connect(h.wsUrl({ path: '/api/v1/ws' }), { headers: { authorization: `Bearer ${bob.key}` } });
    const ack = await c.waitFor((f) => f.type === 'HELLO_ACK');
    expect(ack.payload.user_id).toBe('bob');
    await c.close();
    const d = await WsTestClient.connect(h.wsUrl(), { headers: { 'x-api-key': bob.key } });
    expect((await d.waitFor((f) => f.type === 'HELLO_ACK')).payload.user_id).toBe('bob');
    await d.close();
  });

  it('accepts HELLO {token} as the first frame and answers with ref', async () => {
    const c = await WsTestClient.connect(h.wsUrl());
    const ack = await c.request('HELLO', { token: alice.key });
    expect(ack.type).toBe('HELLO_ACK');
    expect(ack.payload.user_id).toBe('alice');
    const pong = await c.request('PING', {});
    expect(pong.type).toBe('PONG');
    await c.close();
  });

  it('answers another first frame than HELLO with UNAUTHORIZED, then closes 4001', async () => {
    const c = await WsTestClient.connect(h.wsUrl());
    const err = await c.request('SUBSCRIBE', { channels: ['live:1:chat'] });
    expect(err).toMatchObject({ type: 'ERROR', payload: { code: 'UNAUTHORIZED' } });
    const closed = await c.closed;
    expect(closed.code).toBe(4001);
    expect(closed.reason).toMatch(/HELLO/);
  });

  it('answers PING before HELLO and still takes HELLO after it', async () => {
    const c = await WsTestClient.connect(h.wsUrl());
    expect((await c.request('PING', {})).type).toBe('PONG');
    expect((await c.request('HELLO', { token: alice.key })).type).toBe('HELLO_ACK');
    await c.close();
  });

  it('closes 4001 when no HELLO comes in time', async () => {
    const c = await WsTestClient.connect(h.wsUrl());
    const closed = await c.closed;
    expect(closed.code).toBe(4001);
    expect(closed.reason).toMatch(/HELLO/);
  });

  it('closes 4001 for a bad token in the query, after accepting the upgrade', async () => {
    const c = await WsTestClient.connect(h.wsUrl({ token: 'tem_' + 'x'.repeat(40) }));
    expect((await c.closed).code).toBe(4001);
  });

  it('closes 4001 for a bad token in HELLO, and for HELLO without one', async () => {
    const c = await WsTestClient.connect(h.wsUrl());
    c.send('HELLO', { token: 'not-a-token' });
    expect((await c.closed).code).toBe(4001);
    const d = await WsTestClient.connect(h.wsUrl());
    d.send('HELLO', {});
    expect((await d.closed).code).toBe(4001);
  });

  it('a malformed query string gets the upgrade and a 4001 close with a reason, never a bare 400', async () => {
    for (const raw of ['token=%E0%A4%A', 'token=', 'token=a&token=b', '%%%&&==token', 'token=%zz', `token[]=${alice.key}`, `token%5B0%5D=${alice.key}`]) {
      const c = await WsTestClient.connect(h.wsUrl({ raw }));
      const closed = await c.closed;
      expect(closed.code, raw).toBe(4001);
      expect(closed.reason.length, raw).toBeGreaterThan(0);
      // A token sent as an array is named as such at once, not left to the HELLO timeout.
      if (raw.startsWith('token[') || raw.startsWith('token%5B')) expect(closed.reason, raw).toMatch(/give the token once, as token=/);
    }
  });

  it('takes an upgrade whose request target is in absolute form, as a proxy may send it', async () => {
    // RFC 9112 §3.2.2: GET http://host/ws HTTP/1.1. ws's client always sends the origin form,
    // so the request is written by hand.
    const url = new URL(h.wsUrl());
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `GET http://${url.host}/ws?token=${alice.key} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      let got = '';
      socket.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        // The status line, then the server's first frame: HELLO_ACK at once (token in the query).
        if (got.includes('HELLO_ACK')) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on('error', reject);
      setTimeout(() => {
        socket.destroy();
        resolve(got);
      }, 3000);
    });
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(answer).toContain('HELLO_ACK');
  });

  it('answers 404 problem+json to an upgrade on another path', async () => {
    await expect(WsTestClient.connect(h.wsUrl({ path: '/nope' }))).rejects.toThrow(/404/);
    const res = await new Promise<{ status: number; type: string; body: string }>((resolve) => {
      const ws = new WebSocket(h.wsUrl({ path: '/nope' }));
      ws.on('unexpected-response', (_req, r) => {
        let body = '';
        r.on('data', (d: Buffer) => (body += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, type: String(r.headers['content-type']), body }));
      });
      ws.on('error', () => undefined);
    });
    expect(res.status).toBe(404);
    expect(res.type).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.body)).toMatchObject({ status: 404, code: 'NOT_FOUND', detail: expect.stringContaining('/ws') });
  });

  it('closes 4001 within seconds when the key is revoked, and a new connection with it is refused', async () => {
    const { key, keyId } = await h.api.createKey('alice');
    const c = await ready(key);
    const res = await h.api.request('DELETE', `/api/admin/keys/${keyId}`, { key: h.api.adminKey });
    expect(res.status).toBeLessThan(300);
    const closed = await c.closed;
    expect(closed.code).toBe(4001);
    const again = await WsTestClient.connect(h.wsUrl({ token: key }));
    expect((await again.closed).code).toBe(4001);
  });

  it('closes 4001 when a principal is disabled, but keeps it open when only its permissions change', async () => {
    const dave = await h.api.createPrincipal({ id: 'dave' });
    const c = await ready(dave.key);
    const patched = await h.api.request('PATCH', '/api/admin/principals/dave', { key: h.api.adminKey, body: { extra_permissions: ['channels.subscribe.live'] } });
    expect(patched.status).toBe(200);
    // The re-check picked up the new permission: no membership needed now.
    await new Promise((r) => setTimeout(r, 300));
    const sub = await c.request('SUBSCRIBE', { channels: ['live:99:chat'] });
    expect(sub.type).toBe('SUBSCRIBED');
    // Withdrawn again: the subscription it allowed ends now, not at the periodic sweep.
    const withdrawn = await h.api.request('PATCH', '/api/admin/principals/dave', { key: h.api.adminKey, body: { revoked_permissions: ['channels.subscribe.live'] } });
    expect(withdrawn.status).toBe(200);
    const ended = await c.waitFor((f) => f.type === 'UNSUBSCRIBED' && f.ref === undefined, 5000);
    expect(ended.payload).toMatchObject({ channels: ['live:99:chat'], reason: 'access revoked' });
    const disabled = await h.api.request('PATCH', '/api/admin/principals/dave', { key: h.api.adminKey, body: { disabled: true } });
    expect(disabled.status).toBe(200);
    expect((await c.closed).code).toBe(4001);
  });
});

describe('frames', () => {
  it('PING → PONG {timestamp} with ref', async () => {
    const c = await ready(alice.key);
    const pong = await c.request('PING', {});
    expect(pong.type).toBe('PONG');
    expect(typeof pong.payload.timestamp).toBe('number');
    await c.close();
  });

  it('unknown types, bad JSON, binary and bad payloads get ERROR and the connection stays open', async () => {
    const c = await ready(alice.key);
    expect(await c.request('NOPE', {})).toMatchObject({ type: 'ERROR', payload: { code: 'UNKNOWN_TYPE' } });
    expect(await c.request('SUBSCRIBE', { channels: 'live:1:chat' })).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST' } });
    expect(await c.request('SUBSCRIBE', { channels: ['bad channel'] })).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST' } });
    // A position for a channel the frame does not subscribe to would be dropped unread.
    expect(await c.request('SUBSCRIBE', { channels: ['live:1:chat'], since: { 'live:2:chat': { offset: 1, epoch: 'e' } } })).toMatchObject({
      type: 'ERROR',
      payload: { code: 'BAD_REQUEST', message: 'payload.since.live:2:chat names a channel that payload.channels does not' },
    });
    expect(await c.request('SET_PRESENCE', { status: 'asleep' })).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST' } });
    expect(await c.request('PUBLISH', { channel: 'live:1:chat', event: 'typing', payload: {} })).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST' } });
    // Says in words what an event name must be, not its regular expression.
    expect(await c.request('PUBLISH', { channel: 'live:1:chat', event: 'two words', payload: {} })).toMatchObject({
      type: 'ERROR',
      payload: { code: 'BAD_REQUEST', message: expect.stringMatching(/^payload\.event must be an event name: 1–128 of A-Z/) },
    });
    const bad = c.next((f) => f.type === 'ERROR');
    c.sendRaw('{"type": "PING"');
    expect((await bad).payload.code).toBe('BAD_REQUEST');
    const bin = c.next((f) => f.type === 'ERROR');
    c.sendRaw(Buffer.from([1, 2, 3]), true);
    expect((await bin).payload.code).toBe('BAD_REQUEST');
    const arr = c.next((f) => f.type === 'ERROR');
    c.sendRaw('[1,2]');
    expect((await arr).payload).toMatchObject({ code: 'BAD_REQUEST' });
    expect((await c.request('PING', {})).type).toBe('PONG');
    await c.close();
  });

  it('a frame over the size limit closes 1009', async () => {
    const c = await ready(alice.key);
    c.send('PING', { pad: 'x'.repeat(5000) });
    expect((await c.closed).code).toBe(1009);
  });

  it('SUBSCRIBE → SUBSCRIBED per channel, or ERROR FORBIDDEN; UNSUBSCRIBE → UNSUBSCRIBED', async () => {
    const c = await ready(alice.key);
    const replies = await c.requestMany('SUBSCRIBE', { channels: ['live:1:chat', 'live:2:chat', 'user:bob'] }, 3);
    const byChannel = Object.fromEntries(replies.map((r) => [r.payload.channel, r]));
    expect(byChannel['live:1:chat']).toMatchObject({ type: 'SUBSCRIBED', payload: { recovered: false } });
    expect(typeof byChannel['live:1:chat']!.payload.offset).toBe('number');
    expect(typeof byChannel['live:1:chat']!.payload.epoch).toBe('string');
    expect(byChannel['live:2:chat']).toMatchObject({ type: 'ERROR', payload: { code: 'FORBIDDEN' } });
    expect(byChannel['user:bob']).toMatchObject({ type: 'ERROR', payload: { code: 'FORBIDDEN' } });
    const un = await c.request('UNSUBSCRIBE', { channels: ['live:1:chat'] });
    expect(un).toMatchObject({ type: 'UNSUBSCRIBED', payload: { channels: ['live:1:chat'] } });
    await c.close();
  });

  it('PUBLISH where the namespace allows it → PUBLISHED {offset} and an EVENT for subscribers; refused elsewhere', async () => {
    const a = await ready(alice.key);
    const b = await ready(bob.key);
    expect((await b.request('SUBSCRIBE', { channels: ['live:1:chat'] })).type).toBe('SUBSCRIBED');
    const published = await a.request('PUBLISH', { channel: 'live:1:chat', event: 'message', payload: { text: 'hi' } });
    expect(published.type).toBe('PUBLISHED');
    const ev = await b.waitFor((f) => isPublication(f, 'live:1:chat') && f.payload.event === 'message');
    expect(ev.payload).toMatchObject({ payload: { text: 'hi' }, offset: published.payload.offset, epoch: published.payload.epoch });
    expect(await a.request('PUBLISH', { channel: 'live:2:chat', event: 'message', payload: {} })).toMatchObject({ payload: { code: 'FORBIDDEN' } });
    expect(await a.request('PUBLISH', { channel: 'dm:1', event: 'message', payload: {} })).toMatchObject({ payload: { code: 'FORBIDDEN' } });
    await a.close();
    await b.close();
  });

  it('INGEST → INGESTED {event_id, status}; bad input and missing permission are ERROR frames', async () => {
    const a = await ready(alice.key);
    const ok = await a.request('INGEST', { type: 'order.created', payload: { n: 1 }, idempotency_key: 'k1' });
    expect(ok).toMatchObject({ type: 'INGESTED', payload: { status: 'accepted' } });
    const again = await a.request('INGEST', { type: 'order.created', payload: { n: 1 }, idempotency_key: 'k1' });
    expect(again.payload.event_id).toBe(ok.payload.event_id);
    expect(await h.api.store.getEvent(ok.payload.event_id as string)).toMatchObject({ userId: 'alice', producerId: 'alice' });
    // The same key with another body: BAD_REQUEST, with the precise code HTTP would answer.
    const conflict = await a.request('INGEST', { type: 'order.created', payload: { n: 2 }, idempotency_key: 'k1' });
    expect(conflict).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST', reason: 'IDEMPOTENCY_CONFLICT' } });
    const invalid = await a.request('INGEST', { type: 'Bad Type', payload: {} });
    expect(invalid).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST', reason: 'VALIDATION_FAILED' } });
    expect(await a.request('INGEST', { type: 'x', payload: {}, user_id: 'bob' })).toMatchObject({ type: 'ERROR', payload: { code: 'FORBIDDEN' } });
    // The keys HTTP refuses, refused here too, naming where they are.
    const poisoned = await a.request('INGEST', JSON.parse('{"type":"x.y","payload":{"a":[{"__proto__":{"admin":true}}]}}'));
    expect(poisoned).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST', message: expect.stringMatching(/^payload\.payload\.a\.0\.__proto__ is not accepted/) } });
    const ctor = await a.request('INGEST', JSON.parse('{"type":"x.y","payload":{"constructor":{"prototype":{}}}}'));
    expect(ctor).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST', message: expect.stringMatching(/^payload\.payload\.constructor\.prototype is not accepted/) } });
    // A key that merely mentions them is data like any other.
    expect(await a.request('INGEST', { type: 'x.y', payload: { proto: 1, constructor: 'a', note: '__proto__' } })).toMatchObject({ type: 'INGESTED' });
    const c = await ready(carol.key);
    expect(await c.request('INGEST', { type: 'x', payload: {} })).toMatchObject({ type: 'ERROR', payload: { code: 'FORBIDDEN' } });
    await a.close();
    await c.close();
  });

  it('a burst of INGEST frames waits its turn instead of being refused', async () => {
    const a = await ready(alice.key);
    const n = 90; // under the 100 frames/s limit, more than the 64 frames a connection runs at once
    const ids = Array.from({ length: n }, (_, i) => `burst-${i}`);
    for (const [i, id] of ids.entries()) a.send('INGEST', { type: 'burst.item', payload: { i } }, id);
    const answers = await Promise.all(ids.map((id) => a.waitFor((f) => f.ref === id, 20_000)));
    expect(answers.map((f) => f.type)).toEqual(Array(n).fill('INGESTED'));
    expect(new Set(answers.map((f) => f.payload.event_id)).size).toBe(n);
    await a.close();
  });

  it('a service with channels.* may subscribe to any non-user channel and to patterns', async () => {
    const s = await ready(svc.key);
    const replies = await s.requestMany('SUBSCRIBE', { channels: ['live:7:chat', 'server:*', 'user:alice'] }, 3);
    expect(replies.map((r) => [r.payload.channel, r.type === 'ERROR' ? r.payload.code : r.type])).toEqual(
      expect.arrayContaining([
        ['live:7:chat', 'SUBSCRIBED'],
        ['server:*', 'SUBSCRIBED'],
        ['user:alice', 'FORBIDDEN'],
      ]),
    );
    await h.bus.publish('server:3:channel:4', 'note', { a: 1 });
    const ev = await s.waitFor((f) => isPublication(f, 'server:3:channel:4'));
    expect(ev.payload.payload).toEqual({ a: 1 });
    await s.close();
  });

  it('a pattern has no history: SUBSCRIBE with since recovers nothing, the first time or again', async () => {
    const s = await ready(svc.key);
    const since = { 'server:*': { offset: 5, epoch: 'made-up' } };
    const first = await s.request('SUBSCRIBE', { channels: ['server:*'], since });
    expect(first).toMatchObject({ type: 'SUBSCRIBED', payload: { channel: 'server:*', recovered: false } });
    const again = await s.request('SUBSCRIBE', { channels: ['server:*'], since });
    expect(again).toMatchObject({ type: 'SUBSCRIBED', payload: { channel: 'server:*', recovered: false } });
    await s.close();
  });
});

describe('limits', () => {
  let limited: GatewayNode;

  beforeAll(async () => {
    limited = await h.addNode({ config: { wsConnectLimit: 3, wsConnectWindowMs: 60_000, wsMessageRate: 5, heartbeatIntervalMs: 100 } });
  });

  it('closes 1013 past the connection-attempt limit for one key', async () => {
    const { key } = await h.api.createKey('bob');
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await WsTestClient.connect(limited.wsUrl({ token: key }));
      const first = await Promise.race([c.waitFor((f) => f.type === 'HELLO_ACK').then(() => 0), c.closed.then((x) => x.code)]);
      codes.push(first);
      await c.close();
    }
    expect(codes).toEqual([0, 0, 0, 1013, 1013]);
  });

  it('answers RATE_LIMITED past the frame rate, and closes 1008 on sustained abuse', async () => {
    const c = await WsTestClient.ready(limited.wsUrl({ token: alice.key }));
    for (let i = 0; i < 8; i++) c.send('PING', {}, i);
    const limitedReply = await c.waitFor((f) => f.type === 'ERROR' && f.payload.code === 'RATE_LIMITED');
    expect(limitedReply.ref).toBeDefined();
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    // More than ten times the rate within the second.
    for (let i = 0; i < 60; i++) c.send('PING', {});
    expect((await c.closed).code).toBe(1008);
  });

  it('closes 1013 a client that does not read (slow consumer), without growing server memory', async () => {
    const slowNode = await h.addNode({ config: { wsSendBufferBytes: 256 * 1024 } });
    const slow = await WsTestClient.ready(slowNode.wsUrl({ token: bob.key }));
    const fast = await WsTestClient.ready(slowNode.wsUrl({ token: bob.key }));
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const closes = async () => (await slowNode.metrics.wsSlowConsumerCloses.get()).values[0]?.value ?? 0;
    const big = 'z'.repeat(16 * 1024);
    let sent = 0;
    while ((await closes()) === 0 && sent < 4000) {
      await h.bus.publish('user:bob', 'bulk', { big, n: sent++ });
      if (sent % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    expect(await closes()).toBe(1);
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await slow.closed).code).toBe(1013);
    // Its session would claim frames it never got: resuming it is refused (the client
    // subscribes again with `since`).
    const sessionId = (slow.frames.find((f) => f.type === 'HELLO_ACK')!.payload as { session_id: string }).session_id;
    const back = await WsTestClient.connect(slowNode.wsUrl());
    const ack = await back.request('HELLO', { token: bob.key, session_id: sessionId });
    expect(ack.payload).toMatchObject({ resumed: false });
    await back.close();
    // The other connection of the same user kept up and got everything.
    await fast.waitCount((f) => isPublication(f, 'user:bob') && f.payload.event === 'bulk', sent, 15_000);
    expect(fast.ws.readyState).toBe(WebSocket.OPEN);
    await fast.close();
  });

  it('closes 4008 when nothing comes from the client for two heartbeat intervals', async () => {
    // This client answers the server's WebSocket pings (as every library does by itself) but
    // sends no frame: that is silence.
    const silent = await WsTestClient.ready(limited.wsUrl({ token: bob.key }));
    const lively = await WsTestClient.ready(limited.wsUrl({ token: bob.key }));
    // Under this node's 5 frames/s limit, within its 200 ms timeout.
    const beat = setInterval(() => lively.send('PING', {}), 150);
    try {
      const closed = await silent.closed;
      expect(closed.code).toBe(4008);
      // The one sending PING frames is still there.
      expect(lively.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      clearInterval(beat);
    }
    await lively.close();
  });

  it('before HELLO, the HELLO deadline governs, not the heartbeat: close 4001, not 4008', async () => {
    // On this node silence ends a connection after 200 ms (heartbeat 100 ms), before the HELLO
    // deadline of 400 ms (the harness's wsHelloTimeoutMs).
    const quiet = await WsTestClient.connect(limited.wsUrl());
    const t0 = Date.now();
    const closed = await quiet.closed;
    expect(closed.code).toBe(4001);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
  });
});
