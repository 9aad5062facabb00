/** Request logs: one line per request with reqId, principal and event id bound; no key, ever. */
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

  it('binds reqId, principal and event id, and never writes a key', async () => {
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
    expect(ingest).toMatchObject({ reqId: 'req-abc', principal: 'logged', eventId: posted.body.event_id, method: 'POST', msg: 'request completed' });
    const unauthorized = entries.filter((e) => e.status === 401);
    expect(unauthorized).toHaveLength(2);
    // Bindings belong to their own request only.
    expect(unauthorized.every((e) => e.principal === undefined && e.eventId === undefined)).toBe(true);
    const all = lines.join('\n');
    for (const secret of [u.key, api.adminKey, created.body.key, 'tem_not_a_real_key']) expect(all).not.toContain(secret);
  });
});
