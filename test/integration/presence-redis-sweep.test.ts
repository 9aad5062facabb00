/**
 * The Redis presence sweep when a dead node's entries all expire at once: each script call
 * removes a bounded number of entries in all (one call over 100 busy channels held Redis for
 * seconds and ran past the command timeout), and a call failing part-way through the sweep
 * still hands back the leaves of the calls before it, whose entries are already gone. With
 * several buckets, a bucket whose call fails does not keep the others from being swept.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { randomBase62 } from '../../src/core/ids.js';
import { PresenceKeys, RedisPresenceStore } from '../../src/presence/index.js';
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

  it("sweeps the other buckets when one bucket's call fails, and that bucket at the next sweep", async () => {
    const bucketPrefix = `${prefix}b:`;
    const keys = new PresenceKeys(bucketPrefix, 4);
    const store = new RedisPresenceStore({ url: REDIS_URL, prefix: bucketPrefix, buckets: 4 });
    stores.push(store);
    const channels = Array.from({ length: 12 }, (_, c) => `room:${c}`);
    const failing = keys.bucketOf('room:0');
    const inFailing = channels.filter((c) => keys.bucketOf(c) === failing);
    expect(inFailing.length).toBeLessThan(channels.length);
    await Promise.all(channels.flatMap((channel) => Array.from({ length: 20 }, (_, u) => store.upsert({ channel, userId: `u${u}`, connectionId: `c${u}`, status: 'online' }, 1000, T0))));

    const script = (store as unknown as { expireScript: (keys: string[], args: unknown[]) => Promise<unknown[]> }).expireScript;
    const swept: string[] = [];
    let failed = false;
    (store as unknown as { expireScript: unknown }).expireScript = async (k: string[], args: unknown[]) => {
      swept.push(k[0]!);
      if (k[0] === keys.index(failing) && !failed) {
        failed = true;
        throw new Error('Redis is unreachable');
      }
      return script(k, args);
    };
    const first = await store.expire(T0 + 1000);
    expect(swept).toEqual([0, 1, 2, 3].map((b) => keys.index(b)));
    expect(new Set(first.map((c) => c.channel))).toEqual(new Set(channels.filter((c) => !inFailing.includes(c))));
    expect(first).toHaveLength((channels.length - inFailing.length) * 20);

    const rest = await store.expire(T0 + 1000);
    expect(new Set(rest.map((c) => c.channel))).toEqual(new Set(inFailing));
    expect(rest).toHaveLength(inFailing.length * 20);
    expect(await store.expire(T0 + 1000)).toEqual([]);
  });

  it('throws when no bucket could be swept', async () => {
    const store = new RedisPresenceStore({ url: REDIS_URL, prefix: `${prefix}down:`, buckets: 4 });
    stores.push(store);
    let calls = 0;
    (store as unknown as { expireScript: unknown }).expireScript = async () => {
      calls++;
      throw new Error('Redis is unreachable');
    };
    await expect(store.expire(T0)).rejects.toThrow('Redis is unreachable');
    expect(calls).toBe(4);
  });
});
