import { describe, expect, it } from 'vitest';
import { PendingPerAddress } from '../../src/gateway/pending.js';

describe('pending connections per address', () => {
  it('refuses past the limit for one address, not for another', () => {
    const p = new PendingPerAddress(2);
    expect(p.acquire('10.0.0.1')).not.toBeNull();
    expect(p.acquire('10.0.0.1')).not.toBeNull();
    expect(p.acquire('10.0.0.1')).toBeNull();
    expect(p.acquire('10.0.0.2')).not.toBeNull();
    expect(p.countOf('10.0.0.1')).toBe(2);
    expect(p.total()).toBe(3);
  });

  it('releases a slot once however often its release runs, and forgets empty addresses', () => {
    const deltas: number[] = [];
    const p = new PendingPerAddress(2, (d) => deltas.push(d));
    const a = p.acquire('10.0.0.1')!;
    const b = p.acquire('10.0.0.1')!;
    a();
    a();
    a();
    expect(p.countOf('10.0.0.1')).toBe(1);
    // A repeated release must not hand out a slot that b still holds.
    expect(p.acquire('10.0.0.1')).not.toBeNull();
    expect(p.acquire('10.0.0.1')).toBeNull();
    b();
    b();
    expect(p.countOf('10.0.0.1')).toBe(1);
    expect(deltas.reduce((s, d) => s + d, 0)).toBe(p.total());
  });

  it('keeps no entry for an address without slots', () => {
    const p = new PendingPerAddress(1);
    const release = p.acquire('::1')!;
    expect(p.addresses()).toBe(1);
    release();
    expect(p.addresses()).toBe(0);
    expect(p.total()).toBe(0);
  });

  it('counts but never refuses with limit 0', () => {
    const p = new PendingPerAddress(0);
    const releases = Array.from({ length: 1000 }, () => p.acquire('10.0.0.1'));
    expect(releases.every((r) => r !== null)).toBe(true);
    expect(p.countOf('10.0.0.1')).toBe(1000);
    for (const r of releases) r!();
    expect(p.total()).toBe(0);
  });
});
