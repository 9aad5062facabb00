/**
 * Group commit of completions, on PGlite and PostgreSQL: jobs that finish together are written
 * by one completeMany, and each still gets its own answer — a job whose lease is gone is
 * reported lost while the others in its batch complete.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { ClaimedJob, CompleteItem, Store } from '../../src/store/types.js';
import { Worker } from '../../src/worker/index.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { KINDS } from '../conformance/store-fixtures.js';
import { RecordingProcessor, gate, ingestEvents, statuses, waitFor, workerConfig } from '../fixtures/worker-helpers.js';

/** The real store, recording the size of every completeMany and counting single completes. */
function counting(store: Store): { store: Store; batches: number[]; singles: () => number } {
  const batches: number[] = [];
  let singles = 0;
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (prop === 'completeMany') batches.push((args[0] as CompleteItem[]).length);
        if (prop === 'complete') singles += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, batches, singles: () => singles };
}

for (const { kind, skip } of KINDS) {
  describe.skipIf(skip)(`worker group commit (${kind})`, () => {
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

    it('commits jobs that finish together in one completeMany, fencing each job on its own', async () => {
      const release = gate();
      const recorder = new RecordingProcessor('grouped', ['grouped.*']);
      recorder.behaviour = async () => {
        await release.promise;
        return { ok: true };
      };
      const c = counting(t.store);
      // Renewal would notice the stale lease first; here only the commit may.
      worker = new Worker({
        store: c.store,
        config: workerConfig({ workerConcurrency: 16, workerBatchSize: 16 }),
        logger: silentLogger(),
        clock,
        processors: [recorder],
        workerId: 'w1',
        renewIntervalMs: 600_000,
      });
      const claimed: ClaimedJob[] = [];
      const lost: { id: string; stage: string }[] = [];
      const completed: string[] = [];
      worker.events.on('job:claimed', ({ job }) => claimed.push(job));
      worker.events.on('job:lease_lost', ({ job, stage }) => lost.push({ id: job.event.id, stage }));
      worker.events.on('job:completed', ({ job }) => completed.push(job.event.id));
      await worker.start();

      const ids = await ingestEvents(t.store, 10, clock.now(), { type: 'grouped.op' });
      await waitFor('all ten running', () => recorder.runs.length === 10);
      // One job loses its lease under the worker (released, then claimed again by it).
      const victim = claimed[3]!;
      expect(await t.store.releaseJobs([{ eventId: victim.event.id, leaseToken: victim.leaseToken }], clock.now())).toBe(1);
      worker.wake();
      await waitFor('the released job running again', () => recorder.runs.length === 11);

      release.open();
      await waitFor('all processed', async () => (await statuses(t.store, ids)).every((s) => s === 'processed'));
      await waitFor('the worker idle', () => worker!.inFlightCount === 0);

      expect(lost).toEqual([{ id: victim.event.id, stage: 'complete' }]);
      expect(completed.sort()).toEqual([...ids].sort());
      // Eleven completions, fewer commits: the ones that finished together shared one.
      expect(c.batches.reduce((a, b) => a + b, 0)).toBe(11);
      expect(Math.max(...c.batches)).toBeGreaterThan(1);
      expect(c.batches.length).toBeLessThan(11);
      expect(c.singles()).toBe(0);
      for (const id of ids) expect(await t.store.hasEffect(id, 'grouped')).toBe(true);
      const victimEvent = await t.store.getEvent(victim.event.id);
      expect(victimEvent?.history.map((h) => h.status)).toEqual(['accepted', 'queued', 'processing', 'queued', 'processing', 'processed']);
    });
  });
}
