import { describe, expect, it } from 'vitest';
import { DiskGuard } from '../../src/store/disk-guard.js';

const MiB = 1024 * 1024;

function guardWith(free: { bytes: number; fail?: boolean }) {
  const changes: [boolean, number][] = [];
  const guard = new DiskGuard({
    dir: '/data/tem',
    minFreeBytes: 128 * MiB,
    statfs: async () => {
      if (free.fail) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return { bavail: BigInt(Math.floor(free.bytes / 4096)), bsize: 4096n };
    },
    onChange: (low, bytes) => changes.push([low, Math.round(bytes / MiB)]),
  });
  return { guard, changes };
}

describe('DiskGuard', () => {
  it('refuses while free space is below the minimum, naming how much is free, where, and the setting', async () => {
    const free = { bytes: 500 * MiB };
    const { guard, changes } = guardWith(free);
    await guard.refresh();
    expect(() => guard.check()).not.toThrow();
    free.bytes = 40 * MiB;
    await guard.refresh();
    let err: unknown;
    try {
      guard.check();
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', retryAfter: 5 });
    expect((err as Error).message).toMatch(/disk is almost full: 40 MiB free under \/data\/tem, at least 128 MiB needed \(TEM_MIN_FREE_DISK_MB\)/);
    free.bytes = 200 * MiB;
    await guard.refresh();
    expect(() => guard.check()).not.toThrow();
    expect(changes).toEqual([
      [true, 40],
      [false, 200],
    ]);
  });

  it('an unreadable file system is no reason to refuse', async () => {
    const free = { bytes: 1 * MiB, fail: true };
    const { guard, changes } = guardWith(free);
    await guard.refresh();
    expect(() => guard.check()).not.toThrow();
    expect(changes).toEqual([]);
  });

  it('reads the real file system', async () => {
    const guard = new DiskGuard({ dir: process.cwd(), minFreeBytes: Number.MAX_SAFE_INTEGER });
    await guard.refresh();
    expect(() => guard.check()).toThrow(/almost full/);
  });
});
