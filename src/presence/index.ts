/**
 * Presence and sessions: Redis when a URL is configured (shared by every gateway node),
 * otherwise process memory (embedded mode).
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../observability/logger.js';
import { MemoryPresenceStore, MemorySessionStore } from './memory.js';
import { RedisPresenceStore, RedisSessionStore } from './redis.js';
import type { PresenceStore, SessionStore } from './types.js';

export type * from './types.js';
export { MemoryPresenceStore, MemorySessionStore } from './memory.js';
export { RedisPresenceStore, RedisSessionStore, type RedisStoreOptions } from './redis.js';
export { PresenceKeys, MAX_PRESENCE_BUCKETS } from './redis-keys.js';
export { bestStatus, withOfflineMembers } from './status.js';

export interface CreateStoreOptions {
  redisUrl?: string;
  /** Redis only: `redisUrl` names one node of a Redis Cluster. */
  cluster?: boolean;
  /** Redis key prefix (default `tem:`). */
  prefix?: string;
  /** Memory sessions only: the clock their TTL runs on (presence takes `nowMs` per call). */
  clock?: Clock;
  /** Redis only: this node's name in CLIENT LIST. */
  name?: string;
  /** Redis presence only: buckets channels are spread over (RedisStoreOptions.buckets; default 1, or 16 on a cluster). */
  buckets?: number;
  logger?: Logger;
}

/** Presence buckets on a Redis Cluster (docs/decisions/0028). */
export const CLUSTER_PRESENCE_BUCKETS = 16;

export function createPresenceStore(opts: CreateStoreOptions = {}): PresenceStore {
  const { redisUrl, cluster, prefix, name, logger } = opts;
  // On a cluster the buckets spread presence over several slots (and so several nodes).
  const buckets = opts.buckets ?? (cluster ? CLUSTER_PRESENCE_BUCKETS : 1);
  return redisUrl ? new RedisPresenceStore({ url: redisUrl, cluster, prefix, name, logger, buckets }) : new MemoryPresenceStore();
}

export function createSessionStore(opts: CreateStoreOptions = {}): SessionStore {
  const { redisUrl, cluster, prefix, name, logger, clock } = opts;
  return redisUrl ? new RedisSessionStore({ url: redisUrl, cluster, prefix, name, logger }) : new MemorySessionStore({ clock });
}
