/**
 * Request counters shared by every node of a bus, for limits that hold per key across a cluster
 * (the contract's per-key HTTP rate limit and connection-attempt limit): with two API processes
 * or two gateway nodes behind a load balancer, a key gets its budget once, not once per node.
 *
 * Built on rate-limiter-flexible. Memory: one counter per hub, shared by its in-process nodes.
 * Redis: the library's atomic INCR-with-TTL script. Counting never refuses or stalls a request
 * because Redis is away: while the connection is not ready, or when Redis has not answered
 * within `REDIS_LIMIT_TIMEOUT_MS`, the node counts the request alone (a memory counter with the
 * same budget) until Redis answers again.
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { dropIfTimedOut, type RedisConnection } from './connection.js';
import type { LimitVerdict, SharedLimiter, SharedLimiterOptions } from './types.js';

/** Longest a request waits for Redis to count it before the node counts it alone. */
export const REDIS_LIMIT_TIMEOUT_MS = 250;

function memoryLimiter(options: SharedLimiterOptions): RateLimiterMemory {
  return new RateLimiterMemory({ keyPrefix: options.name, points: options.points, duration: options.windowS });
}

/** One use counted: the library's answer (a refusal is a rejection with RateLimiterRes) as a verdict. */
async function count(limiter: { consume(key: string, points: number): Promise<RateLimiterRes> }, key: string): Promise<LimitVerdict> {
  try {
    const res = await limiter.consume(key, 1);
    return { allowed: true, remaining: Math.max(0, res.remainingPoints), msBeforeNext: Math.max(0, res.msBeforeNext) };
  } catch (err) {
    if (!(err instanceof RateLimiterRes)) throw err;
    return { allowed: false, remaining: 0, msBeforeNext: Math.max(0, err.msBeforeNext) };
  }
}

/** A counter in this process's memory. */
export function localLimiter(options: SharedLimiterOptions): SharedLimiter {
  const limiter = memoryLimiter(options);
  return { points: options.points, consume: (key) => count(limiter, key) };
}

class RedisLimiter implements SharedLimiter {
  private readonly shared: RateLimiterRedis;
  /** This node's own count, used only while Redis cannot answer. */
  private readonly local: RateLimiterMemory;

  constructor(
    private readonly conn: RedisConnection,
    prefix: string,
    options: SharedLimiterOptions,
  ) {
    this.local = memoryLimiter(options);
    this.shared = new RateLimiterRedis({
      storeClient: conn.redis,
      // The budget is part of the key: while processes with different settings run side by side
      // (a configuration rollout), each setting counts on its own instead of in another's window.
      keyPrefix: `${prefix}rl:${options.name}:${options.points}:${options.windowS}`,
      points: options.points,
      duration: options.windowS,
      rejectIfRedisNotReady: true,
      // A key over its budget is refused here for the rest of the window without asking Redis:
      // a client hammering past its limit costs the cluster nothing.
      inMemoryBlockOnConsumed: options.points + 1,
    });
  }

  get points(): number {
    return this.shared.points;
  }

  async consume(key: string): Promise<LimitVerdict> {
    if (this.conn.redis.status !== 'ready') return count(this.local, key);
    const counted = count(this.shared, key);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), REDIS_LIMIT_TIMEOUT_MS)));
    try {
      const verdict = await Promise.race([counted, late]);
      if (verdict !== 'late') return verdict;
    } catch {
      // Redis failed to count it: fall through to this node's count.
    } finally {
      clearTimeout(timer);
    }
    // Too slow or failed: counted here instead. A command that then times out leaves the socket
    // in doubt, so the connection starts over (as every other Redis caller does).
    counted.catch((err: unknown) => dropIfTimedOut(this.conn, err));
    return count(this.local, key);
  }
}

/** A counter in Redis under `{prefix}rl:{name}:{points}:{windowS}:`, with this node's own count as the fallback. */
export function redisLimiter(conn: RedisConnection, prefix: string, options: SharedLimiterOptions): SharedLimiter {
  return new RedisLimiter(conn, prefix, options);
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
