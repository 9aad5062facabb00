/**
 * Removing a channel member ends that user's live subscriptions to the channel (decision 0013):
 * the client gets an unprompted `UNSUBSCRIBED {channels, reason}` and nothing more from the
 * channel, unless a JWT claim or a permission still grants it; a resumed session does not bring
 * the channel back; the periodic re-check catches a removal whose control message was lost; and
 * across two nodes on Redis the node whose membership answers are cached forgets them.
 */
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpChannelAccess } from '../../src/gateway/index.js';
import { buildInternalServer } from '../../src/ingest/internal-server.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { TestPrincipal } from '../helpers/api.js';
import { redisRealtime, type RedisRealtime } from '../helpers/redis-realtime.js';
import { services } from '../helpers/services.js';
import { isNotice, isPublication, startGatewayHarness, startGatewayNode, WsTestClient, type Frame, type GatewayHarness, type GatewayNode } from '../helpers/ws.js';

const SECRET = 'test-secret-for-membership-removal-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const revoked = (channel: string) => (f: Frame) => f.type === 'UNSUBSCRIBED' && f.ref === undefined && (f.payload.channels as string[]).includes(channel);

async function jwt(sub: string, channels: string[]): Promise<string> {
  return new SignJWT({ channels })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(SECRET));
}

async function subscribed(url: string, channels: string[]): Promise<WsTestClient> {
  const c = await WsTestClient.ready(url);
  const replies = await c.requestMany('SUBSCRIBE', { channels }, channels.length);
  expect(replies.map((r) => r.type)).toEqual(channels.map(() => 'SUBSCRIBED'));
  return c;
}

