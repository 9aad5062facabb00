/**
 * Store conformance, principals, roles, keys and channel members: one suite run against PGlite
 * and PostgreSQL, including the error codes a caller sees for constraint violations.
 */
import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/types.js';
import { KINDS, useSuiteStore } from './store-fixtures.js';

const NOW = new Date(Date.UTC(2030, 0, 1));

describe.each(KINDS)('Store auth ($kind)', ({ kind, skip }) => {
  let store: Store;

  useSuiteStore(kind, skip, (s) => (store = s));

  describe.skipIf(skip)('principals and roles', () => {
    it('creates, reads, lists and patches principals', async () => {
      const p = await store.createPrincipal({ id: 'payments', kind: 'service', role: 'service' });
      expect(p).toMatchObject({ id: 'payments', kind: 'service', role: 'service', extraPermissions: [], disabled: false });
      expect(p.createdAt).toBeInstanceOf(Date);
      await store.createPrincipal({ id: 'u_1', kind: 'user', role: 'user', extraPermissions: ['x.get.y'], revokedPermissions: ['events.get.event_list'] });
      expect((await store.listPrincipals({ limit: 10 })).principals.map((x) => x.id)).toEqual(['payments', 'u_1']);
      expect(await store.getPrincipal('u_1')).toMatchObject({ extraPermissions: ['x.get.y'], revokedPermissions: ['events.get.event_list'] });
      expect(await store.getPrincipal('nobody')).toBeNull();
      const patched = await store.updatePrincipal('u_1', { role: 'admin', disabled: true });
      expect(patched).toMatchObject({ role: 'admin', disabled: true, extraPermissions: ['x.get.y'] });
      expect(await store.updatePrincipal('u_1', { extraPermissions: [] })).toMatchObject({ extraPermissions: [], role: 'admin' });
      expect(await store.updatePrincipal('nobody', { disabled: true })).toBeNull();
    });

    it('lists principals a page at a time, by kind and role', async () => {
      for (const id of ['svc_a', 'svc_b', 'u_a', 'u_b', 'u_c']) {
        await store.createPrincipal({ id, kind: id.startsWith('u_') ? 'user' : 'service', role: id === 'u_c' ? 'admin' : id.startsWith('u_') ? 'user' : 'service' });
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; ; pages++) {
        const page = await store.listPrincipals({ limit: 2, cursor });
        expect(page.principals.length).toBeLessThanOrEqual(2);
        seen.push(...page.principals.map((p) => p.id));
        if (!page.nextCursor) {
          expect(pages).toBe(2);
          break;
        }
        expect(page.nextCursor).toBe(page.principals[1]!.id);
        cursor = page.nextCursor;
      }
      expect(seen).toEqual(['svc_a', 'svc_b', 'u_a', 'u_b', 'u_c']);
      // A page that ends exactly at the last row says no more follow.
      expect(await store.listPrincipals({ limit: 5 })).toMatchObject({ nextCursor: null });
      expect((await store.listPrincipals({ limit: 10, kind: 'user' })).principals.map((p) => p.id)).toEqual(['u_a', 'u_b', 'u_c']);
      expect((await store.listPrincipals({ limit: 10, kind: 'user', role: 'admin' })).principals.map((p) => p.id)).toEqual(['u_c']);
      expect((await store.listPrincipals({ limit: 1, kind: 'service', cursor: 'svc_a' })).principals.map((p) => p.id)).toEqual(['svc_b']);
    });

    it('maps a duplicate id to CONFLICT and an unknown role to BAD_REQUEST', async () => {
      await store.createPrincipal({ id: 'dup', kind: 'user', role: 'user' });
      await expect(store.createPrincipal({ id: 'dup', kind: 'user', role: 'user' })).rejects.toMatchObject({
        name: 'TemError',
        code: 'CONFLICT',
        status: 409,
      });
      await expect(store.createPrincipal({ id: 'x', kind: 'user', role: 'no-such-role' })).rejects.toMatchObject({
        code: 'BAD_REQUEST',
      });
      await expect(store.updatePrincipal('dup', { role: 'no-such-role' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    });

    it('has the built-in roles and lets operators edit and add roles', async () => {
      expect((await store.listRoles()).map((r) => r.name)).toEqual(['admin', 'service', 'user']);
      expect(await store.getRole('admin')).toMatchObject({ permissions: ['*'], builtin: true });
      expect(await store.putRole('auditor', ['events.get.*'])).toMatchObject({ role: { name: 'auditor', permissions: ['events.get.*'], builtin: false }, created: true });
      expect(await store.putRole('auditor', ['events.get.*', 'common.*'])).toMatchObject({ role: { permissions: ['events.get.*', 'common.*'] }, created: false });
      expect(await store.putRole('user', ['common.*'])).toMatchObject({ role: { permissions: ['common.*'], builtin: true }, created: false });
      expect(await store.getRole('nope')).toBeNull();
    });
  });

  describe.skipIf(skip)('api keys', () => {
    it('creates keys and finds them by hash with the principal and role permissions', async () => {
      await store.createPrincipal({ id: 'payments', kind: 'service', role: 'service', extraPermissions: ['admin.get.x'] });
      const key = await store.createApiKey({ id: 'key_1', principalId: 'payments', hash: 'a'.repeat(64), prefix: 'tem_AbCd', expiresAt: NOW });
      expect(key).toMatchObject({ id: 'key_1', principalId: 'payments', prefix: 'tem_AbCd', expiresAt: NOW, revokedAt: null });
      expect(key).not.toHaveProperty('hash');
      const found = await store.findApiKeyByHash('a'.repeat(64));
      expect(found?.key).toEqual(key);
      expect(found?.principal).toMatchObject({ id: 'payments', role: 'service', extraPermissions: ['admin.get.x'] });
      expect(found?.rolePermissions).toEqual(['events.*', 'channels.*', 'presence.get.presence_list', 'common.*']);
      expect(await store.findApiKeyByHash('b'.repeat(64))).toBeNull();
    });

    it('records when keys were last used, never moving the time back', async () => {
      await store.createPrincipal({ id: 'u_t', kind: 'user', role: 'user' });
      await store.createApiKey({ id: 'kt1', principalId: 'u_t', hash: 'ht1', prefix: 'tem_t1', expiresAt: null });
      await store.createApiKey({ id: 'kt2', principalId: 'u_t', hash: 'ht2', prefix: 'tem_t2', expiresAt: null });
      const later = new Date(NOW.getTime() + 60_000);
      await store.touchApiKeys(['kt1', 'kt2', 'missing'], later);
      await store.touchApiKeys(['kt1'], NOW);
      await store.touchApiKeys([], NOW);
      const listed = await store.listApiKeys('u_t');
      expect(listed.map((k) => [k.id, k.lastUsedAt])).toEqual([
        ['kt1', later],
        ['kt2', later],
      ]);
    });

    it('lists and revokes keys once; unknown principal is NOT_FOUND, reused hash CONFLICT', async () => {
      await store.createPrincipal({ id: 'u_1', kind: 'user', role: 'user' });
      await store.createApiKey({ id: 'k1', principalId: 'u_1', hash: 'h1', prefix: 'tem_1', expiresAt: null });
      await store.createApiKey({ id: 'k2', principalId: 'u_1', hash: 'h2', prefix: 'tem_2', expiresAt: null });
      expect((await store.listApiKeys('u_1')).map((k) => k.id)).toEqual(['k1', 'k2']);
      const revoked = await store.revokeApiKey('k1', NOW);
      expect(revoked?.revokedAt).toEqual(NOW);
      expect((await store.revokeApiKey('k1', new Date(NOW.getTime() + 1000)))?.revokedAt).toEqual(NOW);
      expect((await store.findApiKeyByHash('h1'))?.key.revokedAt).toEqual(NOW);
      expect(await store.revokeApiKey('nope', NOW)).toBeNull();
      await expect(
        store.createApiKey({ id: 'k3', principalId: 'ghost', hash: 'h3', prefix: 'tem_3', expiresAt: null }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(
        store.createApiKey({ id: 'k4', principalId: 'u_1', hash: 'h1', prefix: 'tem_4', expiresAt: null }),
      ).rejects.toMatchObject({ code: 'CONFLICT' });
    });
  });

  describe.skipIf(skip)('channel members', () => {
    it('adds, checks, lists and removes members', async () => {
      expect(await store.addChannelMember('server:1', 'u_2')).toBe(true);
      expect(await store.addChannelMember('server:1', 'u_1')).toBe(true);
      expect(await store.addChannelMember('server:1', 'u_1')).toBe(false);
      expect(await store.isChannelMember('server:1', 'u_1')).toBe(true);
      expect(await store.isChannelMember('server:2', 'u_1')).toBe(false);
      expect(await store.listChannelMembers('server:1')).toEqual(['u_1', 'u_2']);
      expect(await store.removeChannelMember('server:1', 'u_1')).toBe(true);
      expect(await store.removeChannelMember('server:1', 'u_1')).toBe(false);
      expect(await store.listChannelMembers('server:1')).toEqual(['u_2']);
    });
  });
});
