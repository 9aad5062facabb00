import { describe, expect, it } from 'vitest';
import { Lifecycle } from '../../src/app/lifecycle.js';
import { silentLogger } from '../../src/observability/logger.js';

describe('Lifecycle', () => {
  it('closes in reverse order, past errors and closers that never finish', async () => {
    const order: string[] = [];
    const lc = new Lifecycle(silentLogger(), 50);
    lc.add('store', () => order.push('store'));
    lc.add('stuck', () => new Promise(() => order.push('stuck')));
    lc.add('broken', () => {
      order.push('broken');
      throw new Error('boom');
    });
    lc.add('api', async () => order.push('api'));
    await lc.close();
    expect(order).toEqual(['api', 'broken', 'stuck', 'store']);
    // Idempotent: a second close does not run the closers again.
    await lc.close();
    expect(order).toHaveLength(4);
  });

  it('gives all closers one time budget, and each one left after it a last chance', async () => {
    const order: string[] = [];
    const lc = new Lifecycle(silentLogger(), 200, 30);
    lc.add('store', () => order.push('store'));
    lc.add('stuck relay', () => new Promise(() => order.push('stuck relay')));
    lc.add('stuck worker', () => new Promise(() => order.push('stuck worker')));
    lc.add('stuck api', () => new Promise(() => order.push('stuck api')));
    const started = Date.now();
    await lc.close();
    const took = Date.now() - started;
    // Not three budgets one after the other: one, then a last chance for each closer still left.
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(400);
    expect(order).toEqual(['stuck api', 'stuck worker', 'stuck relay', 'store']);
  });
});
