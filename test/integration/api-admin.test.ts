/** Administration through the HTTP API: principals, keys (shown once, never hashed), roles. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../helpers/api.js';
import { services } from '../helpers/services.js';

const kind = services.postgres ? 'postgres' : 'pglite';

describe(`admin API (${kind})`, () => {
  let api: TestApi;
  const admin = (method: string, path: string, body?: unknown) => api.request<Record<string, unknown>>(method, path, { key: api.adminKey, body });

  beforeAll(async () => {
    api = await createTestApi({ kind });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('creates, shows, lists and updates principals', async () => {
    const created = await admin('POST', '/api/admin/principals', { id: 'billing', kind: 'service', role: 'service', extra_permissions: ['admin.get.role_list'] });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe('/api/admin/principals/billing');
    expect(created.body).toMatchObject({ id: 'billing', kind: 'service', role: 'service', extra_permissions: ['admin.get.role_list'], revoked_permissions: [], disabled: false, created_at: expect.any(String) });

    // Id and role may be left out: a generated id, the role named like the kind.
    const generated = await admin('POST', '/api/admin/principals', { kind: 'user' });
    expect(generated.status).toBe(201);
    expect(generated.body.id).toMatch(/^u_[0-9A-Za-z]{20}$/);
    expect(generated.body.role).toBe('user');

    expect((await admin('POST', '/api/admin/principals', { id: 'billing', kind: 'service', role: 'service' })).status).toBe(409);
    expect((await admin('GET', '/api/admin/principals/billing')).body).toMatchObject({ id: 'billing' });
    expect((await admin('GET', '/api/admin/principals/ghost')).status).toBe(404);

    const list = await api.request<{ data: { id: string }[]; next_cursor: string | null }>('GET', '/api/admin/principals', { key: api.adminKey });
    expect(list.body.data.map((p) => p.id)).toEqual(expect.arrayContaining(['admin', 'billing', generated.body.id as string]));
    expect(list.body.next_cursor).toBeNull();

    // Paging in id order, and the kind and role filters.
    const all = list.body.data.map((p) => p.id);
    expect(all).toEqual([...all].sort());
    const first = await api.request<{ data: { id: string }[]; next_cursor: string | null }>('GET', '/api/admin/principals?limit=1', { key: api.adminKey });
    expect(first.body).toEqual({ data: [expect.objectContaining({ id: all[0] })], next_cursor: all[0] });
    const second = await api.request<{ data: { id: string }[] }>('GET', `/api/admin/principals?limit=1&cursor=${first.body.next_cursor}`, { key: api.adminKey });
    expect(second.body.data.map((p) => p.id)).toEqual([all[1]]);
    const users = await api.request<{ data: { id: string; kind: string }[] }>('GET', '/api/admin/principals?kind=user&role=user', { key: api.adminKey });
    expect(users.body.data.map((p) => p.id)).toContain(generated.body.id);
    expect(users.body.data.every((p) => p.kind === 'user')).toBe(true);
    expect(users.body.data.map((p) => p.id)).not.toContain('billing');

    const patched = await admin('PATCH', '/api/admin/principals/billing', { role: 'user', revoked_permissions: ['events.get.*'], disabled: true });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ role: 'user', revoked_permissions: ['events.get.*'], disabled: true, extra_permissions: ['admin.get.role_list'] });
    expect((await admin('PATCH', '/api/admin/principals/ghost', { disabled: true })).status).toBe(404);
    expect((await admin('PATCH', '/api/admin/principals/billing', { role: 'nobody' })).status).toBe(400);
  });

  it('keeps principal admin whole, as the admin role keeps "*": no disabling, no revocation, no role without "*"', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ disabled: true }, 'body.disabled'],
      [{ revoked_permissions: ['admin.*'] }, 'body.revoked_permissions'],
      [{ role: 'service' }, 'body.role'],
    ];
    for (const [body, field] of cases) {
      const res = await admin('PATCH', '/api/admin/principals/admin', body);
      expect(res.status, JSON.stringify(body)).toBe(409);
      expect(res.body).toMatchObject({ code: 'INVALID_STATE', field });
    }
    const principal = await admin('GET', '/api/admin/principals/admin');
    expect(principal.body).toMatchObject({ role: 'admin', revoked_permissions: [], disabled: false });
    expect((await admin('GET', '/api/admin/roles/admin')).status).toBe(200);
    // What leaves it whole still goes: another role holding "*", an extra permission.
    expect((await admin('PUT', '/api/admin/roles/root', { permissions: ['*'] })).status).toBe(201);
    expect((await admin('PATCH', '/api/admin/principals/admin', { role: 'root', extra_permissions: ['events.get.event_detail'], revoked_permissions: [] })).status).toBe(200);
    expect((await admin('PATCH', '/api/admin/principals/admin', { role: 'admin', extra_permissions: [] })).status).toBe(200);
  });

  it('creates keys shown only once, lists them without secrets, and revokes them', async () => {
    await admin('POST', '/api/admin/principals', { id: 'keyholder', kind: 'service', role: 'service' });
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const created = await admin('POST', '/api/admin/principals/keyholder/keys', { expires_at: expiresAt });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ key_id: expect.any(String), key: expect.stringMatching(/^tem_[0-9A-Za-z]{40}$/), expires_at: expiresAt, revoked_at: null });
    const key = created.body.key as string;
    expect(created.body.prefix).toBe(key.slice(4, 12));
    const plain = await api.request('POST', '/api/admin/principals/keyholder/keys', { key: api.adminKey });
    expect(plain.status).toBe(201);
    expect(plain.body.expires_at).toBeNull();

    const list = await admin('GET', '/api/admin/principals/keyholder/keys');
    expect(list.status).toBe(200);
    const data = list.body.data as Record<string, unknown>[];
    expect(data.map((k) => k.key_id).sort()).toEqual([created.body.key_id, plain.body.key_id].sort());
    const listed = JSON.stringify(list.body);
    expect(listed).not.toContain(key);
    expect(listed).not.toMatch(/hash|[0-9a-f]{64}/);
    expect(Object.keys(data[0]!).sort()).toEqual(['created_at', 'expires_at', 'id', 'key_id', 'last_used_at', 'prefix', 'principal_id', 'revoked_at']);

    expect((await api.request('GET', '/api/events', { key })).status).toBe(200);
    const revoked = await admin('DELETE', `/api/admin/keys/${created.body.key_id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ key_id: created.body.key_id, revoked_at: expect.any(String) });
    expect((await api.request('GET', '/api/events', { key })).status).toBe(401);
    // Revoking twice is harmless; unknown keys and principals are 404.
    expect((await admin('DELETE', `/api/admin/keys/${created.body.key_id}`)).status).toBe(200);
    expect((await admin('DELETE', '/api/admin/keys/key_nothing')).status).toBe(404);
    expect((await admin('POST', '/api/admin/principals/ghost/keys', {})).status).toBe(404);
    expect((await admin('GET', '/api/admin/principals/ghost/keys')).status).toBe(404);
  });

  it('shows, lists and edits roles', async () => {
    const roles = await api.request<{ data: { name: string; permissions: string[]; builtin: boolean }[] }>('GET', '/api/admin/roles', { key: api.adminKey });
    const byName = Object.fromEntries(roles.body.data.map((r) => [r.name, r]));
    expect(byName.admin).toMatchObject({ permissions: ['*'], builtin: true });
    expect(byName.service!.permissions).toEqual(expect.arrayContaining(['events.*', 'channels.*', 'presence.get.presence_list', 'common.*']));
    expect(byName.user!.permissions).toEqual(expect.arrayContaining(['events.post.event_ingest', 'events.get.event_detail', 'events.get.event_list']));

    expect((await admin('GET', '/api/admin/roles/user')).body).toMatchObject({ name: 'user', builtin: true });
    expect((await admin('GET', '/api/admin/roles/ghost')).status).toBe(404);

    const put = await admin('PUT', '/api/admin/roles/support', { permissions: ['events.get.*', 'events.get.*', 'admin.get.principal_list'] });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ name: 'support', permissions: ['events.get.*', 'admin.get.principal_list'], builtin: false });
    // Replacing it: 200.
    expect((await admin('PUT', '/api/admin/roles/support', { permissions: ['events.get.*', 'admin.get.principal_list'] })).status).toBe(200);
    const withRole = await admin('POST', '/api/admin/principals', { id: 'helpdesk', kind: 'user', role: 'support' });
    expect(withRole.status).toBe(201);

    // The admin role keeps `*`: without it every admin key would lose the API that could give it back.
    const lockout = await admin('PUT', '/api/admin/roles/admin', { permissions: ['events.*'] });
    expect(lockout.status).toBe(409);
    expect(lockout.body).toMatchObject({ code: 'INVALID_STATE', field: 'body.permissions' });
    expect((await admin('GET', '/api/admin/roles/admin')).body).toMatchObject({ permissions: ['*'] });
    expect((await admin('GET', '/api/admin/principals')).status).toBe(200);
    // Adding to it is allowed (`*` already covers everything, but the list is the operator's).
    expect((await admin('PUT', '/api/admin/roles/admin', { permissions: ['*', 'events.*'] })).status).toBe(200);
    expect((await admin('PUT', '/api/admin/roles/admin', { permissions: ['*'] })).status).toBe(200);
  });

  it('lets a key hand on only permissions it holds itself: in roles, principals, lifted revocations and keys', async () => {
    // An operator who may run the admin routes, but is not an admin (no `*`).
    const ops = await api.createPrincipal({
      kind: 'service',
      role: 'service',
      extra_permissions: ['admin.post.*', 'admin.put.role_update', 'admin.patch.principal_update', 'admin.get.*'],
    });
    const as = (method: string, path: string, body?: unknown) => api.request<Record<string, unknown>>(method, path, { key: ops.key, body });
    const refused = async (method: string, path: string, body: unknown, field: string) => {
      const res = await as(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(403);
      expect(res.body, `${method} ${path}`).toMatchObject({ code: 'FORBIDDEN', field });
    };

    // Keys: not the admin's, but one of a user, whose every permission it holds.
    await refused('POST', '/api/admin/principals/admin/keys', {}, 'params.id');
    await admin('POST', '/api/admin/principals', { id: 'esc_user', kind: 'user' });
    expect((await as('POST', '/api/admin/principals/esc_user/keys', {})).status).toBe(201);

    // Roles: nothing beyond its own grants, in a new role or its own.
    await refused('PUT', '/api/admin/roles/esc_all', { permissions: ['*'] }, 'body.permissions');
    await refused('PUT', '/api/admin/roles/service', { permissions: ['events.*', 'admin.*'] }, 'body.permissions');
    await refused('PUT', '/api/admin/roles/esc_partial', { permissions: ['admin.delete.*'] }, 'body.permissions');
    expect((await as('PUT', '/api/admin/roles/esc_reader', { permissions: ['events.get.*', 'admin.get.role_list'] })).status).toBe(201);
    // A role already holding more may still be edited within the caller's own grants.
    await admin('PUT', '/api/admin/roles/esc_wide', { permissions: ['*'] });
    expect((await as('PUT', '/api/admin/roles/esc_wide', { permissions: ['*', 'events.get.*'] })).status).toBe(200);

    // Principals: no role or extra permission beyond its own, no lifting a revocation it does not hold.
    await refused('POST', '/api/admin/principals', { kind: 'service', role: 'admin' }, 'body.role');
    await refused('POST', '/api/admin/principals', { kind: 'service', extra_permissions: ['admin.delete.key_revoke'] }, 'body.extra_permissions');
    await refused('PATCH', `/api/admin/principals/${ops.id}`, { extra_permissions: ['admin.*'] }, 'body.extra_permissions');
    await refused('PATCH', `/api/admin/principals/${ops.id}`, { role: 'esc_wide' }, 'body.role');
    await admin('POST', '/api/admin/principals', { id: 'esc_svc', kind: 'service', revoked_permissions: ['events.post.*', 'admin.delete.key_revoke'] });
    await refused('PATCH', '/api/admin/principals/esc_svc', { revoked_permissions: [] }, 'body.revoked_permissions');
    expect((await as('PATCH', '/api/admin/principals/esc_svc', { revoked_permissions: ['admin.delete.key_revoke'] })).status).toBe(200);
    expect((await as('POST', '/api/admin/principals', { kind: 'user', role: 'esc_reader' })).status).toBe(201);

    // Enabling a disabled principal gives its keys back all it may do: not an admin's, but a user's.
    await admin('POST', '/api/admin/principals', { id: 'esc_boss', kind: 'service', role: 'admin' });
    await admin('PATCH', '/api/admin/principals/esc_boss', { disabled: true });
    await refused('PATCH', '/api/admin/principals/esc_boss', { disabled: false }, 'body.disabled');
    expect((await admin('GET', '/api/admin/principals/esc_boss')).body.disabled).toBe(true);
    // Narrowed in the same change to what the caller holds, it may be enabled; so may a user.
    expect((await as('PATCH', '/api/admin/principals/esc_boss', { disabled: false, role: 'esc_reader' })).status).toBe(200);
    await admin('PATCH', '/api/admin/principals/esc_user', { disabled: true });
    expect((await as('PATCH', '/api/admin/principals/esc_user', { disabled: false })).status).toBe(200);
    // Disabling grants nothing, and is not checked.
    expect((await as('PATCH', '/api/admin/principals/esc_boss', { disabled: true })).status).toBe(200);

    // The admin (`*`) may grant anything; holding `*` too, the operator may then mint the admin's key.
    expect((await admin('PATCH', `/api/admin/principals/${ops.id}`, { extra_permissions: ['*'] })).status).toBe(200);
    expect((await as('POST', '/api/admin/principals/admin/keys', {})).status).toBe(201);
  });

  it('requires admin permissions on every admin route', async () => {
    const svc = await api.createPrincipal({ kind: 'service' });
    const routes: [string, string, unknown?][] = [
      ['POST', '/api/admin/principals', { kind: 'user', role: 'user' }],
      ['GET', '/api/admin/principals'],
      ['GET', '/api/admin/principals/admin'],
      ['PATCH', '/api/admin/principals/admin', { disabled: true }],
      ['POST', '/api/admin/principals/admin/keys', {}],
      ['GET', '/api/admin/principals/admin/keys'],
      ['DELETE', '/api/admin/keys/key_x'],
      ['GET', '/api/admin/roles'],
      ['GET', '/api/admin/roles/admin'],
      ['PUT', '/api/admin/roles/admin', { permissions: [] }],
    ];
    for (const [method, path, body] of routes) {
      const res = await api.request(method, path, { key: svc.key, body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect((await api.request(method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
  });
});
