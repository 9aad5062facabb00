/**
 * The basic processing flow, on PGlite (embedded) and PostgreSQL: ingested events are claimed,
 * processed and recorded, woken by notifications rather than polling.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Worker } from '../../src/worker/index.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { KINDS } from '../conformance/store-fixtures.js';
import { RecordingProcessor, ingestEvents, statuses, waitFor, workerConfig } from '../fixtures/worker-helpers.js';

for (const { kind, skip } of KINDS) {
  describe.skipIf(skip)(`worker basic flow (${kind})`, () => {
    let t: TestStore;
    let worker: Worker | undefined;
    const clock = new ManualClock();

    beforeEach(async () => {
      t = await createTestStore(kind);
    });
    afterEach(async () => {
      await worker?.stop();
      worker = undefined;
      await t.cleanup();
    });

    it('processes ingested events; history runs accepted → queued → processing → processed', async () => {
      const recorder = new RecordingProcessor('recorder', ['order.*']);
      const metrics = createMetrics();
      worker = new Worker({ store: t.store, config: workerConfig(), logger: silentLogger(), clock, metrics, processors: [recorder], workerId: 'w1' });
      const seen: string[] = [];
      worker.events.on('job:claimed', ({ job }) => seen.push(`claimed:${job.event.id}`));
      worker.events.on('job:completed', ({ job, processor }) => seen.push(`completed:${job.event.id}:${processor}`));
      await worker.start();

      const orders = await ingestEvents(t.store, 5, clock.now(), { type: 'order.created' });
      const others = await ingestEvents(t.store, 3, clock.now(), { type: 'user.signed_up' });
      await waitFor('all events processed', async () => (await statuses(t.store, [...orders, ...others])).every((s) => s === 'processed'));

      expect(recorder.runs.map((r) => r.eventId).sort()).toEqual([...orders].sort());
      for (const id of orders) {
        expect(await t.store.hasEffect(id, 'recorder')).toBe(true);
        expect(await t.store.hasEffect(id, 'default')).toBe(false);
      }
      for (const id of others) expect(await t.store.hasEffect(id, 'default')).toBe(true);

      const event = await t.store.getEvent(orders[0]!);
      expect(event?.history.map((h) => h.status)).toEqual(['accepted', 'queued', 'processing', 'processed']);
      expect(event?.history.map((h) => h.version)).toEqual([...event!.history.map((h) => h.version)].sort((a, b) => a - b));
      expect(event?.attempts).toBe(1);
      expect(seen).toContain(`claimed:${orders[0]}`);
      expect(seen).toContain(`completed:${others[0]}:default`);
      expect((await metrics.jobsCompleted.get()).values.find((v) => v.labels.outcome === 'processed')?.value).toBe(8);

      const stats = await t.store.stats(clock.now());
      expect(stats.byStatus.processed).toBe(8);
      expect(stats.queueDepth).toBe(0);
      expect(stats.leased).toBe(0);
    });

    it('is woken by new events without waiting for the poll', async () => {
      const recorder = new RecordingProcessor();
      // A poll far longer than the test's wait: only the notification can wake the worker.
      worker = new Worker({ store: t.store, config: workerConfig({ pollIntervalMs: 60_000 }), logger: silentLogger(), clock, processors: [recorder], workerId: 'w1' });
      await worker.start();
      await new Promise((r) => setTimeout(r, 100));
      const [id] = await ingestEvents(t.store, 1, clock.now());
      await waitFor('the event processed', async () => (await statuses(t.store, [id!]))[0] === 'processed', 5_000);
      expect(recorder.runs).toHaveLength(1);
    });

    it('keeps at most workerConcurrency jobs in flight', async () => {
      let running = 0;
      let peak = 0;
      const recorder = new RecordingProcessor();
      recorder.behaviour = async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 15));
        running -= 1;
        return null;
      };
      worker = new Worker({
        store: t.store,
        config: workerConfig({ workerConcurrency: 3, workerBatchSize: 2 }),
        logger: silentLogger(),
        clock,
        processors: [recorder],
        workerId: 'w1',
      });
      const ids = await ingestEvents(t.store, 20, clock.now());
      await worker.start();
      await waitFor('all events processed', async () => (await statuses(t.store, ids)).every((s) => s === 'processed'));
      expect(recorder.runs).toHaveLength(20);
      expect(peak).toBeLessThanOrEqual(3);
      expect(peak).toBeGreaterThan(1);
    });

    it('frees a slot when the processor returns, while the commit is still in flight, and bounds the jobs held', async () => {
      // Commits are held back until released: the worker must go on processing other jobs
      // meanwhile (up to workerConcurrency at once), but hold no more than concurrency + two
      // commit batches in all.
      let gate!: () => void;
      let open = new Promise<void>((r) => (gate = r));
      const completeMany = t.store.completeMany.bind(t.store);
      let peakHeld = 0;
      const recorder = new RecordingProcessor();
      let running = 0;
      let peakRunning = 0;
      recorder.behaviour = async () => {
        running += 1;
        peakRunning = Math.max(peakRunning, running);
        await new Promise((r) => setImmediate(r));
        running -= 1;
        return null;
      };
      const store = Object.create(t.store) as typeof t.store;
      store.completeMany = async (items, now) => {
        await open;
        return completeMany(items, now);
      };
      worker = new Worker({ store, config: workerConfig({ workerConcurrency: 2, workerBatchSize: 2 }), logger: silentLogger(), clock, processors: [recorder], workerId: 'w1' });
      const ids = await ingestEvents(t.store, 20, clock.now());
      await worker.start();
      // 2 processing slots + 2 commits of 2 jobs: 6 jobs are held, all their processors ran.
      await waitFor('six jobs processed while their commits wait', async () => {
        peakHeld = Math.max(peakHeld, worker!.inFlightCount);
        return recorder.runs.length >= 6;
      });
      await new Promise((r) => setTimeout(r, 100));
      expect(recorder.runs).toHaveLength(6);
      expect(worker.inFlightCount).toBe(6);
      gate();
      open = Promise.resolve();
      await waitFor('all events processed', async () => {
        peakHeld = Math.max(peakHeld, worker!.inFlightCount);
        return (await statuses(t.store, ids)).every((s) => s === 'processed');
      });
      expect(recorder.runs).toHaveLength(20);
      expect(peakRunning).toBeLessThanOrEqual(2);
      expect(peakHeld).toBeLessThanOrEqual(6);
    });
  });
}
