/**
 * The Redis presence store's key names (src/presence/redis-keys.ts): every key a presence script
 * is given or builds for a channel hashes to one Redis Cluster slot, that of the channel's
 * bucket, and channels spread over the buckets.
 */
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { fnv1a32, MAX_PRESENCE_BUCKETS, PresenceKeys } from '../../src/presence/redis-keys.js';

const channels = [
  'room:1',
  'room:2',
  'user:alice',
  'live:pr:1',
  'a:u',
  'org.acme@eu=1:team-7:chat_x',
  ...Array.from({ length: 2000 }, (_, i) => `room:${i}:sub`),
];

/** Every key of the calls on `channel` for `user`, as the scripts get or build them. */
function keysOfChannel(keys: PresenceKeys, channel: string, user: string): string[] {
  const bucket = keys.bucketOf(channel);
  return [
    ...keys.entry(channel, user), // UPSERT, LINGER, REMOVE
    keys.expiry(channel), // MEMBERS: KEYS[1]
    keys.userPrefix(channel) + user, // MEMBERS: built from ARGV[2]
    keys.index(bucket), // EXPIRE: KEYS[1]
    `${keys.channelPrefix(bucket)}${channel}/exp`, // EXPIRE: built from ARGV[2]
    `${keys.channelPrefix(bucket)}${channel}/u:${user}`,
  ];
}

describe('presence keys', () => {
  it('hashes channel names with 32-bit FNV-1a over their UTF-8 bytes', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    expect(fnv1a32('é')).toBe(0x1e9de8c1); // bytes c3 a9, not the code unit e9
  });

  it('names the keys of a bucket under the hash tag {p<bucket>}', () => {
    const keys = new PresenceKeys('tem:');
    expect(keys.entry('room:1', 'alice')).toEqual(['tem:pr:{p0}:c:room:1/exp', 'tem:pr:{p0}:c:room:1/u:alice', 'tem:pr:{p0}:idx']);
    expect(keys.userPrefix('room:1')).toBe('tem:pr:{p0}:c:room:1/u:');
    expect(keys.channelPrefix(0)).toBe('tem:pr:{p0}:c:');
    const sixteen = new PresenceKeys('tem:', 16);
    const b = fnv1a32('room:1') % 16;
    expect(sixteen.bucketOf('room:1')).toBe(b);
    expect(sixteen.entry('room:1', 'alice')).toEqual([`tem:pr:{p${b}}:c:room:1/exp`, `tem:pr:{p${b}}:c:room:1/u:alice`, `tem:pr:{p${b}}:idx`]);
  });

  it("never gives one channel's expiry set and another's user hash the same name", () => {
    const keys = new PresenceKeys('tem:');
    // With `:` after the channel, channel `a:u`'s set and user `exp`'s hash in `a` would collide.
    expect(keys.expiry('a:u')).not.toBe(keys.entry('a', 'exp')[1]);
  });

  it('accepts 1 to 1024 buckets', () => {
    for (const n of [1, 2, 16, MAX_PRESENCE_BUCKETS]) expect(new PresenceKeys('tem:', n).buckets).toBe(n);
    for (const n of [0, -1, 1.5, NaN, MAX_PRESENCE_BUCKETS + 1]) expect(() => new PresenceKeys('tem:', n)).toThrow(RangeError);
  });

  it("puts every key of a channel's script calls in one slot, its bucket's", () => {
    for (const buckets of [1, 8, 16, MAX_PRESENCE_BUCKETS]) {
      for (const prefix of ['tem:', 'tenant-a:x:']) {
        const keys = new PresenceKeys(prefix, buckets);
        for (const channel of channels) {
          const slots = new Set(keysOfChannel(keys, channel, 'user-1').map((k) => calculateSlot(k)));
          expect(slots).toEqual(new Set([calculateSlot(`{p${keys.bucketOf(channel)}}`)]));
        }
      }
    }
  });

  it('spreads channels over every bucket, each bucket in a slot of its own', () => {
    for (const buckets of [8, 16]) {
      const keys = new PresenceKeys('tem:', buckets);
      const count = new Array<number>(buckets).fill(0);
      for (const channel of channels) count[keys.bucketOf(channel)]!++;
      const mean = channels.length / buckets;
      expect(Math.min(...count)).toBeGreaterThan(mean * 0.7);
      expect(Math.max(...count)).toBeLessThan(mean * 1.3);
      const slots = new Set(Array.from({ length: buckets }, (_, b) => calculateSlot(keys.index(b))));
      expect(slots.size).toBe(buckets);
    }
  });
});
