import { describe, expect, it, vi } from 'vitest';
import { Emitter } from '../../src/client/index.js';

class Box extends Emitter<{ n: number; s: string }> {
  fire<K extends 'n' | 's'>(k: K, v: { n: number; s: string }[K]): void {
    this.emit(k, v);
  }
}

describe('client Emitter', () => {
  it('on/once/off with typed payloads', () => {
    const box = new Box();
    const got: unknown[] = [];
    const off = box.on('n', (n) => got.push(n));
    box.once('s', (s) => got.push(s));
    box.fire('n', 1);
    box.fire('s', 'a');
    box.fire('s', 'b');
    off();
    box.fire('n', 2);
    expect(got).toEqual([1, 'a']);
    expect(box.listenerCount('n')).toBe(0);
  });

  it('a throwing listener does not stop the others; the error is rethrown on a later task', () => {
    const box = new Box();
    const got: number[] = [];
    const later: (() => void)[] = [];
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void) => {
      later.push(fn);
      return 0;
    }) as unknown as typeof setTimeout);
    try {
      box.on('n', () => {
        throw new Error('listener bug');
      });
      box.on('n', (n) => got.push(n));
      expect(() => box.fire('n', 7)).not.toThrow();
    } finally {
      spy.mockRestore();
    }
    expect(got).toEqual([7]);
    expect(later).toHaveLength(1);
    expect(() => later[0]!()).toThrow('listener bug');
  });
});
