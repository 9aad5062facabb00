import { describe, expect, it } from 'vitest';
import { MessageRate } from '../../src/gateway/rate.js';

function run(rate: MessageRate, n: number, at: number): string[] {
  return Array.from({ length: n }, () => rate.check(at));
}

describe('MessageRate', () => {
  it('limits past the rate and calls more than ten times the rate in one second abuse', () => {
    const verdicts = run(new MessageRate(10), 101, 1000);
    expect(verdicts.slice(0, 10)).toEqual(Array(10).fill('ok'));
    expect(verdicts.slice(10, 100)).toEqual(Array(90).fill('limited'));
    expect(verdicts[100]).toBe('abuse');
  });

  it('calls staying over the rate five seconds in a row abuse', () => {
    const rate = new MessageRate(10);
    for (let s = 1; s <= 5; s++) expect(run(rate, 12, s * 1000).at(-1)).toBe('limited');
    expect(run(rate, 11, 6000).at(-1)).toBe('abuse');
    // A second within the rate starts the count again.
    const calm = new MessageRate(10);
    for (let s = 1; s <= 4; s++) run(calm, 12, s * 1000);
    expect(run(calm, 5, 5000).at(-1)).toBe('ok');
    for (let s = 6; s <= 9; s++) expect(run(calm, 12, s * 1000).at(-1)).toBe('limited');
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
