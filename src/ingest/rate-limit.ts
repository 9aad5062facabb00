/**
 * Per-key request limits (config.rateLimitPoints per config.rateLimitWindowS; 0 disables).
 * Every limited route answers with RateLimit-Limit/-Remaining/-Reset; a refusal is a 429
 * with Retry-After.
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { FastifyReply } from 'fastify';
import type { TemConfig } from '../config/index.js';
import { createError } from '../core/errors.js';
import type { AuthContext } from '../auth/types.js';

export class RequestLimiter {
  private readonly limiter: RateLimiterMemory | null;
  private readonly points: number;

  constructor(config: Pick<TemConfig, 'rateLimitPoints' | 'rateLimitWindowS'>) {
    this.points = config.rateLimitPoints;
    this.limiter = this.points > 0 ? new RateLimiterMemory({ points: this.points, duration: config.rateLimitWindowS }) : null;
  }

  /** Counts one request for the caller; sets the RateLimit headers; throws RATE_LIMITED. */
  async consume(ctx: AuthContext, reply: FastifyReply): Promise<void> {
    if (!this.limiter) return;
    // Keys are limited per key; JWT users (no key) per user.
    const id = ctx.keyId ?? `jwt:${ctx.principalId}`;
    try {
      const res = await this.limiter.consume(id, 1);
      this.headers(reply, res);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      this.headers(reply, err);
      const retryAfter = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      throw createError('RATE_LIMITED', `Rate limit of ${this.points} requests exceeded; retry in ${retryAfter} s`, { retryAfter });
    }
  }

  private headers(reply: FastifyReply, res: RateLimiterRes): void {
    reply.header('ratelimit-limit', String(this.points));
    reply.header('ratelimit-remaining', String(Math.max(0, res.remainingPoints)));
    reply.header('ratelimit-reset', String(Math.max(0, Math.ceil(res.msBeforeNext / 1000))));
  }
}
