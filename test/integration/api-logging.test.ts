/** Request logs: one line per request with request_id, principal and event id bound; no key, ever. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../helpers/api.js';
import { services } from '../helpers/services.js';

const kind = services.postgres ? 'postgres' : 'pglite';

describe(`request logging (${kind})`, () => {
  let api: TestApi;
  const lines: string[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    api = await createTestApi({ kind, logger: pino({ level: 'debug' }, sink) });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('binds request_id, principal and event id, and never writes a key', async () => {
    const u = await api.createPrincipal({ id: 'logged', kind: 'user' });
    lines.length = 0;
    const posted = await api.request<{ event_id: string }>('POST', '/api/events', { key: u.key, body: { type: 'log.test', payload: {} }, headers: { 'x-request-id': 'req-abc' } });
    expect(posted.status).toBe(202);
    expect(posted.headers['x-request-id']).toBe('req-abc');
    const odd = await api.request('GET', '/healthz', { headers: { 'x-request-id': 'bad id\twith spaces' } });
    expect(odd.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    await api.request('GET', '/api/events', { headers: { authorization: `Bearer ${u.key}x` } });
    await api.request('GET', '/api/events', { key: 'tem_not_a_real_key' });
    const created = await api.request<{ key: string }>('POST', `/api/admin/principals/${u.id}/keys`, { key: api.adminKey });

    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const ingest = entries.find((e) => e.route === '/api/events' && e.status === 202);
    expect(ingest).toMatchObject({ request_id: 'req-abc', principal: 'logged', event_id: posted.body.event_id, method: 'POST', msg: 'request completed' });
    // The transition itself is logged at info, the default level, with the same bindings.
    const accepted = entries.filter((e) => e.msg === 'event accepted');
    expect(accepted).toHaveLength(1);
    expect(accepted[0]).toMatchObject({ level: 30, request_id: 'req-abc', principal: 'logged', event_id: posted.body.event_id, type: 'log.test', user_id: 'logged', status: 'queued' });
    const unauthorized = entries.filter((e) => e.status === 401);
    expect(unauthorized).toHaveLength(2);
    // Bindings belong to their own request only.
    expect(unauthorized.every((e) => e.principal === undefined && e.event_id === undefined)).toBe(true);
    const all = lines.join('\n');
    for (const secret of [u.key, api.adminKey, created.body.key, 'tem_not_a_real_key']) expect(all).not.toContain(secret);
  });

  it('logs each event a batch accepts and each event a retry requeues, once, at info', async () => {
    const u = await api.createPrincipal({ id: 'batcher', kind: 'service' });
    lines.length = 0;
    const batch = await api.request<{ results: { event_id?: string }[] }>('POST', '/api/events/batch', {
      key: u.key,
      body: { events: [{ type: 'log.batch', payload: {} }, { type: 'BAD TYPE', payload: {} }, { type: 'log.batch', payload: {} }] },
    });
    expect(batch.status).toBe(202);
    const ids = batch.body.results.map((r) => r.event_id).filter(Boolean);
    expect(ids).toHaveLength(2);
    const entries = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries().filter((e) => e.msg === 'event accepted').map((e) => [e.level, e.event_id, e.principal])).toEqual(ids.map((id) => [30, id, 'batcher']));

    // Both fail, as a worker giving up would; one is retried alone, the other in bulk.
    const now = new Date();
    for (const job of await api.store.claim({ queue: 'processing', workerId: 'test', limit: 100, leaseMs: 60_000, now })) {
      await api.store.fail({ eventId: job.event.id, leaseToken: job.leaseToken }, { error: 'gave up', retryAt: null }, now);
    }
    lines.length = 0;
    expect((await api.request('POST', `/api/events/${ids[0]}/retry`, { key: u.key })).status).toBe(200);
    expect((await api.request('POST', '/api/events/retry', { key: u.key, body: { type: 'log.batch' } })).status).toBe(200);
    const retried = entries().filter((e) => e.msg === 'event retried');
    expect(retried.map((e) => [e.level, e.event_id, e.status, e.principal])).toEqual([
      [30, ids[0], 'queued', 'batcher'],
      [30, ids[1], 'queued', 'batcher'],
    ]);
  });
});