describe('membership removal on live connections (memory bus)', () => {
  let h: GatewayHarness;
  let alice: TestPrincipal;
  let bob: TestPrincipal;

  beforeAll(async () => {
    h = await startGatewayHarness({ config: { jwtSecret: SECRET, namespaces: { '*': { joinLeave: true } } } });
    alice = await h.api.createPrincipal({ id: 'alice' });
    bob = await h.api.createPrincipal({ id: 'bob' });
  });

  afterAll(async () => {
    await h?.close();
  });

  const removeMember = async (channel: string, user: string) => {
    const res = await h.api.request('DELETE', `/api/channels/${encodeURIComponent(channel)}/members/${user}`, { key: h.api.adminKey });
    expect(res.status).toBe(204);
  };

  it('ends the subscription at once with UNSUBSCRIBED {channels, reason}; other subscriptions and members go on', async () => {
    const room = 'server:1:channel:1';
    for (const [ch, u] of [[room, 'alice'], [room, 'bob'], ['server:1:channel:2', 'alice']] as const) await h.api.store.addChannelMember(ch, u);
    const a = await subscribed(h.wsUrl({ token: alice.key }), [room, 'server:1:channel:2']);
    const b = await subscribed(h.wsUrl({ token: bob.key }), [room]);
    await h.bus.publish(room, 'msg', { n: 1 });
    await a.waitFor((f) => isPublication(f, room));

    const started = Date.now();
    await removeMember(room, 'alice');
    const un = await a.waitFor(revoked(room), 2000);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(un.payload).toEqual({ channels: [room], reason: 'access revoked' });
    // Presence sees an explicit leave, as for a client UNSUBSCRIBE.
    await b.waitFor((f) => isNotice(f, room) && f.payload.event === 'presence.leave' && (f.payload.payload as { user_id?: string }).user_id === 'alice');

    await h.bus.publish(room, 'msg', { n: 2 });
    await h.bus.publish('server:1:channel:2', 'msg', { n: 3 });
    await a.waitFor((f) => isPublication(f, 'server:1:channel:2'));
    await b.waitCount((f) => isPublication(f, room), 2);
    await sleep(50);
    expect(a.events(room).map((f) => (f.payload.payload as { n: number }).n)).toEqual([1]);
    // The connection works on, and may not come back in on its own.
    const again = await a.request('SUBSCRIBE', { channels: [room] });
    expect(again.payload).toMatchObject({ code: 'FORBIDDEN', channel: room });
    // Bob's subscription stays.
    expect(b.collect((f) => f.type === 'UNSUBSCRIBED')).toEqual([]);
  });

  it('keeps the subscription when a JWT channels claim or a namespace permission still grants it', async () => {
    const room = 'server:2:channel:1';
    const ops = await h.api.createPrincipal({ id: 'ops', extra_permissions: ['channels.subscribe.server'] });
    for (const u of ['carol', 'ops']) await h.api.store.addChannelMember(room, u);
    const byClaim = await subscribed(h.wsUrl({ token: await jwt('carol', ['server:2:*']) }), [room]);
    const byPermission = await subscribed(h.wsUrl({ token: ops.key }), [room]);

    await removeMember(room, 'carol');
    await removeMember(room, 'ops');
    await sleep(200);
    await h.bus.publish(room, 'msg', { n: 1 });
    for (const c of [byClaim, byPermission]) {
      await c.waitFor((f) => isPublication(f, room));
      expect(c.collect((f) => f.type === 'UNSUBSCRIBED')).toEqual([]);
    }
  });

  it('a removal while offline, or one that ended the subscription, is not undone by a resume', async () => {
    const kept = 'server:3:channel:1';
    const lost = 'server:3:channel:2';
    for (const ch of [kept, lost]) await h.api.store.addChannelMember(ch, 'alice');

    // Removed while connected: the saved session follows the UNSUBSCRIBED.
    const a = await subscribed(h.wsUrl({ token: alice.key }), [kept, lost]);
    const sessionId = a.frames[0]!.payload.session_id as string;
    await removeMember(lost, 'alice');
    await a.waitFor(revoked(lost));
    await a.close();
    await sleep(50);
    const b = await WsTestClient.connect(h.wsUrl());
    const resumed = await b.request('HELLO', { token: alice.key, session_id: sessionId });
    expect(resumed.payload).toMatchObject({ resumed: true });
    expect(Object.keys(resumed.payload.channels as object).sort()).toEqual([kept, 'user:alice']);

    // Removed while disconnected: the session still names the channel; access is checked again.
    await h.api.store.addChannelMember(lost, 'alice');
    const sub = await b.request('SUBSCRIBE', { channels: [lost] });
    expect(sub.type).toBe('SUBSCRIBED');
    await b.close();
    await sleep(50);
    await removeMember(lost, 'alice');
    const c = await WsTestClient.connect(h.wsUrl());
    const again = await c.request('HELLO', { token: alice.key, session_id: sessionId });
    expect(Object.keys(again.payload.channels as object).sort()).toEqual([kept, 'user:alice']);
    await c.waitFor((f) => f.type === 'ERROR' && f.payload.channel === lost && f.payload.code === 'FORBIDDEN');
    await h.bus.publish(lost, 'msg', {});
    await h.bus.publish(kept, 'msg', {});
    await c.waitFor((f) => isPublication(f, kept));
    expect(c.events(lost)).toEqual([]);
    await c.close();
    await sleep(50);

    // Lost while disconnected, and named in the resume's since: the resume is not recovered,
    // though every other channel it names is.
    await h.api.store.addChannelMember(lost, 'alice');
    const d = await subscribed(h.wsUrl({ token: alice.key }), [kept, lost]);
    const dSession = d.frames[0]!.payload.session_id as string;
    await h.bus.publish(kept, 'msg', {});
    await h.bus.publish(lost, 'msg', {});
    const atKept = (await d.waitFor((f) => isPublication(f, kept))).payload as { offset: number; epoch: string };
    const atLost = (await d.waitFor((f) => isPublication(f, lost))).payload as { offset: number; epoch: string };
    await d.close();
    await sleep(50);
    await removeMember(lost, 'alice');
    const e = await WsTestClient.connect(h.wsUrl());
    const since = { [kept]: { offset: atKept.offset, epoch: atKept.epoch }, [lost]: { offset: atLost.offset, epoch: atLost.epoch } };
    const third = await e.request('HELLO', { token: alice.key, session_id: dSession, since });
    expect(third.payload).toMatchObject({ resumed: true, recovered: false });
    expect(third.payload.channels).toMatchObject({ [kept]: { recovered: true } });
    expect(Object.keys(third.payload.channels as object).sort()).toEqual([kept, 'user:alice']);
    await e.close();
  });

  it('a DELETE with no such membership still answers 204', async () => {
    await removeMember('server:9:channel:9', 'nobody');
  });
});

