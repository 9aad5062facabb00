/**
 * Full-jitter exponential backoff (the AWS "full jitter" variant): attempt n waits a uniformly
 * random time in [0, min(maxMs, baseMs · 2^(n−1))). Jitter spreads the retries of events that
 * failed together (a downstream outage) so they do not come back as one thundering herd.
 */
import { retryPolicy, type RetryPolicy, type TemConfig } from '../config/index.js';

export type RandomSource = () => number;

/** 2^60 already exceeds any sane cap; stopping there keeps the arithmetic finite. */
const MAX_EXPONENT = 60;

/** The ceiling of the delay for an attempt: min(maxMs, baseMs · 2^(attempt−1)). */
export function backoffCeilingMs(policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>, attempt: number): number {
  const n = Math.max(1, Math.floor(Number.isFinite(attempt) ? attempt : 1));
  const exponent = Math.min(n - 1, MAX_EXPONENT);
  const max = Math.max(0, policy.maxMs);
  return Math.min(max, Math.max(0, policy.baseMs) * 2 ** exponent);
}

/**
 * Delay before retrying after failed attempt `attempt` (1 for the first run). Always an integer
 * in [0, ceiling]; a misbehaving `random` (outside [0, 1), NaN) is clamped, never trusted.
 */
export function backoffDelayMs(
  policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>,
  attempt: number,
  random: RandomSource = Math.random,
): number {
  const ceiling = backoffCeilingMs(policy, attempt);
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(1, Math.max(0, r)) : 0;
  return Math.floor(unit * ceiling);
}

/** Delay for an event type, using its retry policy (exact type, longest `prefix.*`, then `*`). */
export function retryDelayMs(config: TemConfig, type: string, attempt: number, random: RandomSource = Math.random): number {
  return backoffDelayMs(retryPolicy(config, type), attempt, random);
}
