/**
 * Events through the HTTP API on both stores: ingest, detail with history, visibility,
 * on-behalf rules, listing with filters and cursors, idempotency (replay, conflict, concurrent
 * duplicates) and the batch endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi, type TestPrincipal } from '../helpers/api.js';
import { services } from '../helpers/services.js';

const kinds = services.postgres ? (['pglite', 'postgres'] as const) : (['pglite'] as const);

interface Accepted {
  event_id: string;
  status: string;
  created_at: string;
}

describe.each(kinds)('events API (%s)', (kind) => {
  let api: TestApi;
  let alice: TestPrincipal;
  let bob: TestPrincipal;
  let payments: TestPrincipal;
  let shipping: TestPrincipal;

  beforeAll(async () => {
    api = await createTestApi({ kind, config: { retry: { 'payment.*': { maxAttempts: 9 } } } });
    alice = await api.createPrincipal({ id: 'alice', kind: 'user' });
    bob = await api.createPrincipal({ id: 'bob', kind: 'user' });
    payments = await api.createPrincipal({ id: 'payments', kind: 'service' });
    shipping = await api.createPrincipal({ id: 'shipping', kind: 'service' });
  });
  afterAll(async () => {
    await api?.close();
  });

  const post = (key: string, body: unknown, headers?: Record<string, string>) => api.request<Accepted & Record<string, unknown>>('POST', '/api/events', { key, body, headers });

  it('delivers to a shared channel the producer is on (or may publish to), to user channels only of the owner', async () => {
    const ev = { type: 'note.sent', payload: {} };
    // A user may not put messages into a channel she is not on…
    expect(await post(alice.key, { ...ev, channel: 'live:1:chat' })).toMatchObject({ status: 403, body: { code: 'FORBIDDEN', field: 'body.channel' } });
    // …and may once she is a member, with events.post.event_ingest alone.
    await api.store.addChannelMember('live:1:chat', 'alice');
    expect((await post(alice.key, { ...ev, channel: 'live:1:chat' })).status).toBe(202);
    expect((await post(alice.key, { ...ev, channel: 'user:alice' })).status).toBe(202);
    expect((await post(alice.key, { ...ev, channel: 'user:alice:inbox' })).status).toBe(202);
    // Nobody may put messages into another user's private channel.
    expect(await post(alice.key, { ...ev, channel: 'user:bob' })).toMatchObject({ status: 403, body: { field: 'body.channel' } });
    expect(await post(alice.key, { ...ev, channel: 'user:bob:inbox' })).toMatchObject({ status: 403, body: { field: 'body.channel' } });
    // Nor deliver an event that would pass for the gateway's own notices.
    for (const type of ['typing', 'presence.join', 'event.update']) {
      expect(await post(alice.key, { type, payload: {}, channel: 'live:1:chat' })).toMatchObject({ status: 400, body: { field: 'body.type' } });
    }
    // A service (channels.*) may deliver to any shared channel, and to the owner's channel of an
    // event it produces on behalf of that user — but not to anyone else's.
    expect((await post(payments.key, { ...ev, channel: 'live:2:chat' })).status).toBe(202);
    expect((await post(payments.key, { ...ev, user_id: 'alice', channel: 'user:alice' })).status).toBe(202);
    expect(await post(payments.key, { ...ev, user_id: 'alice', channel: 'user:bob' })).toMatchObject({ status: 403, body: { field: 'body.channel' } });
    // A batch item is checked the same way, on its own.
    const batch = await api.request<{ results: { status: number }[] }>('POST', '/api/events/batch', { key: alice.key, body: { events: [{ ...ev, channel: 'live:1:chat' }, { ...ev, channel: 'live:9:chat' }] } });
    expect(batch.body.results.map((r) => r.status)).toEqual([202, 403]);
  });

  it('accepts an event with 202, a Location, and shows it with its history', async () => {
    const res = await post(alice.key, { type: 'payment.success', payload: { amount: 42, nested: { ok: true } }, channel: 'user:alice:payments', occurred_at: '2024-05-01T10:00:00+02:00' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ event_id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'accepted', created_at: expect.any(String) });
    expect(res.headers.location).toBe(`/api/events/${res.body.event_id}`);

    const got = await api.request('GET', res.headers.location as string, { key: alice.key });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      id: res.body.event_id,
      type: 'payment.success',
      payload: { amount: 42, nested: { ok: true } },
      producer_id: 'alice',
      user_id: 'alice',
      channel: 'user:alice:payments',
      idempotency_key: null,
      occurred_at: '2024-05-01T08:00:00.000Z',
      status: 'queued',
      attempts: 0,
      max_attempts: 9, // the retry policy of payment.*
      last_error: null,
      created_at: res.body.created_at,
      processed_at: null,
    });
    expect((got.body.history as { status: string }[]).map((h) => h.status)).toEqual(['accepted', 'queued']);
    expect(got.body.history).toEqual([
      { status: 'accepted', attempt: 0, error: null, at: expect.any(String), version: 1 },
      { status: 'queued', attempt: 0, error: null, at: expect.any(String), version: 2 },
    ]);
  });

  it('defaults occurred_at to now and the owner to the caller', async () => {
    const before = Date.now();
    const res = await post(bob.key, { type: 'x', payload: {} });
    const got = await api.request('GET', `/api/events/${res.body.event_id}`, { key: bob.key });
    expect(got.body.user_id).toBe('bob');
    expect(got.body.max_attempts).toBe(api.config.retryMaxAttempts);
    expect(Date.parse(got.body.occurred_at as string)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('lets only principals with events.post.event_ingest_on_behalf set another owner', async () => {
    const denied = await post(alice.key, { type: 'x', payload: {}, user_id: 'bob' });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ code: 'FORBIDDEN', field: 'body.user_id' });
    expect((await post(alice.key, { type: 'x', payload: {}, user_id: 'alice' })).status).toBe(202);

    const onBehalf = await post(payments.key, { type: 'payment.success', payload: {}, user_id: 'bob' });
    expect(onBehalf.status).toBe(202);
    const asOwner = await api.request('GET', `/api/events/${onBehalf.body.event_id}`, { key: bob.key });
    expect(asOwner.body).toMatchObject({ producer_id: 'payments', user_id: 'bob' });
  });

  it('answers 404 for events the caller may not see, as if they did not exist', async () => {
    const byService = (await post(payments.key, { type: 'order.paid', payload: {}, user_id: 'alice' })).body.event_id;
    const byAlice = (await post(alice.key, { type: 'note', payload: {} })).body.event_id;
    const see = async (key: string, id: string) => (await api.request('GET', `/api/events/${id}`, { key })).status;
    expect(await see(alice.key, byService)).toBe(200); // owner
    expect(await see(payments.key, byService)).toBe(200); // producer
    expect(await see(bob.key, byService)).toBe(404);
    expect(await see(shipping.key, byService)).toBe(404);
    expect(await see(payments.key, byAlice)).toBe(404); // a service sees what it produced only
    expect(await see(api.adminKey, byAlice)).toBe(200);
    const missing = await api.request('GET', '/api/events/00000000-0000-7000-8000-000000000000', { key: api.adminKey });
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('NOT_FOUND');
  });

  it('lists visible events newest first, with filters and cursor paging', async () => {
    const carol = await api.createPrincipal({ id: 'carol', kind: 'user' });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post(carol.key, { type: i % 2 ? 'odd.one' : 'even.one', payload: { i } })).body.event_id);
    const fromService = (await post(shipping.key, { type: 'even.one', payload: {}, user_id: 'carol' })).body.event_id;

    const all = await api.request<{ data: { id: string }[]; next_cursor: string | null }>('GET', '/api/events', { key: carol.key });
    expect(all.body.data.map((e) => e.id)).toEqual([fromService, ...ids.slice().reverse()]);
    expect(all.body.next_cursor).toBeNull();

    const page1 = await api.request<{ data: { id: string }[]; next_cursor: string }>('GET', '/api/events?limit=4', { key: carol.key });
    expect(page1.body.data).toHaveLength(4);
    const page2 = await api.request<{ data: { id: string }[]; next_cursor: string | null }>('GET', `/api/events?limit=4&cursor=${page1.body.next_cursor}`, { key: carol.key });
    expect([...page1.body.data, ...page2.body.data].map((e) => e.id)).toEqual(all.body.data.map((e) => e.id));
    expect(page2.body.next_cursor).toBeNull();

    const odd = await api.request<{ data: { type: string }[] }>('GET', '/api/events?type=odd.one', { key: carol.key });
    expect(odd.body.data.map((e) => e.type)).toEqual(['odd.one', 'odd.one']);
    const queued = await api.request<{ data: unknown[] }>('GET', '/api/events?status=queued&type=even.one', { key: carol.key });
    expect(queued.body.data).toHaveLength(4);
    expect((await api.request<{ data: unknown[] }>('GET', '/api/events?status=failed', { key: carol.key })).body.data).toHaveLength(0);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await api.request<{ data: unknown[] }>('GET', `/api/events?since=${encodeURIComponent(future)}`, { key: carol.key })).body.data).toHaveLength(0);

    // The service sees only what it produced; the admin filters by owner.
    const svc = await api.request<{ data: { id: string }[] }>('GET', '/api/events?user_id=carol', { key: shipping.key });
    expect(svc.body.data.map((e) => e.id)).toEqual([fromService]);
    const admin = await api.request<{ data: unknown[] }>('GET', '/api/events?user_id=carol&limit=1000', { key: api.adminKey });
    expect(admin.body.data).toHaveLength(6);
    // Another user's filter does not widen what bob sees.
    expect((await api.request<{ data: unknown[] }>('GET', '/api/events?user_id=carol', { key: bob.key })).body.data).toHaveLength(0);

    // `ids` picks events by id (how a view reads again the rows it shows), within what the caller may see.
    const picked = await api.request<{ data: { id: string }[] }>('GET', `/api/events?ids=${ids[1]},${fromService.toUpperCase()},${ids[3]}`, { key: carol.key });
    expect(picked.body.data.map((e) => e.id)).toEqual([fromService, ids[3], ids[1]]);
    expect((await api.request<{ data: unknown[] }>('GET', `/api/events?ids=${ids[1]}`, { key: bob.key })).body.data).toHaveLength(0);
    expect((await api.request<{ data: unknown[] }>('GET', `/api/events?ids=${ids[1]},${ids[2]}&type=even.one`, { key: carol.key })).body.data).toHaveLength(1);
  });

  it('replays a request with the same Idempotency-Key and refuses a different one with 409', async () => {
    const body = { type: 'order.created', payload: { a: 1, b: [1, 2] } };
    const first = await post(payments.key, body, { 'idempotency-key': 'order-1' });
    expect(first.status).toBe(202);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    // Same request, fields in another order.
    const again = await post(payments.key, { payload: { b: [1, 2], a: 1 }, type: 'order.created' }, { 'idempotency-key': 'order-1' });
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    // The original answer again, whatever happened to the event since.
    expect(again.body).toEqual(first.body);
    // The key may come in the body too.
    const viaField = await post(payments.key, { ...body, idempotency_key: 'order-1' });
    expect(viaField.status).toBe(200);
    expect(viaField.body.event_id).toBe(first.body.event_id);

    const conflict = await post(payments.key, { ...body, payload: { a: 2 } }, { 'idempotency-key': 'order-1' });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', event_id: first.body.event_id });

    // Keys are scoped to the producer.
    const other = await post(shipping.key, body, { 'idempotency-key': 'order-1' });
    expect(other.status).toBe(202);
    expect(other.body.event_id).not.toBe(first.body.event_id);

    const mismatch = await post(payments.key, { ...body, idempotency_key: 'order-2' }, { 'idempotency-key': 'order-1' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.field).toBe('body.idempotency_key');
  });

  it('turns 20 concurrent requests with one key into exactly one event', async () => {
    const body = { type: 'race.test', payload: { n: 1 } };
    const results = await Promise.all(Array.from({ length: 20 }, () => post(payments.key, body, { 'idempotency-key': `race-${kind}` })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(19);
    expect(new Set(results.map((r) => r.body.event_id)).size).toBe(1);
    const listed = await api.request<{ data: unknown[] }>('GET', '/api/events?type=race.test', { key: payments.key });
    expect(listed.body.data).toHaveLength(1);
  });

  it('ingests a batch with one result per item', async () => {
    await post(payments.key, { type: 'batch.seen', payload: {}, idempotency_key: 'seen-1' });
    const res = await api.request<{ results: { index: number; status: number; event_id?: string; error?: { field?: string; code: string } }[] }>('POST', '/api/events/batch', {
      key: payments.key,
      body: {
        events: [
          { type: 'batch.ok', payload: { i: 0 } },
          { type: 'Bad Type', payload: {} },
          { type: 'batch.seen', payload: {}, idempotency_key: 'seen-1' },
          { type: 'batch.ok', payload: { i: 3 }, user_id: 'alice' },
          { type: 'batch.ok', payload: 'nope' },
          { type: 'batch.ok', payload: {}, idempotency_key: 'seen-1' },
        ],
      },
    });
    expect(res.status).toBe(202);
    const r = res.body.results;
    expect(r.map((x) => [x.index, x.status])).toEqual([[0, 202], [1, 400], [2, 200], [3, 202], [4, 400], [5, 409]]);
    expect(r[1]!.error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'body.events.1.type' });
    expect(r[4]!.error).toMatchObject({ field: 'body.events.4.payload' });
    expect(r[5]!.error).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    const owned = await api.request('GET', `/api/events/${r[3]!.event_id}`, { key: alice.key });
    expect(owned.body).toMatchObject({ user_id: 'alice', producer_id: 'payments' });

    const userBatch = await api.request<{ results: { status: number; error?: { field: string } }[] }>('POST', '/api/events/batch', {
      key: alice.key,
      body: { events: [{ type: 'x', payload: {}, user_id: 'bob' }] },
    });
    expect(userBatch.body.results[0]).toMatchObject({ status: 403, error: { field: 'body.events.0.user_id' } });
  });

  it('accepts a batch of 1,000 events and refuses 1,001', async () => {
    const events = Array.from({ length: 1000 }, (_, i) => ({ type: 'bulk.load', payload: { i } }));
    const ok = await api.request<{ results: { status: number }[] }>('POST', '/api/events/batch', { key: payments.key, body: { events } });
    expect(ok.status).toBe(202);
    expect(ok.body.results.every((x) => x.status === 202)).toBe(true);
    const listed = await api.request<{ data: unknown[] }>('GET', '/api/events?type=bulk.load&limit=1000', { key: payments.key });
    expect(listed.body.data).toHaveLength(1000);
    const tooMany = await api.request('POST', '/api/events/batch', { key: payments.key, body: { events: [...events, events[0]] } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.field).toBe('body.events');
  });
});
