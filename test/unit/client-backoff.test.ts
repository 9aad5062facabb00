import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF } from '../../src/client/index.js';
import { normalizeBackoff } from '../../src/client/backoff.js';

const opts = { minDelay: 100, maxDelay: 5_000, factor: 2 };

describe('client backoff (full jitter)', () => {
  it('stays within [minDelay, min(maxDelay, minDelay·factor^(n+1))] for every attempt', () => {
    for (let attempt = 0; attempt < 60; attempt++) {
      const ceiling = Math.min(opts.maxDelay, opts.minDelay * 2 ** (attempt + 1));
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const d = backoffDelay(attempt, opts, () => r);
        expect(d).toBeGreaterThanOrEqual(opts.minDelay);
        expect(d).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('grows with the attempt until the cap, then stays there', () => {
    const top = (n: number) => backoffDelay(n, opts, () => 0.999999);
    expect(top(0)).toBe(200);
    expect(top(1)).toBe(400);
    expect(top(3)).toBe(1_600);
    expect(top(5)).toBe(5_000);
    expect(top(1_000)).toBe(5_000); // factor^n overflowing to Infinity is still bounded
  });

  it('spreads even the first attempt (a restart sends every client into it at once)', () => {
    const first = new Set<number>();
    for (let i = 0; i < 200; i++) first.add(backoffDelay(0, opts));
    expect(first.size).toBeGreaterThan(20);
  });

  it('spreads delays over the whole window (jitter), not one value', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(backoffDelay(5, opts));
    expect(seen.size).toBeGreaterThan(50);
    expect(Math.min(...seen)).toBeLessThan(1_500);
    expect(Math.max(...seen)).toBeGreaterThan(2_500);
  });

  it('never goes below the floor with random()=0 and handles odd inputs', () => {
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0)).toBe(DEFAULT_BACKOFF.minDelay);
    expect(backoffDelay(-3, opts, () => 0.5)).toBe(150);
    expect(backoffDelay(4, { minDelay: 100, maxDelay: 100, factor: 2 }, () => 0.7)).toBe(100);
    // minDelay 0 still grows (from 100 ms): no reconnect loop without a pause.
    const fromZero = normalizeBackoff({ minDelay: 0 });
    expect([0, 1, 5, 10].map((n) => backoffDelay(n, fromZero, () => 0.99))).toEqual([198, 396, 6336, 19_800]);
    expect(backoffDelay(4, { minDelay: 100, maxDelay: 5_000, factor: 0.5 }, () => 0.999999)).toBe(100);
  });
});
