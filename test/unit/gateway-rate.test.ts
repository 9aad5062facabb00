import { describe, expect, it } from 'vitest';
import { MessageRate } from '../../src/gateway/rate.js';

function run(rate: MessageRate, n: number, at: number): string[] {
  return Array.from({ length: n }, () => rate.check(at));
}

describe('MessageRate', () => {
  it('limits past the rate and calls more than twice the rate abuse', () => {
    const verdicts = run(new MessageRate(10), 21, 1000);
    expect(verdicts.slice(0, 10)).toEqual(Array(10).fill('ok'));
    expect(verdicts.slice(10, 20)).toEqual(Array(10).fill('limited'));
    expect(verdicts[20]).toBe('abuse');
  });

  it('after a pause for backpressure, lets in what the client could have sent meanwhile', () => {
    const rate = new MessageRate(10);
    rate.check(1000);
    // Not read for 3 s: up to 30 more frames were sent within the rate, and arrive together.
    rate.resumeAfter(4000, 3000);
    const verdicts = run(rate, 41, 4000);
    expect(verdicts.slice(0, 40)).toEqual(Array(40).fill('ok'));
    expect(verdicts[40]).toBe('limited');
  });
});
