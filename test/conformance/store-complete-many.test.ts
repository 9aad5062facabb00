/**
 * Store conformance, batched completion (the worker's group commit), on PGlite and PostgreSQL:
 * each item of a completeMany is fenced on its own, and what it writes is what complete writes.
 */
import { describe, expect, it } from 'vitest';
import type { OutboxMessage } from '../../src/core/types.js';
import type { TemEventWithHistory } from '../../src/core/types.js';
import type { Store } from '../../src/store/types.js';
import { KINDS, ManualClock, itemFactory, ref, useSuiteStore } from './store-fixtures.js';

const START = Date.UTC(2030, 0, 1);
const Q = 'processing';

describe.each(KINDS)('Store completeMany ($kind)', ({ kind, skip }) => {
  let store: Store;
  const clock = new ManualClock(START);
  const item = itemFactory(clock);
  const claim = (limit = 10, leaseMs = 5000) =>
    store.claim({ queue: Q, workerId: 'w1', limit, leaseMs, now: clock.now() });
  const done = (processor = 'billing', result: unknown = { ok: true }) => ({ processor, result });

  useSuiteStore(kind, skip, (s) => (store = s), () => clock.set(START));

  async function outboxOf(eventId: string): Promise<OutboxMessage[]> {
    return (await store.peekOutbox(1000)).filter((m) => m.eventId === eventId);
  }

  it.skipIf(skip)('processes exactly the items that hold their lease and leaves the others untouched', async () => {
    const a = item();
    const b = item();
    const c = item();
    const d = item({ channel: 'live:9:chat', payload: { n: 9 } });
    // a: claimed, expired, swept and claimed again, so its first token is stale.
    await store.ingest([a], clock.now());
    const [a1] = await claim(1, 1000);
    clock.advance(1000);
    expect(await store.sweepExpiredLeases(clock.now())).toHaveLength(1);
    const [a2] = await claim(1, 10_000);
    expect(a2!.event.id).toBe(a.id);
    await store.ingest([b, c, d], clock.now());
    // b: its lease runs out before the batch (not swept yet).
    const [b1] = await claim(1, 1000);
    expect(b1!.event.id).toBe(b.id);
    const [c1, d1] = await claim(2, 10_000);
    clock.advance(1000);
    const beforeB = await store.getEvent(b.id);

    const results = await store.completeMany(
      [
        { job: ref(c1!), input: done() },
        { job: ref(a1!), input: done() },
        { job: ref(b1!), input: done() },
        { job: ref(a2!), input: done('billing', null) },
        { job: { eventId: c.id, leaseToken: '999999' }, input: done() },
        { job: { eventId: 'not-a-uuid', leaseToken: 'x' }, input: done() },
        { job: ref(d1!), input: done() },
      ],
      clock.now(),
    );
    expect(results).toEqual([true, false, false, true, false, false, true]);

    for (const id of [a.id, c.id, d.id]) {
      const ev = await store.getEvent(id);
      expect(ev).toMatchObject({ status: 'processed', processedAt: clock.now(), runAt: null });
      expect(ev!.history.at(-1)).toMatchObject({ status: 'processed', at: clock.now() });
      expect(await store.hasEffect(id, 'billing')).toBe(true);
    }
    expect(await store.getEvent(b.id)).toEqual(beforeB);
    expect(await store.hasEffect(b.id, 'billing')).toBe(false);
    // b is still leased (for the sweep); nothing else is left in the queue.
    expect(await store.stats(clock.now())).toMatchObject({ leased: 1, queueDepth: 0 });
    expect(await store.sweepExpiredLeases(clock.now())).toHaveLength(1);
    expect((await outboxOf(d.id)).map((m) => [m.channel, m.event])).toEqual([
      ['user:u_1', 'event.update'],
      ['user:u_1', 'event.update'],
      ['user:u_1', 'event.update'],
      ['user:u_1', 'event.update'],
      ['live:9:chat', 'payment.success'],
    ]);
    // Once done, the same refs are fenced off.
    expect(await store.completeMany([{ job: ref(c1!), input: done() }, { job: ref(a2!), input: done() }], clock.now())).toEqual([false, false]);
    expect(await store.completeMany([], clock.now())).toEqual([]);
  });

  it.skipIf(skip)('writes the same event, history and outbox rows as complete', async () => {
    const one = item({ channel: 'live:1:chat', payload: { k: 1 } });
    const many = item({ channel: 'live:1:chat', payload: { k: 1 } });
    const plain = item();
    await store.ingest([one, many, plain], clock.now());
    const [j1, j2, j3] = await claim(3);
    clock.advance(250);
    expect(await store.complete(ref(j1!), done(), clock.now())).toBe(true);
    expect(await store.completeMany([{ job: ref(j2!), input: done() }, { job: ref(j3!), input: done() }], clock.now())).toEqual([true, true]);

    // Apart from the id (and occurredAt: the fixture gives each item its own), nothing differs.
    const shape = (ev: TemEventWithHistory | null) => ({ ...ev!, id: '-', occurredAt: null });
    const rows = async (id: string) =>
      (await outboxOf(id)).map(({ channel, event, payload, createdAt }) => ({ channel, event, payload: { ...payload, event_id: '-' }, createdAt }));
    expect(shape(await store.getEvent(many.id))).toEqual(shape(await store.getEvent(one.id)));
    expect(await rows(many.id)).toEqual(await rows(one.id));
    // Without a channel: the status update only, no delivery.
    expect((await outboxOf(plain.id)).map((m) => m.event)).toEqual(['event.update', 'event.update', 'event.update', 'event.update']);
  });

  it.skipIf(skip)('records one effect when the same job appears twice in a batch', async () => {
    const a = item({ channel: 'live:2:chat' });
    await store.ingest([a], clock.now());
    const [job] = await claim(1);
    const results = await store.completeMany([{ job: ref(job!), input: done() }, { job: ref(job!), input: done() }], clock.now());
    expect(results.filter(Boolean)).toHaveLength(1);
    const ev = await store.getEvent(a.id);
    expect(ev!.history.filter((h) => h.status === 'processed')).toHaveLength(1);
    expect((await outboxOf(a.id)).filter((m) => m.channel === 'live:2:chat')).toHaveLength(1);
    expect(await store.hasEffect(a.id, 'billing')).toBe(true);
  });
});
