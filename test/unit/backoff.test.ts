import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { backoffCeilingMs, backoffDelayMs, retryDelayMs } from '../../src/worker/backoff.js';

const policy = { baseMs: 1000, maxMs: 300_000 };

describe('full-jitter exponential backoff', () => {
  it('doubles the ceiling with each attempt from baseMs', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffCeilingMs(policy, n))).toEqual([1000, 2000, 4000, 8000, 16000]);
  });

  it('caps the ceiling at maxMs, even for absurd attempt numbers', () => {
    expect(backoffCeilingMs(policy, 9)).toBe(256_000);
    expect(backoffCeilingMs(policy, 10)).toBe(300_000);
    expect(backoffCeilingMs(policy, 1000)).toBe(300_000);
    expect(backoffCeilingMs(policy, Number.MAX_SAFE_INTEGER)).toBe(300_000);
    expect(Number.isFinite(backoffDelayMs(policy, 5000, () => 0.999))).toBe(true);
  });

  it('treats attempt 0, negative or NaN as the first attempt', () => {
    expect(backoffCeilingMs(policy, 0)).toBe(1000);
    expect(backoffCeilingMs(policy, -3)).toBe(1000);
    expect(backoffCeilingMs(policy, Number.NaN)).toBe(1000);
  });

  it('scales the ceiling by the injected random value', () => {
    expect(backoffDelayMs(policy, 3, () => 0)).toBe(0);
    expect(backoffDelayMs(policy, 3, () => 0.5)).toBe(2000);
    expect(backoffDelayMs(policy, 3, () => 0.25)).toBe(1000);
    expect(backoffDelayMs(policy, 12, () => 0.5)).toBe(150_000);
  });

  it('never leaves [0, ceiling] whatever the random source returns', () => {
    for (const r of [-1, 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const d = backoffDelayMs(policy, 4, () => r);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(8000);
      expect(Number.isInteger(d)).toBe(true);
    }
  });

  it('with real randomness stays within bounds and actually jitters', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(policy, 6);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(32_000);
      seen.add(d);
    }
    expect(seen.size).toBeGreaterThan(50);
  });

  it('is zero when baseMs is zero (immediate retries)', () => {
    expect(backoffDelayMs({ baseMs: 0, maxMs: 1000 }, 7, () => 0.9)).toBe(0);
  });

  it('uses the retry policy of the event type', () => {
    const config = loadConfig(
      { configFile: '/nonexistent/tem.config.json', retry: { 'payment.*': { baseMs: 10, maxMs: 50 }, 'payment.refund': { baseMs: 7 } } },
      {},
    );
    const half = () => 0.5;
    expect(retryDelayMs(config, 'payment.success', 1, half)).toBe(5);
    expect(retryDelayMs(config, 'payment.success', 10, half)).toBe(25);
    // An exact entry is merged over the defaults, not over payment.*.
    expect(retryDelayMs(config, 'payment.refund', 2, half)).toBe(7);
    expect(retryDelayMs(config, 'order.created', 1, half)).toBe(500);
  });
});
