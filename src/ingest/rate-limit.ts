/**
 * Per-key request limits (config.rateLimitPoints per config.rateLimitWindowS; 0 disables).
 * Every limited route answers with RateLimit-Limit/-Remaining/-Reset; a refusal is a 429
 * with Retry-After. The count is the bus's shared one (src/bus/limits.ts): with Redis, a key's
 * budget holds across every API process; without, per process.
 */
import type { FastifyReply } from 'fastify';
import { localLimiter } from '../bus/limits.js';
import type { Bus, LimitVerdict, SharedLimiter } from '../bus/types.js';
import type { TemConfig } from '../config/index.js';
import { createError } from '../core/errors.js';
import type { AuthContext } from '../auth/types.js';

export class RequestLimiter {
  private readonly limiter: SharedLimiter | null;

  constructor(config: Pick<TemConfig, 'rateLimitPoints' | 'rateLimitWindowS'>, bus?: Pick<Bus, 'limiter'>) {
    const options = { name: 'http', points: config.rateLimitPoints, windowS: config.rateLimitWindowS };
    this.limiter = options.points > 0 ? (bus ? bus.limiter(options) : localLimiter(options)) : null;
  }

  /** Counts one request for the caller; sets the RateLimit headers; throws RATE_LIMITED. */
  async consume(ctx: AuthContext, reply: FastifyReply): Promise<void> {
    if (!this.limiter) return;
    const verdict = await this.verdict(this.limiter, ctx);
    this.headers(reply, this.limiter.points, verdict);
    this.refuse(this.limiter, verdict);
  }

  /**
   * Counts one request that has no HTTP answer of its own (an INGEST frame: the same rules as
   * POST /api/events, the same budget); throws RATE_LIMITED.
   */
  async count(ctx: AuthContext): Promise<void> {
    if (!this.limiter) return;
    this.refuse(this.limiter, await this.verdict(this.limiter, ctx));
  }

  private verdict(limiter: SharedLimiter, ctx: AuthContext): Promise<LimitVerdict> {
    // Keys are limited per key; JWT users (no key) per user.
    return limiter.consume(ctx.keyId ?? `jwt:${ctx.principalId}`);
  }

  private refuse(limiter: SharedLimiter, verdict: LimitVerdict): void {
    if (verdict.allowed) return;
    const retryAfter = Math.max(1, Math.ceil(verdict.msBeforeNext / 1000));
    throw createError('RATE_LIMITED', `Rate limit of ${limiter.points} requests exceeded; retry in ${retryAfter} s`, { retryAfter });
  }

  private headers(reply: FastifyReply, points: number, verdict: LimitVerdict): void {
    reply.header('ratelimit-limit', String(points));
    reply.header('ratelimit-remaining', String(verdict.remaining));
    reply.header('ratelimit-reset', String(Math.ceil(verdict.msBeforeNext / 1000)));
  }
}
