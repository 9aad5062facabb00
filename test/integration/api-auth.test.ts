/**
 * Authentication and authorization through the HTTP API: 401 vs 403, expired, revoked and
 * disabled credentials, policy resolution (revoked beats role, wildcards, extra grants),
 * revocation across two servers on one PostgreSQL database, and JWT callers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { ManualClock } from '../../src/core/clock.js';
import { createPostgresStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { createTestApi, type TestApi } from '../helpers/api.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { services } from '../helpers/services.js';

const kind = services.postgres ? 'postgres' : 'pglite';
const JWT_SECRET = 'jwt-secret-for-the-api-auth-tests-0123456789';
const event = { type: 'auth.test', payload: { n: 1 } };

describe(`API authentication and authorization (${kind})`, () => {
  let api: TestApi;
  const clock = new ManualClock();

  beforeAll(async () => {
    api = await createTestApi({ kind, clock, config: { jwtSecret: JWT_SECRET } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('answers 401 problem+json without credentials, with garbage, and with an unknown key', async () => {
    const variants: Record<string, string>[] = [{}, { 'x-api-key': 'nope' }, { authorization: 'Bearer nope' }, { authorization: 'Basic YWxhZGRpbjpvcGVu' }, { 'x-api-key': `tem_${'A'.repeat(40)}` }];
    for (const headers of variants) {
      const res = await api.request('GET', '/api/events', { headers });
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.body).toMatchObject({ status: 401, code: 'UNAUTHORIZED', title: expect.any(String), detail: expect.any(String), type: expect.any(String) });
    }
  });

  it('accepts a key in X-API-Key and in Authorization: Bearer', async () => {
    const u = await api.createPrincipal({ kind: 'user' });
    expect((await api.request('GET', '/api/events', { headers: { 'x-api-key': u.key } })).status).toBe(200);
    expect((await api.request('GET', '/api/events', { headers: { authorization: `Bearer ${u.key}` } })).status).toBe(200);
  });

  it('answers 403 when the key lacks the permission', async () => {
    const u = await api.createPrincipal({ kind: 'user' });
    const res = await api.request('GET', '/api/admin/principals', { key: u.key });
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect((await api.request('POST', '/api/events/retry', { key: u.key, body: {} })).status).toBe(403);
  });

  it('rejects a key once it has expired', async () => {
    const u = await api.createPrincipal({ kind: 'user' });
    const { key } = await api.createKey(u.id, new Date(clock.nowMs() + 60_000));
    expect((await api.request('GET', '/api/events', { key })).status).toBe(200);
    clock.advance(60_001);
    const res = await api.request('GET', '/api/events', { key });
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/expired/);
    expect((await api.request('GET', '/api/events', { key: u.key })).status).toBe(200);
  });

  it('creates a key whose expiry has already passed, and refuses it', async () => {
    const u = await api.createPrincipal({ kind: 'user' });
    const created = await api.request('POST', `/api/admin/principals/${u.id}/keys`, { key: api.adminKey, body: { expires_at: '2001-01-01T00:00:00Z' } });
    expect(created.status).toBe(201);
    const res = await api.request('GET', '/api/events', { key: created.body.key as string });
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/expired/);
  });

  it('rejects a revoked key on the very next request', async () => {
    const u = await api.createPrincipal({ kind: 'user' });
    expect((await api.request('GET', '/api/events', { key: u.key })).status).toBe(200);
    expect((await api.request('DELETE', `/api/admin/keys/${u.keyId}`, { key: api.adminKey })).status).toBe(200);
    const res = await api.request('GET', '/api/events', { key: u.key });
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/revoked/);
  });

  it('rejects the keys of a disabled principal until it is enabled again', async () => {
    const u = await api.createPrincipal({ kind: 'user' });
    expect((await api.request('GET', '/api/events', { key: u.key })).status).toBe(200);
    await api.request('PATCH', `/api/admin/principals/${u.id}`, { key: api.adminKey, body: { disabled: true } });
    expect((await api.request('GET', '/api/events', { key: u.key })).status).toBe(401);
    await api.request('PATCH', `/api/admin/principals/${u.id}`, { key: api.adminKey, body: { disabled: false } });
    expect((await api.request('GET', '/api/events', { key: u.key })).status).toBe(200);
  });

  it('resolves permissions as role ∪ extra − revoked, revoked winning over wildcards', async () => {
    const svc = await api.createPrincipal({ kind: 'service', extra_permissions: ['admin.get.*'] });
    expect((await api.request('GET', '/api/admin/principals', { key: svc.key })).status).toBe(200);
    expect((await api.request('GET', '/api/admin/roles', { key: svc.key })).status).toBe(200);
    expect((await api.request('POST', '/api/admin/principals', { key: svc.key, body: { kind: 'user', role: 'user' } })).status).toBe(403);
    expect((await api.request('POST', '/api/events', { key: svc.key, body: event })).status).toBe(202);

    // The role grants events.*; revoking a wildcard takes the whole family away at once.
    await api.request('PATCH', `/api/admin/principals/${svc.id}`, { key: api.adminKey, body: { revoked_permissions: ['events.post.*', 'admin.get.role_list'] } });
    expect((await api.request('POST', '/api/events', { key: svc.key, body: event })).status).toBe(403);
    expect((await api.request('GET', '/api/events', { key: svc.key })).status).toBe(200);
    expect((await api.request('GET', '/api/admin/roles', { key: svc.key })).status).toBe(403);
    expect((await api.request('GET', '/api/admin/principals', { key: svc.key })).status).toBe(200);
  });

  it('applies a role change to every holder on the next request', async () => {
    await api.request('POST', '/api/admin/principals', { key: api.adminKey, body: { id: 'reader', kind: 'service', role: 'service' } });
    const { status: created } = await api.request('PUT', '/api/admin/roles/auditor', { key: api.adminKey, body: { permissions: ['events.get.*'] } });
    expect(created).toBe(201);
    const auditor = await api.createPrincipal({ kind: 'service', role: 'auditor' });
    expect((await api.request('GET', '/api/events', { key: auditor.key })).status).toBe(200);
    expect((await api.request('POST', '/api/events', { key: auditor.key, body: event })).status).toBe(403);
    await api.request('PUT', '/api/admin/roles/auditor', { key: api.adminKey, body: { permissions: ['events.post.event_ingest'] } });
    expect((await api.request('GET', '/api/events', { key: auditor.key })).status).toBe(403);
    expect((await api.request('POST', '/api/events', { key: auditor.key, body: event })).status).toBe(202);
  });

  it('authenticates end users by JWT with the user role', async () => {
    const exp = Math.floor(clock.nowMs() / 1000) + 300;
    const token = await new SignJWT({ sub: 'jwt_user' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(JWT_SECRET));
    const headers = { authorization: `Bearer ${token}` };
    const posted = await api.request('POST', '/api/events', { headers, body: event });
    expect(posted.status).toBe(202);
    const got = await api.request('GET', `/api/events/${posted.body.event_id}`, { headers });
    expect(got.body).toMatchObject({ producer_id: 'jwt_user', user_id: 'jwt_user' });
    expect((await api.request('GET', '/api/admin/roles', { headers })).status).toBe(403);
    const forged = await new SignJWT({ sub: 'jwt_user' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode('not-the-secret-000000000000000000000'));
    expect((await api.request('GET', '/api/events', { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
  });
});

describe.skipIf(!services.postgres)('revocation across two servers on one PostgreSQL database', () => {
  let db: TestStore;
  let secondStore: Store;
  let a: TestApi;
  let b: TestApi;

  beforeAll(async () => {
    db = await createTestStore('postgres');
    secondStore = createPostgresStore(db.url!, { poolMax: 2 });
    // Long cache: only the notification can make server B forget what it cached.
    a = await createTestApi({ store: db.store, config: { authCacheMs: 60_000 } });
    b = await createTestApi({ store: secondStore, config: { authCacheMs: 60_000 } });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await secondStore?.close();
    await db?.cleanup();
  });

  it('rejects a key revoked through server A on the next request to server B', async () => {
    const u = await a.createPrincipal({ kind: 'user' });
    expect((await b.request('GET', '/api/events', { key: u.key })).status).toBe(200);
    const heard = new Promise((resolve) => b.authenticator.onRevoked(resolve));
    expect((await a.request('DELETE', `/api/admin/keys/${u.keyId}`, { key: a.adminKey })).status).toBe(200);
    expect(await heard).toMatchObject({ keyId: u.keyId });
    expect((await b.request('GET', '/api/events', { key: u.key })).status).toBe(401);
  });

  it('applies a permission change made through server A on server B', async () => {
    const u = await a.createPrincipal({ kind: 'user' });
    expect((await b.request('GET', '/api/events', { key: u.key })).status).toBe(200);
    const heard = new Promise((resolve) => b.authenticator.onRevoked(resolve));
    await a.request('PATCH', `/api/admin/principals/${u.id}`, { key: a.adminKey, body: { revoked_permissions: ['events.get.event_list'] } });
    await heard;
    expect((await b.request('GET', '/api/events', { key: u.key })).status).toBe(403);
  });
});
