/**
 * The real-time HTTP routes (POST /api/publish, channel members, presence list) and a gateway
 * node in distributed style: no store, tokens checked by introspection, membership and INGEST
 * through the API's internal listener, revocations arriving as bus control messages.
 */
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwardAuthChanges } from '../../src/app/wiring.js';
import { createJwtVerifier, jwtSettingsDigest } from '../../src/auth/jwt.js';
import { namespaceResolver } from '../../src/bus/namespaces.js';
import { httpChannelAccess, httpIngestPort, IntrospectionAuthenticator } from '../../src/gateway/index.js';
import { buildApiServer } from '../../src/ingest/server.js';
import { buildInternalServer } from '../../src/ingest/internal-server.js';
import { silentLogger } from '../../src/observability/logger.js';
import { isPublication, startGatewayHarness, startGatewayNode, WsTestClient, type GatewayHarness, type GatewayNode } from '../helpers/ws.js';
import type { TestPrincipal } from '../helpers/api.js';
import { sleep } from '../fixtures/worker-helpers.js';

let h: GatewayHarness;
let api: FastifyInstance;
let internal: FastifyInstance;
let remote: GatewayNode;
let stopForwarding: () => void;
let alice: TestPrincipal;
let bob: TestPrincipal;
let svc: TestPrincipal;
let internalUrl: string;
const JWT_SECRET = 'gateway-http-jwt-secret-0123456789abcdef';

