/**
 * Bad input never gets a 500: each malformed request is a 4xx problem+json naming the field.
 * Also 413 (payload and body limits), 415, unknown routes, and that an unexpected failure is
 * a 500 INTERNAL that does not leak its message.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiRoutePlugin } from '../../src/ingest/types.js';
import { createTestApi, type TestApi, type TestPrincipal } from '../helpers/api.js';
import { services } from '../helpers/services.js';

const kind = services.postgres ? 'postgres' : 'pglite';
const MAX_PAYLOAD = 2048;
const MAX_BODY = 8192;

const leaky: ApiRoutePlugin = async (app) => {
  app.get('/api/test/explode', { config: { permission: 'events.get.event_list' } }, async () => {
    throw new Error('connection string postgres://secret:hunter2@db');
  });
};

interface Case {
  name: string;
  method?: string;
  path?: string;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  admin?: boolean;
  status: number;
  field: string;
  code?: string;
  /** What the detail must say, where the field alone does not tell the case apart. */
  detail?: RegExp;
}

const ev = { type: 'valid.type', payload: { ok: true } };

const cases: Case[] = [
  { name: 'malformed JSON', raw: '{"type": "x",', status: 400, field: 'body', code: 'BAD_REQUEST' },
  { name: 'payload with a __proto__ key', raw: '{"type":"a.b","payload":{"x":{"__proto__":{"admin":true}}}}', status: 400, field: 'body.payload.x.__proto__', code: 'VALIDATION_FAILED' },
  { name: 'payload with constructor.prototype', raw: '{"type":"a.b","payload":{"constructor":{"prototype":{}}}}', status: 400, field: 'body.payload.constructor.prototype', code: 'VALIDATION_FAILED' },
  { name: 'empty JSON body', raw: '', status: 400, field: 'body' },
  { name: 'empty JSON body for a batch', path: '/api/events/batch', raw: '', status: 400, field: 'body' },
  { name: 'body is an array', body: [ev], status: 400, field: 'body' },
  { name: 'body is a string', body: 'event', status: 400, field: 'body' },
  { name: 'body is null', raw: 'null', status: 400, field: 'body' },
  { name: 'missing type', body: { payload: {} }, status: 400, field: 'body.type' },
  { name: 'type is a number', body: { type: 7, payload: {} }, status: 400, field: 'body.type' },
  { name: 'type with spaces and capitals', body: { type: 'Bad Type', payload: {} }, status: 400, field: 'body.type' },
  { name: 'type too long', body: { type: 'a'.repeat(129), payload: {} }, status: 400, field: 'body.type' },
  { name: 'type starting with a dot', body: { type: '.x', payload: {} }, status: 400, field: 'body.type' },
  { name: 'missing payload', body: { type: 'x' }, status: 400, field: 'body.payload' },
  { name: 'payload is an array', body: { type: 'x', payload: [1] }, status: 400, field: 'body.payload' },
  { name: 'payload is a string', body: { type: 'x', payload: '{}' }, status: 400, field: 'body.payload' },
  { name: 'payload is null', body: { type: 'x', payload: null }, status: 400, field: 'body.payload' },
  { name: 'NUL character in a payload string', body: { type: 'x', payload: { note: 'a\u0000b' } }, status: 400, field: 'body.payload.note' },
  { name: 'unpaired surrogate in a payload string', body: { type: 'x', payload: { list: ['ok', '\ud800'] } }, status: 400, field: 'body.payload.list.1' },
  { name: 'NUL character in a payload key', body: { type: 'x', payload: { inner: { 'k\u0000': 1 } } }, status: 400, field: 'body.payload.inner' },
  { name: 'number beyond double range', raw: '{"type":"x","payload":{"n":1e400}}', status: 400, field: 'body.payload.n' },
  { name: 'payload nested too deeply', raw: `{"type":"x","payload":${'{"a":'.repeat(200)}1${'}'.repeat(200)}}`, status: 400, field: `body.payload${'.a'.repeat(100)}` },
  { name: 'occurred_at in year 0', body: { ...ev, occurred_at: '0000-06-01T00:00:00Z' }, status: 400, field: 'body.occurred_at' },
  { name: 'unknown field', body: { ...ev, priority: 'high' }, status: 400, field: 'body.priority' },
  { name: 'channel without namespace', body: { ...ev, channel: 'lobby' }, status: 400, field: 'body.channel' },
  { name: 'channel pattern', body: { ...ev, channel: 'live:*' }, status: 400, field: 'body.channel' },
  { name: 'channel with bad characters', body: { ...ev, channel: 'live:a b' }, status: 400, field: 'body.channel' },
  { name: 'channel is a number', body: { ...ev, channel: 5 }, status: 400, field: 'body.channel' },
  { name: 'occurred_at not a date', body: { ...ev, occurred_at: 'yesterday' }, status: 400, field: 'body.occurred_at' },
  { name: 'occurred_at without a time zone', body: { ...ev, occurred_at: '2024-01-01T10:00:00' }, status: 400, field: 'body.occurred_at' },
  { name: 'occurred_at impossible date', body: { ...ev, occurred_at: '2024-02-30T10:00:00Z' }, status: 400, field: 'body.occurred_at' },
  { name: 'occurred_at is a number', body: { ...ev, occurred_at: 1700000000 }, status: 400, field: 'body.occurred_at' },
  { name: 'user_id with a colon', body: { ...ev, user_id: 'a:b' }, status: 400, field: 'body.user_id' },
  { name: 'user_id is a number', body: { ...ev, user_id: 42 }, status: 400, field: 'body.user_id' },
  { name: 'empty idempotency_key', body: { ...ev, idempotency_key: '' }, status: 400, field: 'body.idempotency_key' },
  { name: 'idempotency_key is a number', body: { ...ev, idempotency_key: 12 }, status: 400, field: 'body.idempotency_key' },
  { name: 'Idempotency-Key header too long', body: ev, headers: { 'idempotency-key': 'k'.repeat(256) }, status: 400, field: 'headers.idempotency-key' },
  { name: 'prototype pollution', raw: '{"type":"x","payload":{},"__proto__":{"admin":true}}', status: 400, field: 'body.__proto__', code: 'VALIDATION_FAILED' },
  { name: 'event id not a UUID', method: 'GET', path: '/api/events/not-a-uuid', status: 400, field: 'params.id' },
  { name: 'bad percent-encoding in the URL', method: 'GET', path: '/api/events/%E0%A4%A', status: 400, field: 'url' },
  { name: 'retry id not a UUID', method: 'POST', path: '/api/events/123/retry', admin: true, status: 400, field: 'params.id' },
  { name: 'limit not a number', method: 'GET', path: '/api/events?limit=abc', status: 400, field: 'query.limit' },
  { name: 'limit zero', method: 'GET', path: '/api/events?limit=0', status: 400, field: 'query.limit' },
  { name: 'limit over 1000', method: 'GET', path: '/api/events?limit=1001', status: 400, field: 'query.limit' },
  { name: 'limit given twice', method: 'GET', path: '/api/events?limit=1&limit=2', status: 400, field: 'query.limit' },
  { name: 'unknown status', method: 'GET', path: '/api/events?status=done', status: 400, field: 'query.status' },
  { name: 'since not a date', method: 'GET', path: '/api/events?since=last-week', status: 400, field: 'query.since' },
  { name: 'since in year 0', method: 'GET', path: '/api/events?since=0000-01-01T00:00:00Z', status: 400, field: 'query.since' },
  { name: 'since in year 10000 once in UTC', method: 'GET', path: '/api/events?since=9999-12-31T23:59:59-12:00', status: 400, field: 'query.since' },
  { name: 'occurred_at in year 10000 once in UTC', body: { type: 'x', payload: {}, occurred_at: '9999-12-31T23:59:59-12:00' }, status: 400, field: 'body.occurred_at' },
  { name: 'key expiry in year 10000 once in UTC', path: '/api/admin/principals/admin/keys', admin: true, body: { expires_at: '9999-12-31T23:59:59-12:00' }, status: 400, field: 'body.expires_at' },
  { name: 'ids not UUIDs', method: 'GET', path: '/api/events?ids=1,2', status: 400, field: 'query.ids' },
  { name: 'ids with an empty item', method: 'GET', path: `/api/events?ids=${'0'.repeat(8)}-0000-7000-8000-${'0'.repeat(12)},`, status: 400, field: 'query.ids' },
  { name: 'more than 100 ids', method: 'GET', path: `/api/events?ids=${Array.from({ length: 101 }, () => `${'0'.repeat(8)}-0000-7000-8000-${'0'.repeat(12)}`).join(',')}`, status: 400, field: 'query.ids' },
  { name: 'cursor not a UUID', method: 'GET', path: '/api/events?cursor=zzz', status: 400, field: 'query.cursor' },
  { name: 'unknown query parameter', method: 'GET', path: '/api/events?sort=asc', status: 400, field: 'query.sort' },
  { name: 'query parameter on the ingest path', path: '/api/events?idempotency_key=k1', body: ev, status: 400, field: 'query.idempotency_key' },
  { name: 'query parameter on a batch', path: '/api/events/batch?atomic=true', body: { events: [ev] }, status: 400, field: 'query.atomic' },
  { name: 'query parameter on an event detail', method: 'GET', path: '/api/events/0190a000-0000-7000-8000-000000000000?expand=history', status: 400, field: 'query.expand' },
  { name: 'query parameter on key creation', path: '/api/admin/principals/admin/keys?expires_at=2020-01-01T00:00:00Z', admin: true, body: {}, status: 400, field: 'query.expires_at' },
  { name: 'query parameter on a publish', path: '/api/publish?persist=true', admin: true, body: { channel: 'live:1', event: 'm', payload: {} }, status: 400, field: 'query.persist' },
  { name: 'batch events not an array', path: '/api/events/batch', body: { events: 'x' }, status: 400, field: 'body.events' },
  { name: 'batch without events', path: '/api/events/batch', body: {}, status: 400, field: 'body.events' },
  { name: 'batch with no events', path: '/api/events/batch', body: { events: [] }, status: 400, field: 'body.events' },
  { name: 'batch as an empty bare array', path: '/api/events/batch', raw: '[]', status: 400, field: 'body' },
  { name: 'compressed body', body: ev, headers: { 'content-encoding': 'gzip' }, status: 415, field: 'headers.content-encoding' },
  { name: 'retry with a body field', path: '/api/events/0190a000-0000-7000-8000-000000000000/retry', admin: true, body: { force: true }, status: 400, field: 'body.force' },
  { name: 'membership with a body field', method: 'PUT', path: '/api/channels/room:1/members/u_body', admin: true, body: { role: 'owner' }, status: 400, field: 'body.role' },
  { name: 'membership removal with a body field', method: 'DELETE', path: '/api/channels/room:1/members/u_body', admin: true, body: { notify: false }, status: 400, field: 'body.notify' },
  { name: 'membership with an array body', method: 'PUT', path: '/api/channels/room:1/members/u_body', admin: true, body: ['u_body'], status: 400, field: 'body' },
  { name: 'key revocation with a body field', method: 'DELETE', path: '/api/admin/keys/key_none', admin: true, body: { reason: 'leaked' }, status: 400, field: 'body.reason' },
  { name: 'batch with an Idempotency-Key header', path: '/api/events/batch', body: { events: [ev] }, headers: { 'idempotency-key': 'k' }, status: 400, field: 'headers.idempotency-key' },
  { name: 'Idempotency-Key on a publish', path: '/api/publish', admin: true, body: { channel: 'live:1:chat', event: 'note', payload: {} }, headers: { 'idempotency-key': 'k' }, status: 400, field: 'headers.idempotency-key', detail: /only POST \/api\/events/ },
  { name: 'Idempotency-Key on a principal creation', path: '/api/admin/principals', admin: true, body: { kind: 'user' }, headers: { 'idempotency-key': 'k' }, status: 400, field: 'headers.idempotency-key' },
  { name: 'Idempotency-Key on a key creation', path: '/api/admin/principals/admin/keys', admin: true, body: {}, headers: { 'idempotency-key': 'k' }, status: 400, field: 'headers.idempotency-key' },
  { name: 'Idempotency-Key on a retry', path: '/api/events/0190a000-0000-7000-8000-000000000000/retry', admin: true, headers: { 'idempotency-key': 'k' }, status: 400, field: 'headers.idempotency-key' },
  { name: 'Idempotency-Key on a bulk retry', path: '/api/events/retry', admin: true, body: { status: 'failed' }, headers: { 'idempotency-key': 'k' }, status: 400, field: 'headers.idempotency-key' },
  { name: 'bulk retry with an unknown status', path: '/api/events/retry', admin: true, body: { status: 'queued' }, status: 400, field: 'body.status' },
  { name: 'bulk retry ids not UUIDs', path: '/api/events/retry', admin: true, body: { ids: ['x'] }, status: 400, field: 'body.ids.0' },
  { name: 'principal with an unknown kind', path: '/api/admin/principals', admin: true, body: { kind: 'robot', role: 'user' }, status: 400, field: 'body.kind' },
  { name: 'principal with an unknown role', path: '/api/admin/principals', admin: true, body: { kind: 'user', role: 'nobody' }, status: 400, field: 'body.role' },
  { name: 'principal id with a colon', path: '/api/admin/principals', admin: true, body: { id: 'a:b', kind: 'user', role: 'user' }, status: 400, field: 'body.id' },
  { name: 'empty principal patch', method: 'PATCH', path: '/api/admin/principals/admin', admin: true, body: {}, status: 400, field: 'body' },
  { name: 'disabled not a boolean', method: 'PATCH', path: '/api/admin/principals/admin', admin: true, body: { disabled: 'yes' }, status: 400, field: 'body.disabled' },
  { name: 'malformed permission', method: 'PUT', path: '/api/admin/roles/ops', admin: true, body: { permissions: ['events..get'] }, status: 400, field: 'body.permissions.0' },
  { name: 'permission that can match nothing', method: 'PUT', path: '/api/admin/roles/ops', admin: true, body: { permissions: ['events.*', 'events.get'] }, status: 400, field: 'body.permissions.1' },
  { name: 'permission with a capitalised method', method: 'POST', path: '/api/admin/principals', admin: true, body: { kind: 'user', role: 'user', revoked_permissions: ['events.GET.event_list'] }, status: 400, field: 'body.revoked_permissions.0' },
  { name: 'unknown query parameter on the principal list', method: 'GET', path: '/api/admin/principals?sort=id', admin: true, status: 400, field: 'query.sort' },
  { name: 'a query parameter given twice', method: 'GET', path: '/api/events?limit=5&limit=6', admin: true, status: 400, field: 'query.limit', detail: /given more than once/ },
  { name: 'principal list limit of 0', method: 'GET', path: '/api/admin/principals?limit=0', admin: true, status: 400, field: 'query.limit' },
  { name: 'principal list of an unknown kind', method: 'GET', path: '/api/admin/principals?kind=robot', admin: true, status: 400, field: 'query.kind' },
  { name: 'principal list cursor with a colon', method: 'GET', path: '/api/admin/principals?cursor=a:b', admin: true, status: 400, field: 'query.cursor' },
  { name: 'permission of four segments', method: 'POST', path: '/api/admin/principals', admin: true, body: { kind: 'user', role: 'user', extra_permissions: ['a.b.c.d'] }, status: 400, field: 'body.extra_permissions.0' },
  { name: 'role name with capitals', method: 'PUT', path: '/api/admin/roles/Ops', admin: true, body: { permissions: [] }, status: 400, field: 'params.name' },
  { name: 'key expiry not a date', path: '/api/admin/principals/admin/keys', admin: true, body: { expires_at: 'soon' }, status: 400, field: 'body.expires_at' },
];

