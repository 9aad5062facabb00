/**
 * The Redis side of a distributed gateway for tests: buses, presence and sessions under one key
 * prefix of their own, all closed and their keys deleted by `close()`.
 *
 *   const redis = redisRealtime('gw-redis');
 *   h = await startGatewayHarness({ bus: redis.bus(), presence: redis.presence, sessions: redis.sessions });
 *   await h.close(); await redis.close();
 */
import { Redis } from 'ioredis';
import { RedisBus } from '../../src/bus/index.js';
import { namespaceResolver } from '../../src/bus/namespaces.js';
import { loadConfig } from '../../src/config/index.js';
import { randomBase62 } from '../../src/core/ids.js';
import { RedisPresenceStore, RedisSessionStore } from '../../src/presence/index.js';
import { REDIS_URL } from './services.js';

export interface RedisRealtime {
  prefix: string;
  /** A new bus node (each its own connections), closed by close(). */
  /** A bus under the test's prefix; `url` to reach Redis another way (a TcpProxy). */
  bus(url?: string): RedisBus;
  presence: RedisPresenceStore;
  sessions: RedisSessionStore;
  close(): Promise<void>;
}

export function redisRealtime(label: string): RedisRealtime {
  const prefix = `temtest:${label}:${randomBase62(6)}:`;
  const namespaces = namespaceResolver(loadConfig({ configFile: '/nonexistent/tem.config.json' }, {}));
  const buses: RedisBus[] = [];
  const presence = new RedisPresenceStore({ url: REDIS_URL, prefix });
  const sessions = new RedisSessionStore({ url: REDIS_URL, prefix });
  return {
    prefix,
    bus(url = REDIS_URL) {
      const b = new RedisBus({ url, prefix, namespaces });
      buses.push(b);
      return b;
    },
    presence,
    sessions,
    async close() {
      await Promise.all(buses.map((b) => b.close()));
      await presence.close();
      await sessions.close();
      await deleteRedisKeys(prefix);
    },
  };
}

/** Deletes every Redis key under a test's prefix (its buses', presence's and sessions'). */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const admin = new Redis(REDIS_URL);
  try {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
  } finally {
    await admin.quit();
  }
}
