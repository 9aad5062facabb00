/**
 * Request counters shared by every node of a bus, for limits that hold per key across a cluster
 * (the contract's per-key HTTP rate limit and connection-attempt limit): with two API processes
 * or two gateway nodes behind a load balancer, a key gets its budget once, not once per node.
 *
 * Built on rate-limiter-flexible. Memory: one counter per hub, shared by its in-process nodes.
 * Redis: the library's atomic INCR-with-TTL script, wrapped so that Redis being away (or slow
 * past `REDIS_LIMIT_TIMEOUT_MS`) never refuses or stalls a request: each node then counts on
 * its own (the library's insurance limiter) until Redis answers again.
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { whenReady, type RedisConnection } from './connection.js';
import type { LimitVerdict, SharedLimiter, SharedLimiterOptions } from './types.js';

/** Longest a request waits for Redis to count it before the node counts it alone. */
export const REDIS_LIMIT_TIMEOUT_MS = 250;

class FlexibleLimiter implements SharedLimiter {
  constructor(
    readonly points: number,
    private readonly limiter: Pick<RateLimiterAbstract, 'consume'>,
    /** Resolves once the store can count (a Redis connection's first attempt); never rejects. */
    private readonly ready: () => Promise<unknown> | undefined = () => undefined,
  ) {}

  async consume(key: string): Promise<LimitVerdict> {
    const ready = this.ready();
    if (ready) await ready;
    try {
      const res = await this.limiter.consume(key, 1);
      return { allowed: true, remaining: Math.max(0, res.remainingPoints), msBeforeNext: Math.max(0, res.msBeforeNext) };
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      return { allowed: false, remaining: 0, msBeforeNext: Math.max(0, err.msBeforeNext) };
    }
  }
}

function memoryLimiter(options: SharedLimiterOptions): RateLimiterMemory {
  return new RateLimiterMemory({ keyPrefix: options.name, points: options.points, duration: options.windowS });
}

/** Counters by name and budget: asking twice gives the same counter (a memory hub's nodes share it). */
export class LimiterCache {
  private readonly limiters = new Map<string, SharedLimiter>();

  constructor(private readonly make: (options: SharedLimiterOptions) => SharedLimiter) {}

  get(options: SharedLimiterOptions): SharedLimiter {
    const id = `${options.name}\u0000${options.points}\u0000${options.windowS}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = this.make(options);
      this.limiters.set(id, limiter);
    }
    return limiter;
  }
}

/** A counter in this process's memory. */
export function localLimiter(options: SharedLimiterOptions): SharedLimiter {
  return new FlexibleLimiter(options.points, memoryLimiter(options));
}

/** A counter in Redis under `{prefix}rl:{name}:`, with this node's own count as the fallback. */
export function redisLimiter(conn: RedisConnection, prefix: string, options: SharedLimiterOptions): SharedLimiter {
  const insuranceLimiter = memoryLimiter(options);
  const shared = new RateLimiterRedis({
    storeClient: conn.redis,
    keyPrefix: `${prefix}rl:${options.name}`,
    points: options.points,
    duration: options.windowS,
    // Fail over at once while the connection is down (its commands would reject anyway).
    rejectIfRedisNotReady: true,
    // A key over its budget is refused here for the rest of the window without asking Redis:
    // a client hammering past its limit costs the cluster nothing.
    inMemoryBlockOnConsumed: options.points + 1,
    insuranceLimiter,
  });
  const limiter = new RLWrapperTimeouts({ limiter: shared, timeoutMs: REDIS_LIMIT_TIMEOUT_MS, insuranceLimiter });
  // A node that has just started waits for its first connection like every other Redis caller
  // (whenReady); after that an outage fails over at once.
  return new FlexibleLimiter(options.points, limiter, () => whenReady(conn)?.catch(() => undefined));
}