async function call(method: string, url: string, key?: string, body?: unknown) {
  const res = await api.inject({
    method: method as 'GET',
    url,
    headers: { ...(key ? { 'x-api-key': key } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    payload: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as Record<string, unknown>) : {} };
}

beforeAll(async () => {
  h = await startGatewayHarness({ config: { introspectCacheMs: 60_000, jwtSecret: JWT_SECRET } });
  const { store, config, clock, metrics, authenticator, ingest } = h.api;
  // The API as the composition roots build it: with the bus and presence the routes need.
  const deps = { store, config, logger: silentLogger(), clock, metrics, authenticator, ingest, bus: h.bus, presence: h.presence };
  api = await buildApiServer(deps);
  await api.ready();
  internal = await buildInternalServer({ config, logger: silentLogger(), authenticator, store, ingest });
  internalUrl = await internal.listen({ host: '127.0.0.1', port: 0 });
  stopForwarding = forwardAuthChanges(authenticator, h.bus, silentLogger());
  remote = await startGatewayNode({
    config,
    clock,
    bus: h.hub.node({ namespaces: namespaceResolver(config), clock }),
    presence: h.presence,
    sessions: h.sessions,
    auth: new IntrospectionAuthenticator({ baseUrl: internalUrl, cacheMs: config.introspectCacheMs, clock }),
    access: httpChannelAccess({ baseUrl: internalUrl, clock, cacheMs: 0 }),
    ingest: httpIngestPort({ baseUrl: internalUrl }),
  });
  alice = await h.api.createPrincipal({ id: 'alice' });
  bob = await h.api.createPrincipal({ id: 'bob' });
  svc = await h.api.createPrincipal({ id: 'svc', kind: 'service' });
});

afterAll(async () => {
  stopForwarding?.();
  await remote?.close();
  await api?.close();
  await internal?.close();
  await h?.close();
});

describe('POST /api/publish', () => {
  it('publishes to subscribers and answers {offset, epoch}; nothing is stored as an event', async () => {
    await h.api.store.addChannelMember('live:1:chat', 'alice');
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    await c.request('SUBSCRIBE', { channels: ['live:1:chat'] });
    const res = await call('POST', '/api/publish', svc.key, { channel: 'live:1:chat', event: 'announcement', payload: { text: 'hello' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ offset: expect.any(Number), epoch: expect.any(String) });
    const ev = await c.waitFor((f) => isPublication(f, 'live:1:chat'));
    expect(ev.payload).toMatchObject({ event: 'announcement', payload: { text: 'hello' }, offset: res.body.offset, epoch: res.body.epoch });
    expect((await h.api.store.listEvents({ limit: 10 })).events).toEqual([]);
    await c.close();
  });

  it('answers 401 without a key, 403 without the permission, 400 for bad input', async () => {
    const body = { channel: 'live:1:chat', event: 'x', payload: {} };
    expect((await call('POST', '/api/publish', undefined, body)).status).toBe(401);
    expect((await call('POST', '/api/publish', alice.key, body)).status).toBe(403);
    for (const bad of [{ ...body, channel: 'live:*' }, { ...body, channel: 'nocolon' }, { channel: 'live:1', event: 'x' }, { ...body, event: 'bad event' }, { ...body, extra: 1 }]) {
      const res = await call('POST', '/api/publish', svc.key, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.code).toMatch(/VALIDATION_FAILED|BAD_REQUEST/);
    }
    // The server's own notices cannot be forged: a fake typing notice would also skip the user it names.
    for (const event of ['typing', 'presence.join', 'event.update']) {
      const res = await call('POST', '/api/publish', svc.key, { ...body, event, payload: { user_id: 'alice', is_typing: true } });
      expect(res.status, event).toBe(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', field: 'body.event' });
    }
  });
});

describe('channel members', () => {
  it('PUT adds, GET lists, DELETE removes; membership decides who may subscribe', async () => {
    const path = '/api/channels/server:7:channel:1/members';
    expect((await call('PUT', `${path}/bob`, svc.key)).status).toBe(204);
    expect((await call('PUT', `${path}/bob`, svc.key)).status).toBe(204);
    expect((await call('GET', path, svc.key)).body).toEqual({ channel: 'server:7:channel:1', members: ['bob'] });
    const b = await WsTestClient.ready(h.wsUrl({ token: bob.key }));
    expect((await b.request('SUBSCRIBE', { channels: ['server:7:channel:1'] })).type).toBe('SUBSCRIBED');
    expect((await call('DELETE', `${path}/bob`, svc.key)).status).toBe(204);
    expect((await call('GET', path, svc.key)).body.members).toEqual([]);
    await b.request('UNSUBSCRIBE', { channels: ['server:7:channel:1'] });
    expect(await b.request('SUBSCRIBE', { channels: ['server:7:channel:1'] })).toMatchObject({ type: 'ERROR', payload: { code: 'FORBIDDEN' } });
    await b.close();
  });

  it('needs channels.put.channel_members and a valid channel', async () => {
    expect((await call('PUT', '/api/channels/live:1:chat/members/bob', alice.key)).status).toBe(403);
    expect((await call('PUT', '/api/channels/live:*/members/bob', svc.key)).status).toBe(400);
    // user:{id} channels are their user's alone: a membership there would grant nothing.
    const own = await call('PUT', '/api/channels/user:alice/members/bob', svc.key);
    expect(own.status).toBe(400);
    expect(own.body).toMatchObject({ code: 'VALIDATION_FAILED', field: 'params.channel' });
    expect((await call('PUT', '/api/channels/live:1/members/bad%20user', svc.key)).status).toBe(400);
  });
});

describe('GET /api/presence/{channel}', () => {
  it('lists connected members with their status and registered ones as offline', async () => {
    await h.api.store.addChannelMember('live:2:chat', 'alice');
    await h.api.store.addChannelMember('live:2:chat', 'bob');
    const a = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    await a.request('SUBSCRIBE', { channels: ['live:2:chat'] });
    a.send('SET_PRESENCE', { status: 'idle' });
    await new Promise((r) => setTimeout(r, 100));
    const res = await call('GET', '/api/presence/live:2:chat', bob.key);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      channel: 'live:2:chat',
      members: [
        { user_id: 'alice', status: 'idle' },
        { user_id: 'bob', status: 'offline' },
      ],
    });
    expect((await call('GET', '/api/presence/live:3:chat', bob.key)).status).toBe(404);
    expect((await call('GET', '/api/presence/live:3:chat', svc.key)).body).toEqual({ channel: 'live:3:chat', members: [] });
    // A service may ask whether a user is online; another user may not.
    expect((await call('GET', '/api/presence/user:alice', svc.key)).status).toBe(200);
    expect((await call('GET', '/api/presence/user:alice', bob.key)).status).toBe(404);
    await a.close();
  });
});

describe('a gateway without a store (introspection, internal routes)', () => {
  it('authenticates by introspection, checks membership and ingests through the internal listener', async () => {
    await h.api.store.addChannelMember('live:5:chat', 'alice');
    const c = await WsTestClient.ready(remote.wsUrl({ token: alice.key }));
    const subs = await c.requestMany('SUBSCRIBE', { channels: ['live:5:chat', 'live:6:chat'] }, 2);
    expect(subs.map((f) => (f.type === 'ERROR' ? f.payload.code : f.type)).sort()).toEqual(['FORBIDDEN', 'SUBSCRIBED']);
    const ingested = await c.request('INGEST', { type: 'note.created', payload: { a: 1 } });
    expect(ingested).toMatchObject({ type: 'INGESTED', payload: { status: 'accepted', replayed: false } });
    expect(await h.api.store.getEvent(ingested.payload.event_id as string)).toMatchObject({ producerId: 'alice', type: 'note.created' });
    expect(await c.request('INGEST', { type: 'Bad', payload: {} })).toMatchObject({ type: 'ERROR', payload: { code: 'BAD_REQUEST' } });
    // A payload too deep to serialize (30,000 levels in a 60 KB frame) is bad input, refused on
    // the node: sent on to the API it failed as if the API were unreachable.
    const deep = `{"a":${'['.repeat(30_000)}${']'.repeat(30_000)}}`;
    c.sendRaw(`{"type":"INGEST","id":"deep","payload":{"type":"note.created","payload":${deep}}}`);
    expect((await c.waitFor((f) => f.ref === 'deep')).payload).toMatchObject({ code: 'BAD_REQUEST' });
    // Publications made on the other node arrive here through the bus.
    await h.bus.publish('live:5:chat', 'm', { from: 'elsewhere' });
    expect((await c.waitFor((f) => isPublication(f, 'live:5:chat'))).payload.payload).toEqual({ from: 'elsewhere' });
    await c.close();
  });

  it('closes 4001 for a bad token, and within seconds when the key is revoked', async () => {
    const bad = await WsTestClient.connect(remote.wsUrl({ token: 'tem_' + 'A'.repeat(40) }));
    expect((await bad.closed).code).toBe(4001);
    const { key, keyId } = await h.api.createKey('bob');
    const c = await WsTestClient.ready(remote.wsUrl({ token: key }));
    const res = await h.api.request('DELETE', `/api/admin/keys/${keyId}`, { key: h.api.adminKey });
    expect(res.status).toBeLessThan(300);
    expect((await c.closed).code).toBe(4001);
    // The cached introspection answer was dropped: the key no longer gets in.
    const again = await WsTestClient.connect(remote.wsUrl({ token: key }));
    expect((await again.closed).code).toBe(4001);
  });

  it('lists registered members who are not connected as offline, as the HTTP presence does', async () => {
    await h.api.store.addChannelMember('live:8:chat', 'alice');
    await h.api.store.addChannelMember('live:8:chat', 'bob');
    const c = await WsTestClient.ready(remote.wsUrl({ token: alice.key }));
    expect((await c.request('SUBSCRIBE', { channels: ['live:8:chat'] })).type).toBe('SUBSCRIBED');
    const state = await c.request('PRESENCE', { channel: 'live:8:chat' });
    expect(state.payload.members).toEqual([
      { user_id: 'alice', status: 'online' },
      { user_id: 'bob', status: 'offline' },
    ]);
    expect((await call('GET', '/api/presence/live:8:chat', alice.key)).body.members).toEqual(state.payload.members);
    await c.close();
  });

  it('internal membership check answers {member}', async () => {
    const res = await internal.inject({ method: 'POST', url: '/internal/channels/membership', payload: { channel: 'live:5:chat', user_id: 'alice' } });
    expect(res.json()).toEqual({ member: true });
    const no = await internal.inject({ method: 'POST', url: '/internal/channels/membership', payload: { channel: 'live:5:chat', user_id: 'bob' } });
    expect(no.json()).toEqual({ member: false });
    const ingest = await internal.inject({ method: 'POST', url: '/internal/realtime/ingest', payload: { token: 'nope', event: { type: 'a', payload: {} } } });
    expect(ingest.statusCode).toBe(401);
  });
});

describe('JWTs on a node without a store', () => {
  const jwt = (sub: string, secret = JWT_SECRET, exp: string | number = '1h') =>
    new SignJWT({ sub, channels: [`room:${sub}`] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(secret));

  function countingAuthenticator(jwtSettings = jwtSettingsDigest(h.api.config)) {
    const calls: string[] = [];
    const counting: typeof fetch = (input, init) => {
      calls.push(String(input));
      return fetch(input, init);
    };
    const { config, clock } = h.api;
    const auth = new IntrospectionAuthenticator({ baseUrl: internalUrl, cacheMs: 60_000, clock, fetch: counting, jwt: createJwtVerifier(config, clock), jwtSettings });
    return { auth, calls };
  }

  it('verifies them on the node and asks the API once for the user role, not once per token', async () => {
    const { auth, calls } = countingAuthenticator();
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => jwt(`jwt_user_${i}`)));
    const contexts = await Promise.all(tokens.map((t) => auth.authenticate(t)));
    expect(calls).toHaveLength(1);
    // The same context the API itself gives for such a token.
    const fromApi = await internal.inject({ method: 'POST', url: '/internal/auth/introspect', payload: { token: tokens[3] } });
    const expected = fromApi.json<{ permissions: string[] }>();
    expect(contexts[3]).toMatchObject({ principalId: 'jwt_user_3', userId: 'jwt_user_3', kind: 'user', role: 'user', via: 'jwt', keyId: null, channels: ['room:jwt_user_3'] });
    expect(contexts[3]!.permissions).toEqual(expected.permissions);
    expect(contexts[3]!.permissions).toContain('events.post.event_ingest');
  });

  it('rejects a forged or expired token without asking the API', async () => {
    const { auth, calls } = countingAuthenticator();
    await expect(auth.authenticate(await jwt('mallory', 'not-the-secret-0000000000000000000000'))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(auth.authenticate(await jwt('late', JWT_SECRET, Math.floor(Date.now() / 1000) - 60))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(calls).toEqual([]);
  });

  it('still asks the API about API keys', async () => {
    const { auth, calls } = countingAuthenticator();
    expect(await auth.authenticate(alice.key)).toMatchObject({ principalId: 'alice', via: 'key' });
    expect(calls).toHaveLength(1);
  });

  it('hands JWTs to the API for good once its JWT settings turn out to differ from this node\'s', async () => {
    // As if this node had another secret, issuer or audience than the API.
    const { auth, calls } = countingAuthenticator('another-digest');
    const first = await auth.authenticate(await jwt('jwt_user_a'));
    expect(first).toMatchObject({ principalId: 'jwt_user_a', via: 'jwt', role: 'user' });
    expect(calls).toHaveLength(2); // the role question, which shows the mismatch, then this token's own
    await auth.authenticate(await jwt('jwt_user_b'));
    expect(calls).toHaveLength(3);
  });

  it('sends the digest of its JWT settings with a JWT answer only', async () => {
    const forJwt = await internal.inject({ method: 'POST', url: '/internal/auth/introspect', payload: { token: await jwt('jwt_user_c') } });
    expect(forJwt.json()).toMatchObject({ active: true, via: 'jwt', jwt_settings: jwtSettingsDigest(h.api.config) });
    const forKey = await internal.inject({ method: 'POST', url: '/internal/auth/introspect', payload: { token: alice.key } });
    expect(forKey.json()).not.toHaveProperty('jwt_settings');
  });
});

describe('a role edit on a node without a store', () => {
  const jwt = (sub: string) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(JWT_SECRET));

  /** A node with long caches, so only the role-edit control message can explain a change within seconds. */
  function longCacheNode(): Promise<GatewayNode> {
    const { config, clock } = h.api;
    return startGatewayNode({
      config,
      clock,
      bus: h.hub.node({ namespaces: namespaceResolver(config), clock }),
      presence: h.presence,
      sessions: h.sessions,
      auth: new IntrospectionAuthenticator({ baseUrl: internalUrl, cacheMs: 60_000, clock, jwt: createJwtVerifier(config, clock), jwtSettings: jwtSettingsDigest(config) }),
      access: httpChannelAccess({ baseUrl: internalUrl, clock, cacheMs: 0 }),
      ingest: httpIngestPort({ baseUrl: internalUrl }),
    });
  }

  it('reaches cached keys, cached JWT role permissions and open sockets at once, not after the cache period', async () => {
    const node = await longCacheNode();
    const role = (await call('GET', '/api/admin/roles/user', h.api.adminKey)).body as { permissions: string[] };
    try {
      const byKey = await WsTestClient.ready(node.wsUrl({ token: bob.key }));
      const byJwt = await WsTestClient.ready(node.wsUrl({ token: await jwt('jwt_user_role') }));
      for (const c of [byKey, byJwt]) expect(await c.request('SUBSCRIBE', { channels: ['bulletin:1'] })).toMatchObject({ type: 'ERROR', payload: { code: 'FORBIDDEN' } });
      const put = await call('PUT', '/api/admin/roles/user', h.api.adminKey, { permissions: [...role.permissions, 'channels.subscribe.bulletin'] });
      expect(put.status).toBe(200);
      // Open sockets pick up the new permissions…
      expect(await byKey.subscribesWithin('bulletin:1', 5000)).toBe(true);
      expect(await byJwt.subscribesWithin('bulletin:1', 5000)).toBe(true);
      // …and so do new handshakes, whose answers were cached before the edit.
      const again = await WsTestClient.ready(node.wsUrl({ token: bob.key }));
      expect(await again.request('SUBSCRIBE', { channels: ['bulletin:2'] })).toMatchObject({ type: 'SUBSCRIBED' });
      const againJwt = await WsTestClient.ready(node.wsUrl({ token: await jwt('jwt_user_role_2') }));
      expect(await againJwt.request('SUBSCRIBE', { channels: ['bulletin:2'] })).toMatchObject({ type: 'SUBSCRIBED' });
    } finally {
      await call('PUT', '/api/admin/roles/user', h.api.adminKey, { permissions: role.permissions });
      await node.close();
    }
  });

  it('a role edit that withdraws a permission ends the subscriptions it allowed at once', async () => {
    const node = await longCacheNode();
    const role = (await call('GET', '/api/admin/roles/user', h.api.adminKey)).body as { permissions: string[] };
    try {
      expect((await call('PUT', '/api/admin/roles/user', h.api.adminKey, { permissions: [...role.permissions, 'channels.subscribe.bulletin'] })).status).toBe(200);
      const byKey = await WsTestClient.ready(node.wsUrl({ token: bob.key }));
      const byJwt = await WsTestClient.ready(node.wsUrl({ token: await jwt('jwt_user_withdrawn') }));
      for (const c of [byKey, byJwt]) expect(await c.subscribesWithin('bulletin:9', 5000)).toBe(true);
      expect((await call('PUT', '/api/admin/roles/user', h.api.adminKey, { permissions: role.permissions })).status).toBe(200);
      // Not at the periodic sweep (a minute here): within the revocation bound of 5 s.
      for (const c of [byKey, byJwt]) {
        const ended = await c.waitFor((f) => f.type === 'UNSUBSCRIBED' && f.ref === undefined, 5000);
        expect(ended.payload).toMatchObject({ channels: ['bulletin:9'], reason: 'access revoked' });
      }
      await h.bus.publish('bulletin:9', 'm', {});
      await sleep(100);
      for (const c of [byKey, byJwt]) expect(c.events('bulletin:9')).toEqual([]);
    } finally {
      await call('PUT', '/api/admin/roles/user', h.api.adminKey, { permissions: role.permissions });
      await node.close();
    }
  });

  it('a second role edit soon after the first reaches open sockets at once too', async () => {
    const node = await longCacheNode();
    const role = (await call('GET', '/api/admin/roles/user', h.api.adminKey)).body as { permissions: string[] };
    try {
      const c = await WsTestClient.ready(node.wsUrl({ token: bob.key }));
      expect(await c.request('SUBSCRIBE', { channels: ['bulletin:3'] })).toMatchObject({ type: 'ERROR', payload: { code: 'FORBIDDEN' } });
      // A first edit that grants nothing here, then the one that does, well within the later pass.
      expect((await call('PUT', '/api/admin/roles/user', h.api.adminKey, { permissions: [...role.permissions, 'channels.subscribe.other'] })).status).toBe(200);
      await sleep(300);
      expect((await call('PUT', '/api/admin/roles/user', h.api.adminKey, { permissions: [...role.permissions, 'channels.subscribe.bulletin'] })).status).toBe(200);
      expect(await c.subscribesWithin('bulletin:3', 1000)).toBe(true);
    } finally {
      await call('PUT', '/api/admin/roles/user', h.api.adminKey, { permissions: role.permissions });
      await node.close();
    }
  });
});
