import { describe, expect, it } from 'vitest';
import { LazyAbort } from '../../src/worker/lazy-abort.js';

describe('LazyAbort', () => {
  it('aborts a signal handed out earlier, once, with the first reason', () => {
    const a = new LazyAbort();
    const signal = a.signal;
    const seen: unknown[] = [];
    signal.addEventListener('abort', () => seen.push(signal.reason));
    expect(signal.aborted).toBe(false);
    a.abort('lease lost');
    a.abort('shutting down');
    expect(signal.aborted).toBe(true);
    expect(seen).toEqual(['lease lost']);
    expect(a.signal).toBe(signal);
  });

  it('hands out an already aborted signal when asked after abort', () => {
    const a = new LazyAbort();
    a.abort(new Error('timed out'));
    expect(a.signal.aborted).toBe(true);
    expect((a.signal.reason as Error).message).toBe('timed out');
    expect(a.signal).toBe(a.signal);
  });
});
