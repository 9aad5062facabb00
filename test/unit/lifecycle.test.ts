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
});
