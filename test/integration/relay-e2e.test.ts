/**
 * Outbox relay end to end, without a worker: an event is ingested through the API, its status
 * changes are made with store.claim / complete / fail, and the owner's socket receives an
 * `event.update` for each committed status, in order; a processed event with a channel is also
 * delivered there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxRelay } from '../../src/outbox/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { TestPrincipal } from '../helpers/api.js';
import { isPublication, startGatewayHarness, WsTestClient, type Frame, type GatewayHarness } from '../helpers/ws.js';

let h: GatewayHarness;
let relay: OutboxRelay;
let alice: TestPrincipal;

interface Update {
  event_id: string;
  status: string;
  version: number;
  attempts: number;
  user_id: string;
  type: string;
  updated_at: string;
}

const updates = (c: WsTestClient, eventId: string): Update[] =>
  c
    .events('user:alice', 'event.update')
    .map((f: Frame) => f.payload.payload as unknown as Update)
    .filter((u) => u.event_id === eventId);

async function claimOne(eventId: string) {
  const jobs = await h.api.store.claim({ queue: 'processing', workerId: 'test-worker', limit: 10, leaseMs: 60_000, now: h.api.clock.now() });
  const job = jobs.find((j) => j.event.id === eventId);
  expect(job, 'claimed').toBeDefined();
  return { eventId, leaseToken: job!.leaseToken };
}

beforeAll(async () => {
  h = await startGatewayHarness();
  relay = new OutboxRelay({ store: h.api.store, bus: h.bus, logger: silentLogger(), metrics: h.api.metrics, clock: h.api.clock, pollIntervalMs: 200 });
  await relay.start();
  alice = await h.api.createPrincipal({ id: 'alice' });
  await h.api.store.addChannelMember('live:1:feed', 'alice');
});

afterAll(async () => {
  await relay?.stop();
  await h?.close();
});

describe('outbox relay → gateway', () => {
  it('delivers every status of a processed event in order, then the event on its channel', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    await c.request('SUBSCRIBE', { channels: ['live:1:feed'] });
    const res = await h.api.request<{ event_id: string }>('POST', '/api/events', {
      key: alice.key,
      body: { type: 'order.shipped', payload: { order: 7 }, channel: 'live:1:feed' },
    });
    expect(res.status).toBe(202);
    const id = res.body.event_id;
    await c.waitCount((f) => isPublication(f, 'user:alice') && (f.payload.payload as Update).event_id === id, 2);

    const job = await claimOne(id);
    await c.waitCount((f) => isPublication(f, 'user:alice') && (f.payload.payload as Update).event_id === id, 3);
    expect(await h.api.store.complete(job, { processor: 'test', result: { ok: true } }, h.api.clock.now())).toBe(true);
    await c.waitCount((f) => isPublication(f, 'user:alice') && (f.payload.payload as Update).event_id === id, 4);

    const seen = updates(c, id);
    expect(seen.map((u) => u.status)).toEqual(['accepted', 'queued', 'processing', 'processed']);
    expect(seen.map((u) => u.version)).toEqual([...seen.map((u) => u.version)].sort((a, b) => a - b));
    expect(seen[3]).toMatchObject({ user_id: 'alice', type: 'order.shipped', attempts: 1 });
    // The EVENT frames carry the event id outside the payload.
    const frames = c.events('user:alice', 'event.update');
    expect(frames.every((f) => (f.payload as { event_id?: string }).event_id === id)).toBe(true);

    const delivered = await c.waitFor((f) => isPublication(f, 'live:1:feed'));
    expect(delivered.payload).toMatchObject({ event: 'order.shipped', payload: { order: 7 }, event_id: id });
    expect(await h.api.store.peekOutbox(10)).toEqual([]);
    await c.close();
  });

  it('delivers retries and the final failure in order', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const res = await h.api.request<{ event_id: string }>('POST', '/api/events', { key: alice.key, body: { type: 'order.flaky', payload: {} } });
    const id = res.body.event_id;
    const first = await claimOne(id);
    expect(await h.api.store.fail(first, { error: 'boom', retryAt: h.api.clock.now() }, h.api.clock.now())).toBe(true);
    const second = await claimOne(id);
    expect(await h.api.store.fail(second, { error: 'boom again', retryAt: null }, h.api.clock.now())).toBe(true);
    await c.waitCount((f) => isPublication(f, 'user:alice') && (f.payload.payload as Update).event_id === id, 6);
    const seen = updates(c, id);
    expect(seen.map((u) => u.status)).toEqual(['accepted', 'queued', 'processing', 'queued', 'processing', 'failed']);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.version).toBeGreaterThan(seen[i - 1]!.version);
    await c.close();
  });

  it('a device that was away gets the updates it missed on resume', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    const ack = c.frames[0]!;
    const position = (ack.payload.channels as Record<string, { offset: number; epoch: string }>)['user:alice']!;
    await c.close();
    const res = await h.api.request<{ event_id: string }>('POST', '/api/events', { key: alice.key, body: { type: 'order.later', payload: {} } });
    const id = res.body.event_id;
    await expectEventually(async () => (await h.api.store.peekOutbox(10)).length === 0);
    const back = await WsTestClient.connect(h.wsUrl());
    const resumed = await back.request('HELLO', { token: alice.key, session_id: ack.payload.session_id, since: { 'user:alice': position } });
    expect(resumed.payload).toMatchObject({ resumed: true, recovered: true });
    await back.waitCount((f) => isPublication(f, 'user:alice') && (f.payload.payload as Update).event_id === id, 2);
    expect(updates(back, id).map((u) => u.status)).toEqual(['accepted', 'queued']);
    await back.close();
  });

  it('keeps the relay metrics', async () => {
    const published = (await h.api.metrics.relayPublished.get()).values[0]?.value ?? 0;
    expect(published).toBeGreaterThanOrEqual(12);
  });
});

async function expectEventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
