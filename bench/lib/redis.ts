import { Redis } from 'ioredis';
import { REDIS_URL } from './env.js';

/**
 * Deletes every key of a run (SCAN, never FLUSHALL: Redis is shared): keys under its prefix and
 * keys naming its channels or users, which all carry the run tag.
 */
export async function clearRedisKeys(tag: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let deleted = 0;
  try {
    const pattern = `*${tag.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}
