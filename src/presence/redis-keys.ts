/**
 * Where the Redis presence store keeps a channel's entries. Channels are spread over `buckets`
 * buckets, and every key of a bucket carries the hash tag `{p<b>}`, so on a Redis Cluster a
 * bucket lives in one hash slot and each presence script (which may touch one slot only) gets
 * keys of one bucket. On a single Redis the buckets change nothing but the key names.
 *
 * Per bucket b (prefix P):
 * - `P pr:{p<b>}:idx`                  ZSET channel → earliest expiry (what expire() walks)
 * - `P pr:{p<b>}:c:<channel>/exp`      ZSET member → expiry
 * - `P pr:{p<b>}:c:<channel>/u:<user>` HASH member → status
 * (redis-scripts.ts says what they hold; EXPIRE_LUA spells the `/exp` and `/u:` ends too.)
 * The `/` ends the channel name (channels never contain it, nor braces): with `:` there, channel
 * `a:u`'s expiry key and user `exp`'s hash in channel `a` would be one key.
 *
 * Every node must use the same number of buckets: a channel's bucket (FNV-1a of its name, modulo
 * the number) decides its keys, and a node with another number neither sees nor sweeps them.
 */

export const MAX_PRESENCE_BUCKETS = 1024;

/** FNV-1a, 32 bits, over the UTF-8 bytes of `text`: stable across processes, versions and hosts. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}

/** The key names of one deployment's presence entries (prefix and number of buckets). */
export class PresenceKeys {
  readonly prefix: string;
  readonly buckets: number;

  constructor(prefix: string, buckets = 1) {
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_PRESENCE_BUCKETS) {
      throw new RangeError(`Presence buckets must be an integer from 1 to ${MAX_PRESENCE_BUCKETS}, not ${buckets}`);
    }
    this.prefix = prefix;
    this.buckets = buckets;
  }

  bucketOf(channel: string): number {
    return fnv1a32(channel) % this.buckets;
  }

  /** The bucket's index of channels by earliest expiry. */
  index(bucket: number): string {
    return `${this.prefix}pr:{p${bucket}}:idx`;
  }

  /** What every channel key of the bucket starts with (EXPIRE_LUA builds its channels' keys on it). */
  channelPrefix(bucket: number): string {
    return `${this.prefix}pr:{p${bucket}}:c:`;
  }

  /** The channel's ZSET of entries by expiry. */
  expiry(channel: string): string {
    return `${this.channelPrefix(this.bucketOf(channel))}${channel}/exp`;
  }

  /** What the channel's user hashes start with (MEMBERS_LUA builds them on it). */
  userPrefix(channel: string): string {
    return `${this.channelPrefix(this.bucketOf(channel))}${channel}/u:`;
  }

  /** KEYS of UPSERT_LUA, LINGER_LUA and REMOVE_LUA: expiry zset, user hash, the bucket's index. */
  entry(channel: string, userId: string): [string, string, string] {
    const bucket = this.bucketOf(channel);
    const base = this.channelPrefix(bucket) + channel;
    return [`${base}/exp`, `${base}/u:${userId}`, this.index(bucket)];
  }
}
