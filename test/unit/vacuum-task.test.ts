/**
 * The queue vacuum task runs beside the maintenance loop: a slow vacuum never holds a run (and so
 * the lease sweep after it) for more than a moment, never overlaps itself, and a failure is
 * reported whether it comes while the run waits or after.
 */
import { describe, expect, it } from 'vitest';
import { vacuumQueuesTask } from '../../src/worker/vacuum-task.js';

function controllable() {
  let calls = 0;
  let settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  const store = {
    vacuumQueues: () => {
      calls += 1;
      return new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    },
  };
  return { store, calls: () => calls, settle: () => settle! };
}

const ctx = { now: new Date(), signal: new AbortController().signal };
const tick = () => new Promise((r) => setImmediate(r));

describe('vacuum_queues task', () => {
  it('reports a vacuum that finishes while the run waits', async () => {
    const c = controllable();
    const task = vacuumQueuesTask(c.store, 10_000, () => {});
    const run = task.run(ctx);
    c.settle().resolve();
    await expect(run).resolves.toBe('vacuumed');
  });

  it('fails the run when the vacuum fails while it waits (and reports it only there)', async () => {
    const c = controllable();
    const errors: unknown[] = [];
    const task = vacuumQueuesTask(c.store, 10_000, (e) => errors.push(e));
    const run = task.run(ctx);
    c.settle().reject(new Error('permission denied'));
    await expect(run).rejects.toThrow('permission denied');
    await tick();
    expect(errors).toEqual([]);
    // Not stuck as running: the next run vacuums again.
    const next = task.run(ctx);
    c.settle().resolve();
    await expect(next).resolves.toBe('vacuumed');
    expect(c.calls()).toBe(2);
  });

  it('leaves a slow vacuum to the background, skips while it runs, and reports its later failure', async () => {
    const c = controllable();
    const errors: unknown[] = [];
    const task = vacuumQueuesTask(c.store, 10_000, (e) => errors.push(e));
    const started = Date.now();
    await expect(task.run(ctx)).resolves.toBe('continuing in the background');
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(task.run(ctx)).resolves.toMatch(/^skipped/);
    expect(c.calls()).toBe(1);
    const boom = new Error('canceled');
    c.settle().reject(boom);
    await tick();
    await tick();
    expect(errors).toEqual([boom]);
    const next = task.run(ctx);
    c.settle().resolve();
    await expect(next).resolves.toBe('vacuumed');
  });

  it('runs at most once a second, however short the interval configured', () => {
    expect(vacuumQueuesTask(controllable().store, 5, () => {}).intervalMs).toBe(1000);
    expect(vacuumQueuesTask(controllable().store, 30_000, () => {}).intervalMs).toBe(30_000);
  });
});
