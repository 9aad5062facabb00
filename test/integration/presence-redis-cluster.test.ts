/**
 * The presence scripts on the test Redis Cluster (test/helpers/redis-cluster.ts), run directly
 * with the keys PresenceKeys names, as the store does (the store itself runs the presence
 * conformance suite on the cluster), and checks:
 * - every call's keys, those it is given and those it builds (user hashes, expire's channel
 *   keys), hash to one slot, the bucket's (CLUSTER KEYSLOT): Redis 7 lets a script reach a key
 *   of another slot served by the same node, so a run that succeeds alone would not prove it;
 * - the calls run on the cluster (no CROSSSLOT), over buckets served by different nodes, and a
 *   sweep of every bucket reports each leave once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { randomBase62 } from '../../src/core/ids.js';
import { PresenceKeys } from '../../src/presence/index.js';
import { EXPIRE_LUA, LINGER_LUA, MEMBERS_LUA, REMOVE_LUA, UPSERT_LUA } from '../../src/presence/redis-scripts.js';
import { services, REDIS_CLUSTER_URL } from '../helpers/services.js';
import { deleteClusterKeys } from '../helpers/redis-cluster.js';

const T0 = Date.UTC(2030, 0, 1);
const BUCKETS = 16;

const prefix = `temtest:presence-cluster:${randomBase62(6)}:`;
let cluster: Cluster | undefined;

afterAll(async () => {
  if (!cluster) return;
  // A test's own keys only, on every master.
  await deleteClusterKeys(cluster, `${prefix}*`);
  await cluster.quit();
});

describe.skipIf(!services.redisCluster)('presence scripts on a Redis Cluster', () => {
  const keys = new PresenceKeys(prefix, BUCKETS);
  const channels = Array.from({ length: 24 }, (_, i) => `room:${i}`);
  const member = (user: string, conn: string): string => JSON.stringify([user, conn]);

  const slotOf = async (key: string): Promise<number> => Number(await cluster!.cluster('KEYSLOT', key));
  /** Checks that `callKeys` and `built` (keys the script makes itself) share one slot, then runs the script. */
  async function run<T>(lua: string, callKeys: string[], args: (string | number)[], built: string[] = []): Promise<T> {
    const slots = new Set(await Promise.all([...callKeys, ...built].map(slotOf)));
    expect(slots.size, [...callKeys, ...built].join(' ')).toBe(1);
    return (await cluster!.eval(lua, callKeys.length, ...callKeys, ...args)) as T;
  }

  /** An UPSERT, LINGER or REMOVE: its [before, after], its version checked. */
  async function change(lua: string, callKeys: string[], args: (string | number)[]): Promise<string[]> {
    const [before, after, version] = await run<string[]>(lua, callKeys, args);
    expect(Number(version)).toBeGreaterThan(0);
    return [before!, after!];
  }

  it("gives every script keys of one slot, its channel's bucket's, and runs them", async () => {
    cluster = new Cluster([REDIS_CLUSTER_URL]);
    // Buckets in slots of their own, served by more than one node: the test crosses nodes.
    const bucketSlots = await Promise.all(Array.from({ length: BUCKETS }, (_, b) => slotOf(keys.index(b))));
    expect(new Set(bucketSlots).size).toBe(BUCKETS);
    for (let b = 0; b < BUCKETS; b++) expect(await slotOf(`{p${b}}`)).toBe(bucketSlots[b]);
    const usedBuckets = new Set(channels.map((c) => keys.bucketOf(c)));
    const nodesUsed = new Set([...usedBuckets].map((b) => cluster!.slots[bucketSlots[b]!]?.[0]));
    expect(nodesUsed.size).toBeGreaterThan(1);

    for (const channel of channels) {
      const [exp, alice, index] = keys.entry(channel, 'alice');
      expect(await slotOf(exp)).toBe(bucketSlots[keys.bucketOf(channel)]);
      // UPSERT: alice online until T0 + 1000, bob idle until T0 + 5000.
      expect(await change(UPSERT_LUA, [exp, alice, index], [member('alice', 'c1'), 'online', T0 + 1000, T0, channel, 60_000])).toEqual(['', 'online']);
      expect(await change(UPSERT_LUA, keys.entry(channel, 'bob'), [member('bob', 'c2'), 'idle', T0 + 5000, T0, channel, 60_000])).toEqual(['', 'idle']);
      // MEMBERS builds the user hashes' keys from the prefix it is given.
      const flat = await run<string[]>(MEMBERS_LUA, [exp], [T0, keys.userPrefix(channel)], [keys.userPrefix(channel) + 'alice', keys.userPrefix(channel) + 'bob']);
      expect(flat.sort()).toEqual(['alice', 'bob', 'idle', 'online']);
      // LINGER: alice's connection closed, her entry stays until T0 + 1100.
      expect(await change(LINGER_LUA, [exp, alice, index], [member('alice', 'c1'), T0 + 100, T0 + 1100, channel, 60_000])).toEqual(['online', 'online']);
    }
    // REMOVE: bob leaves room:0 himself.
    expect(await change(REMOVE_LUA, keys.entry('room:0', 'bob'), [member('bob', 'c2'), T0 + 200, 'room:0'])).toEqual(['idle', '']);

    /** EXPIRE over every bucket, as RedisPresenceStore.expire() does; the leaves as `channel/user`. */
    const sweep = async (now: number): Promise<string[]> => {
      const left: string[] = [];
      for (let b = 0; b < BUCKETS; b++) {
        const built = channels.filter((c) => keys.bucketOf(c) === b).flatMap((c) => [`${keys.channelPrefix(b)}${c}/exp`, `${keys.channelPrefix(b)}${c}/u:alice`]);
        for (let more = true; more; ) {
          const out = await run<(string | number)[]>(EXPIRE_LUA, [keys.index(b)], [now, keys.channelPrefix(b), 100, 1000], built);
          more = Number(out[0]) === 1;
          for (let i = 2; i + 3 < out.length; i += 4) if (out[i + 3] === '') left.push(`${out[i]}/${out[i + 1]}`);
        }
      }
      return left.sort();
    };
    expect(await sweep(T0 + 1000)).toEqual([]);
    const aliceLeft = await sweep(T0 + 1100);
    expect(aliceLeft).toEqual(channels.map((c) => `${c}/alice`).sort());
    expect(await sweep(T0 + 1100)).toEqual([]);
    const bobLeft = await sweep(T0 + 5000);
    expect(bobLeft).toEqual(channels.filter((c) => c !== 'room:0').map((c) => `${c}/bob`).sort());

    // Nothing left behind: empty sets and hashes are gone, indexes included.
    for (const node of cluster.nodes('master')) expect(await node.keys(`${prefix}*`)).toEqual([]);
  });
});
