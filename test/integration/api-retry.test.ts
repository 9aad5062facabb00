/** Retrying failed events through the HTTP API: one at a time and in bulk, with visibility. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi, type TestPrincipal } from '../helpers/api.js';
import { services } from '../helpers/services.js';
import { uuidv7 } from '../../src/core/ids.js';

const kind = services.postgres ? 'postgres' : 'pglite';

describe(`event retry API (${kind})`, () => {
  let api: TestApi;
  let svc: TestPrincipal;
  let other: TestPrincipal;
  let user: TestPrincipal;

  beforeAll(async () => {
    api = await createTestApi({ kind, config: { retry: { 'retry.budget.*': { maxAttempts: 2 } } } });
    svc = await api.createPrincipal({ id: 'retrier', kind: 'service' });
    other = await api.createPrincipal({ id: 'bystander', kind: 'service' });
    user = await api.createPrincipal({ id: 'enduser', kind: 'user' });
  });
  afterAll(async () => {
    await api?.close();
  });

  /** Ingests events and drives every queued job to `failed`, as a worker giving up would. */
  async function failedEvents(key: string, type: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await api.request<{ event_id: string }>('POST', '/api/events', { key, body: { type, payload: { i } } });
      ids.push(res.body.event_id);
    }
    const now = new Date();
    const jobs = await api.store.claim({ queue: 'processing', workerId: 'test', limit: 100, leaseMs: 60_000, now });
    for (const job of jobs) {
      await api.store.fail({ eventId: job.event.id, leaseToken: job.leaseToken }, { error: 'gave up', retryAt: null }, now);
    }
    return ids;
  }

  it('gives a retried event the attempt budget its type has now, not the one it was accepted with', async () => {
    // First in this file: the only queued job is this one.
    // Accepted while the budget was 6 (by another API process's config, or before a change).
    const id = uuidv7();
    const now = new Date();
    await api.store.ingest([{ id, type: 'retry.budget.x', payload: {}, producerId: 'retrier', userId: 'retrier', channel: null, idempotencyKey: null, requestHash: null, occurredAt: now, maxAttempts: 6 }], now);
    const [job] = await api.store.claim({ queue: 'processing', workerId: 'test', limit: 1, leaseMs: 60_000, now });
    await api.store.fail({ eventId: id, leaseToken: job!.leaseToken }, { error: 'gave up', retryAt: null }, now);
    const one = await api.request('POST', `/api/events/${id}/retry`, { key: svc.key });
    expect(one.body).toMatchObject({ status: 'queued', max_attempts: 2 });
  });

  it('requeues a failed event and refuses one that is not failed with 409', async () => {
    const [id] = await failedEvents(svc.key, 'retry.one', 1);
    const failed = await api.request('GET', `/api/events/${id}`, { key: svc.key });
    expect(failed.body).toMatchObject({ status: 'failed', last_error: 'gave up' });

    const res = await api.request('POST', `/api/events/${id}/retry`, { key: svc.key });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, status: 'queued' });
    expect((res.body.history as { status: string }[]).map((h) => h.status)).toEqual(['accepted', 'queued', 'processing', 'failed', 'queued']);

    const again = await api.request('POST', `/api/events/${id}/retry`, { key: svc.key });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'INVALID_STATE', status: 409, event_status: 'queued' });
  });

  it('answers concurrent retries of one event with one 200 and 409s that all name its status', async () => {
    const [id] = await failedEvents(svc.key, 'retry.race', 1);
    const answers = await Promise.all(Array.from({ length: 10 }, () => api.request('POST', `/api/events/${id}/retry`, { key: svc.key })));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    for (const a of answers.filter((x) => x.status !== 200)) {
      expect(a.status).toBe(409);
      expect(a.body).toMatchObject({ code: 'INVALID_STATE', event_status: 'queued' });
    }
  });

  it('answers 404 for events the caller cannot see and 403 without the permission', async () => {
    const [id] = await failedEvents(svc.key, 'retry.hidden', 1);
    expect((await api.request('POST', `/api/events/${id}/retry`, { key: other.key })).status).toBe(404);
    expect((await api.request('POST', '/api/events/00000000-0000-7000-8000-000000000000/retry', { key: svc.key })).status).toBe(404);
    expect((await api.request('POST', `/api/events/${id}/retry`, { key: user.key })).status).toBe(403);
    expect((await api.request('POST', `/api/events/${id}/retry`, { key: api.adminKey })).status).toBe(200);
  });

  it('retries in bulk by filter, only what the caller can see', async () => {
    const mine = await failedEvents(svc.key, 'retry.bulk', 3);
    const theirs = await failedEvents(other.key, 'retry.bulk', 2);

    const res = await api.request<{ retried: string[]; count: number }>('POST', '/api/events/retry', { key: svc.key, body: { status: 'failed', type: 'retry.bulk' } });
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(3);
    expect(res.body.retried.sort()).toEqual(mine.slice().sort());

    const byIds = await api.request<{ retried: string[]; count: number }>('POST', '/api/events/retry', { key: api.adminKey, body: { ids: [theirs[0], mine[0]] } });
    expect(byIds.body).toEqual({ retried: [theirs[0]], count: 1, has_more: false, next_cursor: null });

    const rest = await api.request<{ retried: string[] }>('POST', '/api/events/retry', { key: api.adminKey, body: { type: 'retry.bulk', since: new Date(Date.now() - 60_000).toISOString() } });
    expect(rest.body.retried).toEqual([theirs[1]]);
    const none = await api.request<{ count: number }>('POST', '/api/events/retry', { key: api.adminKey, body: { type: 'retry.bulk' } });
    expect(none.body.count).toBe(0);
    // No body is no filter: every failed event the caller can see.
    const more = await failedEvents(svc.key, 'retry.nobody', 2);
    const all = await api.request<{ retried: string[] }>('POST', '/api/events/retry', { key: svc.key });
    expect(all.status).toBe(200);
    expect(all.body.retried).toEqual(expect.arrayContaining(more));
  });

  it('retries in bulk a page at a time, oldest first, each page after the cursor of the one before', async () => {
    const ids = await failedEvents(svc.key, 'retry.paged', 5);
    type Page = { retried: string[]; count: number; has_more: boolean; next_cursor: string | null };
    const page = (cursor?: string) => api.request<Page>('POST', '/api/events/retry', { key: svc.key, body: { type: 'retry.paged', limit: 2, ...(cursor ? { cursor } : {}) } });
    const first = await page();
    expect(first.body).toEqual({ retried: ids.slice(0, 2), count: 2, has_more: true, next_cursor: ids[1] });
    const second = await page(first.body.next_cursor!);
    expect(second.body).toEqual({ retried: ids.slice(2, 4), count: 2, has_more: true, next_cursor: ids[3] });
    const last = await page(second.body.next_cursor!);
    expect(last.body).toEqual({ retried: ids.slice(4), count: 1, has_more: false, next_cursor: null });
    // A full page that is the last one says there is no more.
    const exact = await failedEvents(svc.key, 'retry.exact', 2);
    const only = await api.request<Page>('POST', '/api/events/retry', { key: svc.key, body: { type: 'retry.exact', limit: 2 } });
    expect(only.body).toEqual({ retried: exact, count: 2, has_more: false, next_cursor: null });
    for (const [body, field] of [[{ limit: 0 }, 'body.limit'], [{ limit: 10_001 }, 'body.limit'], [{ limit: 1.5 }, 'body.limit'], [{ cursor: 'x' }, 'body.cursor']] as const) {
      const res = await api.request('POST', '/api/events/retry', { key: svc.key, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body).toMatchObject({ field });
    }
  });
});
