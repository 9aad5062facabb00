import { describe, expect, it } from 'vitest';
import { isUuid, randomBase62, uuidv7, uuidv7Floor } from '../../src/core/ids.js';

describe('ids', () => {
  it('mints distinct, well-formed UUIDv7s in time order', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => uuidv7(1_700_000_000_000 + i));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids.slice(0, 50)) {
      expect(isUuid(id)).toBe(true);
      expect(id[14]).toBe('7');
      expect('89ab').toContain(id[19]!);
    }
    expect([...ids].sort()).toEqual(ids);
  });

  it('counts up within one millisecond, so ids minted together sort in minting order', () => {
    const t = 1_800_000_000_000;
    const ids = Array.from({ length: 3000 }, () => uuidv7(t));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // 4,096 in one millisecond at most: then the next millisecond is borrowed, still in order.
    const more = Array.from({ length: 6000 }, () => uuidv7(t + 1));
    expect([...more].sort()).toEqual(more);
    expect(more.every((id) => isUuid(id) && id[14] === '7' && '89ab'.includes(id[19]!))).toBe(true);
  });

  it('puts the 48-bit millisecond time in the first 12 hex digits', () => {
    for (const t of [0, 1, 0xffff_ffff, 0x1_0000_0000, 1_795_000_000_123, 2 ** 48 - 1]) {
      const hex = uuidv7(t).replace(/-/g, '');
      expect(parseInt(hex.slice(0, 12), 16)).toBe(t);
    }
  });

  it('gives the smallest id of a millisecond: ids minted then or later sort at or above it, earlier ones below', () => {
    for (const t of [0, 1_795_000_000_123, 2 ** 48 - 1]) {
      const floor = uuidv7Floor(t);
      expect(isUuid(floor)).toBe(true);
      expect(parseInt(floor.replace(/-/g, '').slice(0, 12), 16)).toBe(t);
      expect(floor.replace(/-/g, '').slice(12)).toBe('0'.repeat(20));
    }
    const t = 1_795_000_000_123;
    expect(uuidv7(t) >= uuidv7Floor(t)).toBe(true);
    expect(uuidv7(t + 5) >= uuidv7Floor(t + 1)).toBe(true);
    expect(uuidv7(t - 1) < uuidv7Floor(t)).toBe(true);
    expect(uuidv7Floor(-5)).toBe('00000000-0000-0000-0000-000000000000');
  });

  it('mints distinct base62 strings of the asked length across pool refills', () => {
    const keys = Array.from({ length: 3000 }, () => randomBase62(40));
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.every((k) => /^[0-9A-Za-z]{40}$/.test(k))).toBe(true);
  });
});
