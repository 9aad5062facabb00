import { describe, expect, it } from 'vitest';
import { can, holdsAll, matchPermission, resolveGrants, seesAllEvents, PERMISSION_RE } from '../../src/auth/policy.js';

describe('matchPermission', () => {
  const cases: [string, string, boolean][] = [
    ['events.post.event_ingest', 'events.post.event_ingest', true],
    ['events.post.event_ingest', 'events.post.event_detail', false],
    ['*', 'events.post.event_ingest', true],
    ['*', 'common', true],
    ['events.*', 'events.post.event_ingest', true],
    ['events.*', 'events.get', true],
    ['events.*', 'events', false],
    ['events.*', 'channels.post.channel_publish', false],
    ['events.*', 'eventsx.post.event_ingest', false],
    ['events.*.event_detail', 'events.get.event_detail', true],
    ['events.*.event_detail', 'events.post.event_detail', true],
    ['events.*.event_detail', 'events.get.event_list', false],
    ['events.*.event_detail', 'events.get.event_detail.extra', false],
    ['*.get.*', 'admin.get.role_list', true],
    ['*.get.*', 'admin.post.role_list', false],
    ['events.post', 'events.post.event_ingest', false],
    ['events.post.event_ingest.more', 'events.post.event_ingest', false],
    ['events.post.event_ingest', 'events.post.event_ingest_on_behalf', false],
    ['events.post.event_*', 'events.post.event_ingest', false],
  ];
  it.each(cases)('%s vs %s → %s', (pattern, permission, expected) => {
    expect(matchPermission(pattern, permission)).toBe(expected);
  });
});

describe('can', () => {
  it('grants what the role or the extra permissions grant', () => {
    const permissions = resolveGrants(['events.get.event_detail'], ['channels.post.channel_publish']);
    expect(can({ permissions, revoked: [] }, 'events.get.event_detail')).toBe(true);
    expect(can({ permissions, revoked: [] }, 'channels.post.channel_publish')).toBe(true);
    expect(can({ permissions, revoked: [] }, 'events.post.event_ingest')).toBe(false);
  });

  it('lets revoked beat the role, the extra grants and wildcards', () => {
    const permissions = resolveGrants(['events.*'], ['events.post.event_retry']);
    expect(can({ permissions, revoked: ['events.post.event_retry'] }, 'events.post.event_retry')).toBe(false);
    expect(can({ permissions, revoked: ['events.post.event_retry'] }, 'events.post.event_ingest')).toBe(true);
    expect(can({ permissions: ['*'], revoked: ['events.*'] }, 'events.get.event_list')).toBe(false);
    expect(can({ permissions: ['*'], revoked: ['events.*'] }, 'admin.get.role_list')).toBe(true);
    expect(can({ permissions: ['*'], revoked: ['*.delete.*'] }, 'admin.delete.key_revoke')).toBe(false);
    expect(can({ permissions: ['*'], revoked: ['*'] }, 'common.get.healthz')).toBe(false);
  });

  it('denies everything with no grants', () => {
    expect(can({ permissions: [], revoked: [] }, 'events.get.event_list')).toBe(false);
  });
});

describe('resolveGrants / seesAllEvents / PERMISSION_RE', () => {
  it('merges role and extra permissions without duplicates', () => {
    expect(resolveGrants(['a.b.c', 'x.*'], ['x.*', 'd.e.f'])).toEqual(['a.b.c', 'x.*', 'd.e.f']);
  });

  it('treats only an unrevoked * grant as admin visibility', () => {
    expect(seesAllEvents({ permissions: ['*'], revoked: [] })).toBe(true);
    expect(seesAllEvents({ permissions: ['*'], revoked: ['*'] })).toBe(false);
    expect(seesAllEvents({ permissions: ['events.*'], revoked: [] })).toBe(false);
  });

  it('accepts permission strings and patterns, rejects malformed ones', () => {
    for (const ok of ['*', 'events.*', 'events.post.event_ingest', '*.get.*', 'a-b.c_d.e', '*.*']) expect(PERMISSION_RE.test(ok)).toBe(true);
    for (const bad of ['', '.', 'events.', '.events', 'events..x', 'events.p*', 'a b', 'événements']) expect(PERMISSION_RE.test(bad)).toBe(false);
    // Patterns that could never match a three-segment permission.
    for (const never of ['events', 'events.get', 'a-b.c_d', 'a.b.c.d', 'a.*.b.*']) expect(PERMISSION_RE.test(never)).toBe(false);
    // Capitals in the app or method segment: every checked permission spells those lowercase.
    for (const never of ['EVENTS.GET.EVENT_LIST', 'events.GET.event_list', 'Events.*', 'events.Get.*']) expect(PERMISSION_RE.test(never)).toBe(false);
    // The view may hold capitals: a channel namespace can (`channels.subscribe.Live`).
    expect(PERMISSION_RE.test('channels.subscribe.Live')).toBe(true);
  });
});

describe('holdsAll', () => {
  const ctx = (permissions: string[], revoked: string[] = []) => ({ permissions, revoked });

  it('holds a pattern one grant covers whole', () => {
    expect(holdsAll(ctx(['*']), '*')).toBe(true);
    expect(holdsAll(ctx(['*']), 'admin.put.role_update')).toBe(true);
    expect(holdsAll(ctx(['events.*']), 'events.get.*')).toBe(true);
    expect(holdsAll(ctx(['events.*']), 'events.*')).toBe(true);
    expect(holdsAll(ctx(['events.*.event_detail']), 'events.get.event_detail')).toBe(true);
    expect(holdsAll(ctx(['events.get.*']), 'events.get.event_list')).toBe(true);
  });

  it('does not hold a pattern wider than every grant', () => {
    expect(holdsAll(ctx(['events.*']), '*')).toBe(false);
    expect(holdsAll(ctx(['events.get.*']), 'events.*')).toBe(false);
    expect(holdsAll(ctx(['events.*.event_detail']), 'events.get.*')).toBe(false);
    expect(holdsAll(ctx(['*.get.*']), 'events.*')).toBe(false);
    // Two grants that together name every method known today still leave the others out.
    expect(holdsAll(ctx(['events.get.*', 'events.post.*']), 'events.*')).toBe(false);
    expect(holdsAll(ctx([]), 'common.get.healthz')).toBe(false);
  });

  it('does not hold a pattern any revocation touches', () => {
    expect(holdsAll(ctx(['*'], ['admin.*']), '*')).toBe(false);
    expect(holdsAll(ctx(['*'], ['admin.*']), 'admin.get.role_list')).toBe(false);
    expect(holdsAll(ctx(['*'], ['admin.delete.key_revoke']), 'admin.*')).toBe(false);
    expect(holdsAll(ctx(['*'], ['*.delete.*']), 'admin.*')).toBe(false);
    expect(holdsAll(ctx(['*'], ['admin.*']), 'events.*')).toBe(true);
    expect(holdsAll(ctx(['*'], ['events.post.*']), 'events.get.*')).toBe(true);
  });
});
