/** The internal listener over a real port: token introspection for gateways, and liveness. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { buildInternalServer } from '../../src/ingest/internal-server.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ManualClock } from '../../src/core/clock.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import { generateApiKey } from '../../src/auth/keys.js';
import { loadConfig } from '../../src/config/index.js';
import { createPostgresStore } from '../../src/store/index.js';
import { createTestApi, type TestApi } from '../helpers/api.js';
import { services } from '../helpers/services.js';

const kind = services.postgres ? 'postgres' : 'pglite';
const SECRET = 'internal-listener-jwt-secret-0123456789abcdef';

describe(`internal listener (${kind})`, () => {
  let api: TestApi;
  let internal: FastifyInstance;
  let base: string;
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    api = await createTestApi({ kind, clock, config: { jwtSecret: SECRET } });
    internal = await buildInternalServer({ config: api.config, logger: silentLogger(), authenticator: api.authenticator, store: api.store });
    base = await internal.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await internal?.close();
    await api?.close();
  });

  const introspect = async (body: unknown, contentType = 'application/json') => {
    const res = await fetch(`${base}/internal/auth/introspect`, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
  };

  it('describes an active API key', async () => {
    const svc = await api.createPrincipal({ id: 'gateway-user', kind: 'user', extra_permissions: ['channels.subscribe.*'], revoked_permissions: ['events.get.event_list'] });
    const res = await introspect({ token: svc.key });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      active: true,
      principal_id: 'gateway-user',
      kind: 'user',
      user_id: 'gateway-user',
      role: 'user',
      revoked: ['events.get.event_list'],
      channels: [],
      expires_at: null,
      key_id: svc.keyId,
      via: 'key',
    });
    expect(res.body.permissions).toEqual(expect.arrayContaining(['events.post.event_ingest', 'channels.subscribe.*']));
    // role ∪ extra − revoked: the revoked grant is not listed as a permission.
    expect(res.body.permissions).not.toContain('events.get.event_list');
  });

  it('says active:false for unknown, malformed, expired and revoked tokens', async () => {
    const u = await api.createPrincipal({ kind: 'user' });
    const expiring = await api.createKey(u.id, new Date(clock.nowMs() + 1000));
    expect((await introspect({ token: expiring.key })).body.active).toBe(true);
    clock.advance(1001);
    for (const token of ['nope', 'tem_short', `tem_${'z'.repeat(40)}`, expiring.key]) {
      expect(await introspect({ token })).toMatchObject({ status: 200, body: { active: false } });
    }
    expect((await introspect({ token: u.key })).body.active).toBe(true);
    await api.request('DELETE', `/api/admin/keys/${u.keyId}`, { key: api.adminKey });
    expect((await introspect({ token: u.key })).body).toEqual({ active: false });
  });

  it('describes a JWT with its channels claim and expiry', async () => {
    const exp = Math.floor(clock.nowMs() / 1000) + 120;
    const token = await new SignJWT({ sub: 'u_jwt', channels: ['live:7:chat'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));
    const res = await introspect({ token });
    expect(res.body).toMatchObject({ active: true, principal_id: 'u_jwt', user_id: 'u_jwt', kind: 'user', channels: ['live:7:chat'], key_id: null, via: 'jwt', expires_at: new Date(exp * 1000).toISOString() });
  });

  it('answers bad requests with problem+json naming the field', async () => {
    const missing = await introspect({});
    expect(missing.status).toBe(400);
    expect(missing.type).toMatch(/^application\/problem\+json/);
    expect(missing.body).toMatchObject({ field: 'body.token' });
    expect((await introspect({ token: 5 })).body).toMatchObject({ status: 400, field: 'body.token' });
    expect((await introspect({ token: 'x', extra: 1 })).body).toMatchObject({ status: 400, field: 'body.extra' });
    expect((await introspect('{oops')).status).toBe(400);
    expect((await introspect('token=x', 'text/plain')).status).toBe(415);
  });

  it('serves /healthz and keeps the public API off this port', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const events = await fetch(`${base}/api/events`);
    expect(events.status).toBe(404);
    expect(events.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});

describe('introspection with the database unreachable', () => {
  it('answers 503, so a gateway never mistakes "cannot tell" for "revoked"', async () => {
    const store = createPostgresStore('postgres://postgres@127.0.0.1:1/none', { poolMax: 1, connectTimeout: 1 });
    const config = loadConfig({ configFile: '/nonexistent.json' }, {});
    const internal = await buildInternalServer({ config, logger: silentLogger(), authenticator: new Authenticator(store, config, new ManualClock()) });
    try {
      const res = await internal.inject({ method: 'POST', url: '/internal/auth/introspect', payload: { token: generateApiKey().key } });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'STORE_UNAVAILABLE' });
      // A malformed token needs no database to be refused.
      expect((await internal.inject({ method: 'POST', url: '/internal/auth/introspect', payload: { token: 'nope' } })).json()).toEqual({ active: false });
    } finally {
      await internal.close();
      await store.close();
    }
  });
});