describe('the periodic re-check catches a removal whose control message was lost', () => {
  let h: GatewayHarness;

  beforeAll(async () => {
    h = await startGatewayHarness({ tuning: { revalidateMs: 200 } });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('ends the subscription within a period', async () => {
    const dave = await h.api.createPrincipal({ id: 'dave' });
    for (const ch of ['live:1:chat', 'live:2:chat']) await h.api.store.addChannelMember(ch, 'dave');
    const c = await subscribed(h.wsUrl({ token: dave.key }), ['live:1:chat', 'live:2:chat']);
    await sleep(500);
    expect(c.collect((f) => f.type === 'UNSUBSCRIBED')).toEqual([]);
    // Straight to the store: no control message is sent.
    await h.api.store.removeChannelMember('live:1:chat', 'dave');
    const un = await c.waitFor(revoked('live:1:chat'), 2000);
    expect(un.payload).toEqual({ channels: ['live:1:chat'], reason: 'access revoked' });
    await h.bus.publish('live:2:chat', 'msg', {});
    await c.waitFor((f) => isPublication(f, 'live:2:chat'));
    expect(c.collect((f) => f.type === 'UNSUBSCRIBED')).toHaveLength(1);
  });
});

describe.skipIf(!services.redis)('membership removal across two gateway nodes on Redis', () => {
  let redis: RedisRealtime;
  let h: GatewayHarness;
  let internal: FastifyInstance;
  let nodeB: GatewayNode;

  beforeAll(async () => {
    redis = redisRealtime('gw-membership');
    const { presence, sessions } = redis;
    h = await startGatewayHarness({ bus: redis.bus(), presence, sessions });
    internal = await buildInternalServer({ config: h.api.config, logger: silentLogger(), authenticator: h.api.authenticator, store: h.api.store });
    const internalUrl = await internal.listen({ host: '127.0.0.1', port: 0 });
    // Node B asks the API about membership, as a distributed gateway does, and caches answers for
    // longer than the test runs: only forgetting them can end the subscription in time.
    nodeB = await startGatewayNode({
      config: h.api.config,
      bus: redis.bus(),
      presence,
      sessions,
      auth: h.api.authenticator,
      access: httpChannelAccess({ baseUrl: internalUrl, clock: h.api.clock, cacheMs: 60_000 }),
      clock: h.api.clock,
    });
  });

  afterAll(async () => {
    await h?.close();
    await nodeB?.close();
    await internal?.close();
    await redis?.close();
  });

  it('a DELETE on the API ends the subscription on the other node, past its membership cache', async () => {
    const erin = await h.api.createPrincipal({ id: 'erin' });
    const room = 'live:7:chat';
    await h.api.store.addChannelMember(room, 'erin');
    const onA = await subscribed(h.wsUrl({ token: erin.key }), [room]);
    const onB = await subscribed(nodeB.wsUrl({ token: erin.key }), [room]);
    const publisher = redis.bus();
    await publisher.publish(room, 'msg', { n: 1 });
    for (const c of [onA, onB]) await c.waitFor((f) => isPublication(f, room));

    const res = await h.api.request('DELETE', `/api/channels/${room}/members/erin`, { key: h.api.adminKey });
    expect(res.status).toBe(204);
    for (const c of [onA, onB]) {
      const un = await c.waitFor(revoked(room), 2000);
      expect(un.payload).toEqual({ channels: [room], reason: 'access revoked' });
    }
    await publisher.publish(room, 'msg', { n: 2 });
    await sleep(200);
    for (const c of [onA, onB]) expect(c.events(room)).toHaveLength(1);
    // The cache was forgotten, not just bypassed once: a new SUBSCRIBE on node B is refused.
    const again = await onB.request('SUBSCRIBE', { channels: [room] });
    expect(again.payload).toMatchObject({ code: 'FORBIDDEN', channel: room });
  });

  it('a PUT on the API lets the user subscribe on the other node at once, past its cached "no"', async () => {
    const fay = await h.api.createPrincipal({ id: 'fay' });
    const room = 'live:8:chat';
    const onB = await WsTestClient.ready(nodeB.wsUrl({ token: fay.key }));
    expect((await onB.request('SUBSCRIBE', { channels: [room] })).payload).toMatchObject({ code: 'FORBIDDEN', channel: room });
    const res = await h.api.request('PUT', `/api/channels/${room}/members/fay`, { key: h.api.adminKey });
    expect(res.status).toBe(204);
    expect(await onB.subscribesWithin(room, 1000)).toBe(true);
    await onB.close();
  });
});
