/**
 * The Redis presence sweep when a dead node's entries all expire at once: each script call
 * removes a bounded number of entries in all (one call over 100 busy channels held Redis for
 * seconds and ran past the command timeout), and a call failing part-way through the sweep
 * still hands back the leaves of the calls before it, whose entries are already gone.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { randomBase62 } from '../../src/core/ids.js';
import { RedisPresenceStore } from '../../src/presence/index.js';
import { deleteRedisKeys } from '../helpers/redis-realtime.js';
import { REDIS_URL, services } from '../helpers/services.js';

const T0 = Date.UTC(2030, 0, 1);
const prefix = `test:sweep:${randomBase62(6)}:`;
const stores: RedisPresenceStore[] = [];

afterAll(async () => {
  if (!services.redis) return;
  await Promise.all(stores.map((s) => s.close()));
  await deleteRedisKeys(prefix);
});

describe.skipIf(!services.redis)('Redis presence sweep', () => {
  it('removes at most 1,000 entries per call, and keeps the leaves of calls that succeeded before one failed', async () => {
    const store = new RedisPresenceStore({ url: REDIS_URL, prefix });
    stores.push(store);
    const ups: Promise<unknown>[] = [];
    for (let c = 0; c < 15; c++) for (let u = 0; u < 100; u++) ups.push(store.upsert({ channel: `room:${c}`, userId: `u${u}`, connectionId: `c${u}`, status: 'online' }, 1000, T0));
    await Promise.all(ups);

    const script = (store as unknown as { expireScript: (...a: unknown[]) => Promise<unknown[]> }).expireScript;
    const removedPerCall: number[] = [];
    let calls = 0;
    (store as unknown as { expireScript: unknown }).expireScript = async (...args: unknown[]) => {
      if (++calls === 2) throw new Error('Redis is unreachable');
      const out = await script(...args);
      removedPerCall.push((out.length - 2) / 4);
      return out;
    };
    const first = await store.expire(T0 + 1000);
    expect(first).toHaveLength(1000);
    expect(first.every((c) => c.kind === 'leave')).toBe(true);
    expect(removedPerCall).toEqual([1000]);

    const rest = await store.expire(T0 + 1000);
    expect(rest).toHaveLength(500);
    const all = [...first, ...rest].map((c) => `${c.channel}/${c.userId}`);
    expect(new Set(all).size).toBe(1500);
    expect(await store.members('room:14', T0)).toEqual([]);
  });
});
