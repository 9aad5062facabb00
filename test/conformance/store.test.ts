/**
 * Store conformance, events side: one suite run against PGlite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/types.js';
import type { EventStatus } from '../../src/core/types.js';
import { KINDS, ManualClock, itemFactory, ref, useSuiteStore } from './store-fixtures.js';
import { eventOf } from '../fixtures/worker-helpers.js';
import type { TestStore } from '../helpers/db.js';

const START = Date.UTC(2030, 0, 1);
const Q = 'processing';

describe.each(KINDS)('Store events ($kind)', ({ kind, skip }) => {
  let store: Store;
  const clock = new ManualClock(START);
  const item = itemFactory(clock);
  const claim = (limit = 10, leaseMs = 5000) =>
    store.claim({ queue: Q, workerId: 'w1', limit, leaseMs, now: clock.now() });

  let suite: TestStore | undefined;
  // Empties every table, as an operator's TRUNCATE would.
  const truncateEvents = () => suite!.reset();

  useSuiteStore(
    kind,
    skip,
    (s, _url, t) => {
      store = s;
      suite = t;
    },
    () => clock.set(START),
  );

  describe.skipIf(skip)('ingest', () => {
    it('creates queued events with history, a job and two outbox notifications each, in one batch', async () => {
      const a = item({ channel: 'live:1:chat' });
      const b = item({ userId: 'u_2' });
      const out = await store.ingest([a, b], clock.now());
      expect(out.map((o) => o.outcome)).toEqual(['created', 'created']);
      expect(eventOf(out[0]!)).toMatchObject({ id: a.id, status: 'queued', version: 2, attempts: 0, channel: 'live:1:chat' });
      expect(eventOf(out[0]!).runAt).toEqual(clock.now());
      const ev = await store.getEvent(a.id);
      expect(ev?.payload).toEqual(a.payload);
      // The outcome is built from the input, not read back: it must be what was stored.
      const { history: _history, ...stored } = ev!;
      expect(eventOf(out[0]!)).toEqual(stored);
      expect(ev?.history.map((h) => [h.status, h.version])).toEqual([
        ['accepted', 1],
        ['queued', 2],
      ]);
      // Both states were entered at once, by the ingest itself.
      expect(ev!.history[0]).toEqual({ ...ev!.history[1], status: 'accepted', version: 1, error: null });
      const outbox = await store.peekOutbox(10);
      expect(outbox.map((m) => [m.eventId, m.channel, m.payload.status, m.payload.version])).toEqual([
        [a.id, 'user:u_1', 'accepted', 1],
        [a.id, 'user:u_1', 'queued', 2],
        [b.id, 'user:u_2', 'accepted', 1],
        [b.id, 'user:u_2', 'queued', 2],
      ]);
      expect(outbox[1]!.payload).toEqual({
        event_id: a.id,
        status: 'queued',
        user_id: 'u_1',
        type: 'payment.success',
        attempts: 0,
        updated_at: clock.now().toISOString(),
        version: 2,
        last_error: null,
      });
      expect((await store.stats(clock.now())).byStatus.queued).toBe(2);
    });

    it('replays the same key and request, conflicts on another request, also within one batch', async () => {
      const first = item({ idempotencyKey: 'k1', requestHash: 'h1' });
      const [created] = await store.ingest([first], clock.now());
      expect(created?.outcome).toBe('created');
      const out = await store.ingest(
        [
          item({ idempotencyKey: 'k1', requestHash: 'h1' }),
          item({ idempotencyKey: 'k1', requestHash: 'other' }),
          item({ idempotencyKey: 'k2', requestHash: 'h2' }),
          item({ idempotencyKey: 'k2', requestHash: 'h2' }),
          item({ idempotencyKey: 'k2', requestHash: 'h3' }),
          item({ idempotencyKey: 'k1', requestHash: 'h1', producerId: 'other-service' }),
        ],
        clock.now(),
      );
      expect(out.map((o) => o.outcome)).toEqual(['replayed', 'conflict', 'created', 'replayed', 'conflict', 'created']);
      expect(eventOf(out[0]!).id).toBe(first.id);
      expect(eventOf(out[1]!).id).toBe(first.id);
      expect(eventOf(out[3]!).id).toBe(eventOf(out[2]!).id);
      const page = await store.listEvents({ limit: 100 });
      expect(page.events).toHaveLength(3);
    });

    it('resolves concurrent duplicates to one event', async () => {
      const attempts = Array.from({ length: 6 }, () => item({ idempotencyKey: 'race', requestHash: 'h' }));
      const results = await Promise.all(attempts.map((a) => store.ingest([a], clock.now())));
      const outcomes = results.map((r) => r[0]!.outcome).sort();
      expect(outcomes).toEqual(['created', 'replayed', 'replayed', 'replayed', 'replayed', 'replayed']);
      expect(new Set(results.map((r) => eventOf(r[0]!).id)).size).toBe(1);
      expect((await store.stats(clock.now())).byStatus.queued).toBe(1);
    });

    it('returns [] for an empty batch and rejects a duplicate id as CONFLICT', async () => {
      expect(await store.ingest([], clock.now())).toEqual([]);
      const a = item();
      await store.ingest([a], clock.now());
      await expect(store.ingest([{ ...a }], clock.now())).rejects.toMatchObject({ code: 'CONFLICT' });
    });
  });

  describe.skipIf(skip)('get and list', () => {
    it('returns null for unknown and malformed ids', async () => {
      expect(await store.getEvent('01890000-0000-7000-8000-000000000000')).toBeNull();
      expect(await store.getEvent('not-a-uuid')).toBeNull();
    });

    it('lists newest first with filters, visibility and cursor paging', async () => {
      const mine = item({ userId: 'u_1', producerId: 'payments', type: 'a.one' });
      const produced = item({ userId: 'u_9', producerId: 'u_1', type: 'a.two' });
      const other = item({ userId: 'u_2', producerId: 'payments', type: 'a.one' });
      await store.ingest([mine, produced, other], clock.now());
      const all = await store.listEvents({ limit: 10 });
      expect(all.events.map((e) => e.id)).toEqual([other.id, produced.id, mine.id]);
      expect(all.nextCursor).toBeNull();
      const visible = await store.listEvents({ limit: 10, visibleTo: 'u_1' });
      expect(visible.events.map((e) => e.id)).toEqual([produced.id, mine.id]);
      expect((await store.listEvents({ limit: 10, type: 'a.one' })).events.map((e) => e.id)).toEqual([other.id, mine.id]);
      expect((await store.listEvents({ limit: 10, userId: 'u_2' })).events.map((e) => e.id)).toEqual([other.id]);
      expect((await store.listEvents({ limit: 10, producerId: 'u_1' })).events.map((e) => e.id)).toEqual([produced.id]);
      expect((await store.listEvents({ limit: 10, status: 'failed' })).events).toEqual([]);
      expect((await store.listEvents({ limit: 10, since: new Date(START + 3600_000) })).events).toEqual([]);

      const p1 = await store.listEvents({ limit: 2 });
      expect(p1.events.map((e) => e.id)).toEqual([other.id, produced.id]);
      expect(p1.nextCursor).toBe(produced.id);
      const p2 = await store.listEvents({ limit: 2, cursor: p1.nextCursor! });
      expect(p2.events.map((e) => e.id)).toEqual([mine.id]);
      expect(p2.nextCursor).toBeNull();
      await expect(store.listEvents({ limit: 2, cursor: 'nope' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    });

    it('filters by creation time exactly, to the millisecond of created_at', async () => {
      const first = item();
      await store.ingest([first], clock.now());
      const firstAt = clock.nowMs();
      clock.advance(5);
      const second = item();
      // Committed a while after its id was minted: created_at decides, not the id's time.
      clock.advance(20);
      await store.ingest([second], clock.now());
      const secondAt = clock.nowMs();
      const since = async (ms: number) => (await store.listEvents({ limit: 10, since: new Date(ms) })).events.map((e) => e.id);
      expect((await since(firstAt)).slice(-2)).toEqual([second.id, first.id]);
      expect(await since(firstAt + 1)).toEqual([second.id]);
      expect(await since(secondAt)).toEqual([second.id]);
      expect(await since(secondAt + 1)).toEqual([]);
    });
  });

  describe.skipIf(skip)('claim, complete, fail', () => {
    it('leases ready jobs oldest first and marks their events processing', async () => {
      const a = item();
      const b = item();
      await store.ingest([a, b], clock.now());
      const jobs = await claim(1);
      expect(jobs).toHaveLength(1);
      expect(jobs[0]).toMatchObject({ attempt: 1, maxAttempts: 3, leaseExpiresAt: new Date(clock.nowMs() + 5000) });
      expect(jobs[0]!.event).toMatchObject({ id: a.id, status: 'processing', attempts: 1, version: 3 });
      expect(typeof jobs[0]!.leaseToken).toBe('string');
      const second = await claim(10);
      expect(second.map((j) => j.event.id)).toEqual([b.id]);
      expect(second[0]!.leaseToken).not.toBe(jobs[0]!.leaseToken);
      expect(await claim(10)).toEqual([]);
      const s = await store.stats(clock.now());
      expect(s).toMatchObject({ leased: 2, queueDepth: 0 });
      expect(s.byStatus.processing).toBe(2);
    });

    it('never gives the same job to two concurrent claims', async () => {
      await store.ingest(Array.from({ length: 30 }, () => item()), clock.now());
      const batches = await Promise.all(Array.from({ length: 3 }, () => claim(15)));
      const ids = batches.flat().map((j) => j.event.id);
      expect(ids).toHaveLength(30);
      expect(new Set(ids).size).toBe(30);
    });

    it('completes: job gone, effect recorded once, processed with history, update and channel delivery', async () => {
      const a = item({ channel: 'live:7:chat', payload: { hello: 'world' } });
      await store.ingest([a], clock.now());
      const [job] = await claim();
      clock.advance(100);
      expect(await store.hasEffect(a.id, 'billing')).toBe(false);
      expect(await store.complete(ref(job!), { processor: 'billing', result: { charged: true } }, clock.now())).toBe(true);
      expect(await store.hasEffect(a.id, 'billing')).toBe(true);
      const ev = await store.getEvent(a.id);
      expect(ev).toMatchObject({ status: 'processed', version: 4, processedAt: clock.now(), runAt: null });
      expect(ev!.history.map((h) => h.status)).toEqual(['accepted', 'queued', 'processing', 'processed']);
      const outbox = await store.peekOutbox(10);
      expect(outbox.map((m) => [m.channel, m.event])).toEqual([
        ['user:u_1', 'event.update'],
        ['user:u_1', 'event.update'],
        ['user:u_1', 'event.update'],
        ['user:u_1', 'event.update'],
        ['live:7:chat', 'payment.success'],
      ]);
      expect(outbox[3]!.payload).toMatchObject({ status: 'processed', version: 4, attempts: 1 });
      expect(outbox[4]!).toMatchObject({ eventId: a.id, payload: { hello: 'world' } });
      // A second completion of the same lease is fenced off.
      expect(await store.complete(ref(job!), { processor: 'billing', result: null }, clock.now())).toBe(false);
      expect(await store.nextRunAt(Q)).toBeNull();
    });

    it('fences a zombie whose lease ran out: complete and fail return false and change nothing', async () => {
      const a = item();
      await store.ingest([a], clock.now());
      const [job] = await claim(1, 1000);
      clock.advance(1000);
      const before = await store.getEvent(a.id);
      expect(await store.complete(ref(job!), { processor: 'p', result: 1 }, clock.now())).toBe(false);
      expect(await store.fail(ref(job!), { error: 'x', retryAt: null }, clock.now())).toBe(false);
      expect(await store.complete({ eventId: a.id, leaseToken: '999999' }, { processor: 'p', result: 1 }, new Date(START))).toBe(false);
      expect(await store.getEvent(a.id)).toEqual(before);
      expect(await store.hasEffect(a.id, 'p')).toBe(false);
    });

    it('fails with retryAt: queued with the error, and claim waits for run_at', async () => {
      const a = item();
      await store.ingest([a], clock.now());
      const [job] = await claim();
      const retryAt = new Date(clock.nowMs() + 2000);
      expect(await store.fail(ref(job!), { error: 'timeout', retryAt }, clock.now())).toBe(true);
      const ev = await store.getEvent(a.id);
      expect(ev).toMatchObject({ status: 'queued', lastError: 'timeout', attempts: 1, runAt: retryAt });
      expect(ev!.history.at(-1)).toMatchObject({ status: 'queued', error: 'timeout', attempt: 1 });
      expect(await store.nextRunAt(Q)).toEqual(retryAt);
      expect(await claim()).toEqual([]);
      clock.advance(2000);
      const [again] = await claim();
      expect(again).toMatchObject({ attempt: 2 });
      expect(await store.fail(ref(again!), { error: 'bad input', retryAt: null }, clock.now())).toBe(true);
      const failed = await store.getEvent(a.id);
      expect(failed).toMatchObject({ status: 'failed', lastError: 'bad input', attempts: 2, runAt: null });
      expect((await store.peekOutbox(20)).at(-1)!.payload).toMatchObject({ status: 'failed', last_error: 'bad input' });
    });

    it('extends held leases and releases jobs without counting the attempt', async () => {
      const a = item();
      const b = item();
      await store.ingest([a, b], clock.now());
      const jobs = await claim(2, 1000);
      clock.advance(900);
      const held = await store.extendLeases([...jobs.map(ref), { eventId: a.id, leaseToken: '0' }], 1000, clock.now());
      expect(held.map((r) => r.eventId).sort()).toEqual([a.id, b.id].sort());
      clock.advance(900); // past the first lease, within the extension
      expect(await store.releaseJobs(jobs.map(ref), clock.now())).toBe(2);
      const ev = await store.getEvent(a.id);
      expect(ev).toMatchObject({ status: 'queued', attempts: 0 });
      const again = await claim(2);
      expect(again.map((j) => j.attempt)).toEqual([1, 1]);
    });
  });

  describe.skipIf(skip)('sweep and retry', () => {
    it('requeues expired leases, and fails them when attempts are exhausted', async () => {
      const a = item({ maxAttempts: 2 });
      await store.ingest([a], clock.now());
      await claim(1, 1000);
      expect(await store.sweepExpiredLeases(clock.now())).toHaveLength(0);
      clock.advance(1000);
      expect(await store.sweepExpiredLeases(clock.now())).toHaveLength(1);
      expect(await store.getEvent(a.id)).toMatchObject({ status: 'queued', lastError: 'lease expired', attempts: 1 });
      const [second] = await claim(1, 1000);
      expect(second?.attempt).toBe(2);
      clock.advance(1000);
      expect(await store.sweepExpiredLeases(clock.now())).toHaveLength(1);
      const ev = await store.getEvent(a.id);
      expect(ev).toMatchObject({ status: 'failed', lastError: 'lease expired', attempts: 2 });
      expect(ev!.history.map((h) => h.status)).toEqual(['accepted', 'queued', 'processing', 'queued', 'processing', 'failed']);
      expect(await claim()).toEqual([]);
      // The swept worker cannot complete any more.
      expect(await store.complete(ref(second!), { processor: 'p', result: 1 }, clock.now())).toBe(false);
    });

    it('retries failed events by id and by filter, with attempts reset and a new job', async () => {
      const a = item({ type: 'x.one' });
      const b = item({ type: 'x.two' });
      const c = item({ type: 'x.two' });
      await store.ingest([a, b, c], clock.now());
      for (const job of await claim(3)) {
        expect(await store.fail(ref(job), { error: 'boom', retryAt: null }, clock.now())).toBe(true);
      }
      expect((await store.retryEvents({ ids: [a.id, 'garbage'] }, clock.now())).ids).toEqual([a.id]);
      expect((await store.retryEvents({ ids: [a.id] }, clock.now())).ids).toEqual([]);
      expect(await store.getEvent(a.id)).toMatchObject({ status: 'queued', attempts: 0, lastError: null });
      expect((await store.retryEvents({ type: 'x.two' }, clock.now())).ids.sort()).toEqual([b.id, c.id].sort());
      const jobs = await claim(10);
      expect(jobs.map((j) => j.attempt)).toEqual([1, 1, 1]);
    });

    it('gives a retried event the attempt budget its type has now, when asked to', async () => {
      const a = item({ type: 'budget.one', maxAttempts: 5 });
      const b = item({ type: 'budget.two', maxAttempts: 5 });
      await store.ingest([a, b], clock.now());
      for (const job of await claim(2)) expect(await store.fail(ref(job), { error: 'boom', retryAt: null }, clock.now())).toBe(true);
      const asked: string[] = [];
      const budget = (type: string) => (asked.push(type), type === 'budget.one' ? 2 : 7);
      expect((await store.retryEvents({ ids: [a.id] }, clock.now(), budget)).ids).toEqual([a.id]);
      expect(asked).toEqual(['budget.one']);
      expect(await store.getEvent(a.id)).toMatchObject({ status: 'queued', maxAttempts: 2 });
      // Without it the event keeps its own.
      expect((await store.retryEvents({ ids: [b.id] }, clock.now())).ids).toEqual([b.id]);
      expect(await store.getEvent(b.id)).toMatchObject({ maxAttempts: 5 });
      // The job carries the new budget: the second failure of `a` is its last.
      const jobs = await claim(2);
      expect(jobs.find((j) => j.event.id === a.id)).toMatchObject({ maxAttempts: 2 });
    });

    it('lists and counts every status; failed ones, from either path, until retried', async () => {
      const [p, f, s, r] = [item(), item(), item({ maxAttempts: 1 }), item()];
      await store.ingest([p, f, s, r], clock.now());
      const jobs = new Map((await claim(4, 1000)).map((j) => [j.event.id, j]));
      expect(await store.complete(ref(jobs.get(p.id)!), { processor: 'p', result: 1 }, clock.now())).toBe(true);
      expect(await store.fail(ref(jobs.get(f.id)!), { error: 'boom', retryAt: null }, clock.now())).toBe(true);
      expect(await store.fail(ref(jobs.get(r.id)!), { error: 'boom', retryAt: null }, clock.now())).toBe(true);
      clock.advance(1000);
      expect(await store.sweepExpiredLeases(clock.now())).toHaveLength(1); // s: no attempt left → failed
      expect((await store.retryEvents({ ids: [r.id] }, clock.now())).ids).toEqual([r.id]);
      const q = item();
      await store.ingest([q], clock.now());
      const [held] = await claim(1, 60_000);
      const waiting = held!.event.id === r.id ? q.id : r.id;

      const ids = async (status: EventStatus) => (await store.listEvents({ limit: 10, status })).events.map((e) => e.id);
      expect(await ids('failed')).toEqual([s.id, f.id]);
      expect(await ids('processed')).toEqual([p.id]);
      expect(await ids('processing')).toEqual([held!.event.id]);
      expect(await ids('queued')).toEqual([waiting]);
      expect(await ids('accepted')).toEqual([]);
      expect((await store.stats(clock.now())).byStatus).toEqual({ accepted: 0, queued: 1, processing: 1, processed: 1, failed: 2 });
      // A retry by filter takes only what is failed now, and empties the set; a page at a time,
      // oldest first, when asked.
      const [older, newer] = [f.id, s.id].sort();
      expect(await store.retryEvents({}, clock.now(), undefined, { limit: 1 })).toEqual({ ids: [older], hasMore: true });
      expect(await store.retryEvents({}, clock.now(), undefined, { limit: 1, after: newer })).toEqual({ ids: [], hasMore: false });
      // A full page that is the last one says so.
      expect(await store.retryEvents({}, clock.now(), undefined, { limit: 1, after: older })).toEqual({ ids: [newer], hasMore: false });
      expect(await ids('failed')).toEqual([]);
      expect((await store.stats(clock.now())).byStatus).toMatchObject({ queued: 3, failed: 0, processed: 1 });
    });

    it('prunes idempotency keys older than the cutoff so the key can be used again', async () => {
      const a = item({ idempotencyKey: 'old', requestHash: 'h' });
      await store.ingest([a], clock.now());
      expect(await store.pruneIdempotencyKeys(new Date(START))).toBe(0);
      expect(await store.pruneIdempotencyKeys(new Date(clock.nowMs() + 1))).toBe(1);
      const [again] = await store.ingest([item({ idempotencyKey: 'old', requestHash: 'h' })], clock.now());
      expect(again?.outcome).toBe('created');
    });
  });

  describe.skipIf(skip)('stats and maintenance tasks', () => {
    it('reports queue depth and the age of the oldest ready job', async () => {
      await store.ingest([item(), item()], clock.now());
      clock.advance(1500);
      const s = await store.stats(clock.now());
      expect(s.queueDepth).toBe(2);
      expect(s.oldestQueuedAgeMs).toBe(1500);
      expect(s.byStatus).toEqual({ accepted: 0, queued: 2, processing: 0, processed: 0, failed: 0 });
    });

    it('keeps counting events right as they age past the counted range, after a truncate, and at the periodic recount', async () => {
      const byStatus = async () => (await store.stats(clock.now())).byStatus;
      const processOne = async () => {
        const [job] = await store.claim({ queue: 'processing', workerId: 'w', limit: 1, leaseMs: 60_000, now: clock.now() });
        expect(await store.complete(ref(job!), { processor: 'p', result: null }, clock.now())).toBe(true);
      };
      await store.ingest([item(), item(), item()], clock.now());
      await processOne();
      expect(await byStatus()).toMatchObject({ queued: 2, processed: 1 });
      // Six minutes on, those events lie below the range counted each time: counted once, kept.
      clock.advance(6 * 60_000);
      expect(await byStatus()).toMatchObject({ queued: 2, processed: 1 });
      expect(await byStatus()).toMatchObject({ queued: 2, processed: 1 });
      await store.ingest([item()], clock.now());
      await processOne();
      expect(await byStatus()).toMatchObject({ queued: 2, processed: 2 });
      clock.advance(6 * 60_000);
      await processOne();
      expect(await byStatus()).toEqual({ accepted: 0, queued: 1, processing: 0, processed: 3, failed: 0 });
      // Past the recount interval everything is counted afresh: the same answer.
      clock.advance(11 * 60_000);
      expect(await byStatus()).toEqual({ accepted: 0, queued: 1, processing: 0, processed: 3, failed: 0 });
    });

    it('notices a truncated events table at once', async () => {
      await store.ingest([item(), item()], clock.now());
      clock.advance(6 * 60_000);
      expect((await store.stats(clock.now())).byStatus.queued).toBe(2);
      await truncateEvents();
      expect((await store.stats(clock.now())).byStatus).toEqual({ accepted: 0, queued: 0, processing: 0, processed: 0, failed: 0 });
    });

    it('claims a due task once until it is finished, then at its next run', async () => {
      await store.ensureMaintenanceTasks(['relay'], clock.now());
      await store.ensureMaintenanceTasks(['relay'], clock.now());
      const names: string[] = [];
      for (;;) {
        const task = await store.claimMaintenanceTask('m1', clock.now(), 10_000);
        if (!task) break;
        names.push(task.name);
      }
      expect(names.sort()).toEqual(['prune_idempotency', 'relay', 'sweep_leases']);
      await store.finishMaintenanceTask('relay', new Date(clock.nowMs() + 1000), null, clock.now());
      expect(await store.claimMaintenanceTask('m2', clock.now(), 10_000)).toBeNull();
      clock.advance(1000);
      expect(await store.claimMaintenanceTask('m2', clock.now(), 10_000)).toEqual({ name: 'relay' });
      clock.advance(10_000); // the other locks ran out: claimable again
      expect(await store.claimMaintenanceTask('m3', clock.now(), 10_000)).not.toBeNull();
    });
  });
});