describe(`payloads too deep to serialize (${kind}, default limits)`, () => {
  // 30,000 levels in about 60 KB: a body big enough for its payload to be measured, and too deep
  // for JSON.stringify (a RangeError, answered 500 before the depth was checked first).
  const deep = `{"a":${'['.repeat(30_000)}${']'.repeat(30_000)}}`;
  let api: TestApi;
  let svc: TestPrincipal;

  beforeAll(async () => {
    api = await createTestApi({ kind, listen: true });
    svc = await api.createPrincipal({ kind: 'service' });
  });
  afterAll(async () => {
    await api?.close();
  });

  const post = (path: string, raw: string) => api.request<Record<string, unknown>>('POST', path, { key: svc.key, payload: raw, headers: { 'content-type': 'application/json' } });

  it('POST /api/events answers 400 naming where the payload is too deep', async () => {
    const res = await post('/api/events', `{"type":"x","payload":${deep}}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', field: expect.stringMatching(/^body\.payload\.a(\.0)+$/) });
  });

  it('a batch item too deep is that item’s 400, not a 500', async () => {
    const res = await post('/api/events/batch', `{"events":[{"type":"x","payload":${deep}},{"type":"x","payload":{}}]}`);
    expect(res.status).toBeLessThan(500);
    const results = res.body.results as { status: number; error?: { field?: string } }[];
    expect(results.map((r) => r.status)).toEqual([400, 202]);
    expect(results[0]!.error?.field).toMatch(/^body\.events\.0\.payload\.a/);
  });

  it('POST /api/publish answers 400 too', async () => {
    const res = await post('/api/publish', `{"channel":"live:1:chat","event":"m","payload":${deep}}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});

describe(`malformed input (${kind})`, () => {
  let api: TestApi;
  let user: TestPrincipal;

  beforeAll(async () => {
    api = await createTestApi({ kind, config: { maxPayloadBytes: MAX_PAYLOAD, maxBodyBytes: MAX_BODY }, extraRoutes: [leaky], listen: true });
    user = await api.createPrincipal({ kind: 'user' });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('has a table of at least 20 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)('$name → $status naming $field', async (c) => {
    const headers: Record<string, string> = { ...c.headers };
    if (c.raw !== undefined) headers['content-type'] = 'application/json';
    const res = await api.request(c.method ?? 'POST', c.path ?? '/api/events', {
      key: c.admin ? api.adminKey : user.key,
      body: c.body,
      payload: c.raw,
      headers,
    });
    expect(res.status).toBe(c.status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: c.status, field: c.field, title: expect.any(String), detail: expect.any(String), type: expect.stringMatching(/^https:\/\//) });
    if (c.code) expect(res.body.code).toBe(c.code);
    if (c.detail) expect(res.body.detail).toMatch(c.detail);
  });

  it('answers 413 naming body.payload when the payload is over the limit', async () => {
    const res = await api.request('POST', '/api/events', { key: user.key, body: { type: 'big', payload: { s: 'x'.repeat(MAX_PAYLOAD) } } });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: 'TOO_LARGE', field: 'body.payload' });
    // Just under the limit is fine.
    const fits = await api.request('POST', '/api/events', { key: user.key, body: { type: 'big', payload: { s: 'x'.repeat(MAX_PAYLOAD - 20) } } });
    expect(fits.status).toBe(202);
  });

  it('answers 405 with Allow for a method a path does not take, and 404 for a path with no route', async () => {
    const wrong = await api.request('DELETE', '/api/events', { key: user.key });
    expect(wrong.status).toBe(405);
    expect(wrong.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(wrong.headers.allow).toBe('GET, HEAD, POST');
    expect(wrong.body).toMatchObject({ code: 'METHOD_NOT_ALLOWED', status: 405 });
    // A route with a parameter, and the trailing slash the router ignores.
    const param = await api.request('PUT', '/api/events/0190f0e6-0000-7000-8000-000000000000/', { key: user.key });
    expect(param.status).toBe(405);
    expect(param.headers.allow).toBe('GET, HEAD');
    const retry = await api.request('GET', '/api/events/0190f0e6-0000-7000-8000-000000000000/retry', { key: user.key });
    expect(retry.headers.allow).toBe('POST');
    // A parameterless path is its own route, though `/api/events/:id` matches it too: `batch`
    // and `retry` take POST only, and GET is a wrong method, not a bad event id.
    for (const path of ['/api/events/batch', '/api/events/retry']) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const shadowed = await api.request(method, path, { key: user.key });
        expect(shadowed.status, `${method} ${path}`).toBe(405);
        expect(shadowed.headers.allow, `${method} ${path}`).toBe('POST');
        expect(shadowed.body).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
      }
    }
    for (const path of ['/nope', '/api/admin', '/api/nothing-here']) {
      const none = await api.request('GET', path, { key: user.key });
      expect(none.status).toBe(404);
      expect(none.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(none.headers.allow).toBeUndefined();
      expect(none.body).toMatchObject({ code: 'NOT_FOUND' });
    }
  });

  it('measures the payload as stored: numbers that grow when written out count at their stored size', async () => {
    // `1e20` is 4 bytes sent and 21 stored: a body under the limit with a payload far over it.
    const numbers = Array.from({ length: 300 }, () => '1e20').join(',');
    const event = `{"type":"big.num","payload":{"a":[${numbers}]}}`;
    expect(event.length).toBeLessThan(MAX_PAYLOAD);
    const json = { 'content-type': 'application/json' };
    const one = await api.request('POST', '/api/events', { key: user.key, payload: event, headers: json });
    expect(one.status).toBe(413);
    expect(one.body).toMatchObject({ code: 'TOO_LARGE', field: 'body.payload' });
    const batch = await api.request<{ results: { status: number; error: { detail: string } }[] }>('POST', '/api/events/batch', { key: user.key, payload: `[${event}]`, headers: json });
    expect(batch.body.results[0]).toMatchObject({ status: 413, error: { detail: expect.stringMatching(/^body\.0\.payload is \d+ bytes/) } });
  });

  it('measures the payload in bytes, not characters', async () => {
    const res = await api.request('POST', '/api/events', { key: user.key, body: { type: 'big', payload: { s: 'é'.repeat(MAX_PAYLOAD / 2) } } });
    expect(res.status).toBe(413);
  });

  it('answers 413 naming body when the body is over the limit', async () => {
    const res = await api.request('POST', '/api/events', { key: user.key, body: { type: 'big', payload: { s: 'x'.repeat(MAX_BODY) } } });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: 'TOO_LARGE', field: 'body' });
  });

  it('gives a batch its own, larger body limit and a 413 per oversized item', async () => {
    const big = { type: 'big', payload: { s: 'x'.repeat(MAX_PAYLOAD) } };
    const small = { type: 'small', payload: { s: 'x'.repeat(MAX_PAYLOAD / 2) } };
    const events = [small, big, ...Array.from({ length: 8 }, () => small)];
    // Over the per-request body limit, within the batch limit.
    expect(JSON.stringify({ events }).length).toBeGreaterThan(MAX_BODY);
    const res = await api.request<{ results: { status: number; error?: { field: string } }[] }>('POST', '/api/events/batch', {
      key: user.key,
      body: { events },
    });
    expect(res.status).toBe(202);
    expect(res.body.results.map((r) => r.status)).toEqual([202, 413, 202, 202, 202, 202, 202, 202, 202, 202]);
    expect(res.body.results[1]!.error!.field).toBe('body.events.1.payload');
  });

  it('takes an empty body labelled JSON as no body where none is needed', async () => {
    const json = { 'content-type': 'application/json' };
    const principal = await api.createPrincipal({ kind: 'user' });
    const created = await api.request('POST', `/api/admin/principals/${principal.id}/keys`, { key: api.adminKey, payload: '', headers: json });
    expect(created.status).toBe(201);
    const revoked = await api.request('DELETE', `/api/admin/keys/${created.body.key_id as string}`, { key: api.adminKey, payload: '', headers: json });
    expect(revoked.status).toBeLessThan(300);
    const member = await api.request('PUT', `/api/channels/room:1/members/${principal.id}`, { key: api.adminKey, payload: '', headers: json });
    expect(member.status).toBe(204);
    // `{}`, as some clients send on every request, is no body either.
    expect((await api.request('PUT', `/api/channels/room:1/members/${principal.id}`, { key: api.adminKey, body: {} })).status).toBe(204);
    expect((await api.request('DELETE', `/api/channels/room:1/members/${principal.id}`, { key: api.adminKey, body: {} })).status).toBe(204);
    const event = await api.request('POST', '/api/events', { key: user.key, body: ev });
    const retry = await api.request('POST', `/api/events/${event.body.event_id as string}/retry`, { key: api.adminKey, payload: '', headers: json });
    // Not failed: the state is what is wrong, not the (absent) body.
    expect(retry.status).toBe(409);
    expect(retry.body).toMatchObject({ status: 409, code: 'INVALID_STATE', event_status: expect.any(String) });
  });

  it('takes empty query parameters as none, and optional fields sent as null as not sent', async () => {
    const all = await api.request<{ data: unknown[] }>('GET', '/api/events?status=&type=&user_id=&since=&limit=&cursor=', { key: user.key });
    expect(all.status).toBe(200);
    expect(Array.isArray(all.body.data)).toBe(true);
    // Also on a route that takes no query at all; a parameter with a value there is refused (the table above).
    expect((await api.request('POST', '/api/events?idempotency_key=', { key: user.key, body: ev })).status).toBe(202);
    // Public routes take whatever probes and scrapers add.
    expect((await api.request('GET', '/healthz?probe=1')).status).toBe(200);
    expect((await api.request('GET', '/api/v1/health?probe=1')).status).toBe(200);
    expect((await api.request('GET', '/metrics?name[]=tem_info')).status).toBe(200);
    const res = await api.request('POST', '/api/events', {
      key: user.key,
      body: { type: 'nulls.ok', payload: {}, channel: null, user_id: null, occurred_at: null, idempotency_key: null },
    });
    expect(res.status).toBe(202);
    // null is no value for a required field, nor for the payload.
    expect(await api.request('POST', '/api/events', { key: user.key, body: { type: 'nulls.ok', payload: null } })).toMatchObject({ status: 400, body: { field: 'body.payload' } });
  });

  it('lists the allowed values when a field takes one of a few, and describes patterns', async () => {
    const res = await api.request<{ detail: string }>('GET', '/api/events?status=done', { key: user.key });
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe('query.status must be one of "accepted", "queued", "processing", "processed", "failed"');
    // And says in words what a pattern wants, not its regular expression.
    const type = await api.request<{ detail: string }>('POST', '/api/events', { key: user.key, body: { type: 'Bad Type', payload: {} } });
    expect(type.status).toBe(400);
    expect(type.body.detail).toMatch(/^body\.type must be an event type: 1–128 of a-z/);
    // Ids, id lists, page sizes, key ids and publication event names too.
    const described: [string, string, unknown, RegExp][] = [
      ['GET', '/api/events/not-a-uuid', undefined, /^params\.id must be a UUID: 32 hex digits as 8-4-4-4-12/],
      ['GET', '/api/events?cursor=nope', undefined, /^query\.cursor must be a UUID/],
      ['GET', '/api/events?ids=nope', undefined, /^query\.ids must be 1 to 100 event ids \(UUIDs\), comma-separated$/],
      ['GET', '/api/events?limit=ten', undefined, /^query\.limit must be a whole number$/],
      ['POST', '/api/publish', { channel: 'live:1', event: 'two words', payload: {} }, /^body\.event must be an event name: 1–128 of A-Z/],
    ];
    for (const [method, path, body, detail] of described) {
      const res = await api.request<{ detail: string }>(method, path, { key: api.adminKey, ...(body === undefined ? {} : { body }) });
      expect(res.status, path).toBe(400);
      expect(res.body.detail, path).toMatch(detail);
    }
    const key = await api.request<{ detail: string }>('DELETE', '/api/admin/keys/a%20b', { key: api.adminKey });
    expect(key.status).toBe(400);
    expect(key.body.detail).toMatch(/^params\.key_id must be a key id: 1–128 of A-Z/);
    const page = await api.request<{ detail: string }>('GET', '/api/admin/principals?limit=ten', { key: api.adminKey });
    expect(page.body.detail).toBe('query.limit must be a whole number');
  });

  it('takes a bare array as a batch', async () => {
    const res = await api.request<{ results: { status: number; event_id?: string; error?: { field?: string } }[] }>('POST', '/api/events/batch', { key: user.key, body: [ev, { type: 'Bad Type', payload: {} }] });
    expect(res.status).toBe(202);
    expect(res.body.results.map((r) => r.status)).toEqual([202, 400]);
    expect(res.body.results[0]!.event_id).toEqual(expect.any(String));
    // Fields are named as the caller wrote them: there is no `events` in a bare array.
    expect(res.body.results[1]!.error?.field).toBe('body.1.type');
  });

  it('answers 415 for a body that is not JSON', async () => {
    for (const type of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
      const res = await api.request('POST', '/api/events', { key: user.key, payload: 'type=x', headers: { 'content-type': type } });
      expect(res.status).toBe(415);
      expect(res.body).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', field: 'headers.content-type' });
    }
    for (const type of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8']) {
      const utf8 = await api.request('POST', '/api/events', { key: user.key, payload: JSON.stringify(ev), headers: { 'content-type': type } });
      expect(utf8.status, type).toBe(202);
    }
    // JSON is UTF-8: a body declared in another charset would be read as something else.
    for (const type of ['application/json; charset=utf-16', 'application/json; charset=latin1']) {
      const other = await api.request('POST', '/api/events', { key: user.key, payload: JSON.stringify(ev), headers: { 'content-type': type } });
      expect(other.status, type).toBe(415);
      expect(other.body).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', field: 'headers.content-type' });
    }
  });

  it('answers what the HTTP parser refuses (bad header, headers too large) as problem+json too', async () => {
    const port = Number(new URL(api.url!).port);
    const cases: [string, number, string][] = [
      [`GET /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`, 400, 'BAD_REQUEST'],
      [`GET /api/events HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
      // HTTP/1.1 requires Host; HTTP/1.0 does not (it reaches the route: no key, 401).
      [`GET /api/events HTTP/1.1\r\n\r\n`, 400, 'BAD_REQUEST'],
      [`GET /api/events HTTP/1.0\r\n\r\n`, 401, 'UNAUTHORIZED'],
    ];
    for (const [request, status, code] of cases) {
      const answer = await rawHttp(port, request);
      const [head, body] = answer.split('\r\n\r\n', 2);
      expect(head).toMatch(new RegExp(`^HTTP/1.[01] ${status} `));
      expect(head!.toLowerCase()).toContain('content-type: application/problem+json');
      expect(JSON.parse(body!)).toMatchObject({ status, code });
      if (!request.includes('Host:') && status === 400) expect(JSON.parse(body!)).toMatchObject({ field: 'headers.host' });
    }
    // The server is still there.
    expect((await api.request('GET', '/api/events', { key: user.key })).status).toBe(200);
  });

  it('turns an unexpected failure into a 500 INTERNAL without its message', async () => {
    const res = await api.request('GET', '/api/test/explode', { key: user.key });
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ code: 'INTERNAL', status: 500 });
    expect(res.raw.body).not.toMatch(/hunter2|postgres:|stack|at /);
  });
});

/** Sends bytes as they are and reads until the server closes the connection. */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}
