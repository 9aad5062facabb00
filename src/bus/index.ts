/**
 * The bus: Redis when a URL is configured (distributed mode), otherwise in-process memory
 * (embedded mode; pass a shared `hub` to run several nodes in one process).
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../observability/logger.js';
import { MemoryBus, MemoryHub } from './memory.js';
import { RedisBus } from './redis.js';
import type { Bus, NamespaceResolver } from './types.js';

export type * from './types.js';
export { PartialPublishError } from './errors.js';
export { MemoryBus, MemoryHub, type MemoryBusOptions } from './memory.js';
export { RedisBus, type RedisBusOptions } from './redis.js';
export { defaultNamespaces, namespaceResolver } from './namespaces.js';

export interface CreateBusOptions {
  redisUrl?: string;
  /** Redis only: `redisUrl` names one node of a Redis Cluster. */
  cluster?: boolean;
  namespaces: NamespaceResolver;
  /** Redis key and pub/sub prefix (default `tem:`). */
  prefix?: string;
  clock?: Clock;
  /** Memory only: the hub shared by in-process nodes. */
  hub?: MemoryHub;
  /** Redis only: this node's name in CLIENT LIST (e.g. the config's nodeId). */
  name?: string;
  logger?: Logger;
  /** Counts each publish the transport failed (BaseBusOptions.onPublishFailure). */
  onPublishFailure?: () => void;
  /** How long a channel's position outlives its last publication (BaseBusOptions.positionTtlMs). */
  positionTtlMs?: number;
}

export function createBus(opts: CreateBusOptions): Bus {
  const { redisUrl, cluster, namespaces, prefix, clock, hub, name, logger, onPublishFailure, positionTtlMs } = opts;
  if (redisUrl) return new RedisBus({ url: redisUrl, cluster, namespaces, prefix, clock, name, logger, onPublishFailure, positionTtlMs });
  return new MemoryBus({ namespaces, clock, hub, logger, onPublishFailure, positionTtlMs });
}
