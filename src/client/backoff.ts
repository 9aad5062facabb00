/**
 * Reconnect delays: exponential growth with full jitter (AWS Architecture Blog, "Exponential
 * Backoff and Jitter"), so that thousands of clients dropped by one server restart do not come
 * back in lock-step. The delay for attempt n (0-based) is uniform in
 * [minDelay, min(maxDelay, max(minDelay, 100 ms) · factor^(n+1))]: never below minDelay, never
 * above maxDelay, and spread out from the very first attempt, which is the one a server restart
 * sends every client into at once.
 */
export interface BackoffOptions {
  /** Smallest delay in ms (default 500). */
  minDelay: number;
  /** Largest delay in ms (default 20000). */
  maxDelay: number;
  /** Growth per attempt (default 2). */
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { minDelay: 500, maxDelay: 20_000, factor: 2 };

/**
 * A connection (or a subscription) that lasted this long was a success: its backoff starts over
 * after it. Long enough that a server greeting and closing at once (1013, overloaded) is still
 * backed off; short enough that a network dropping the connection every few seconds (a train, a
 * lift) is not: at 10 s, clients cut every 5–15 s waited up to 16 s to reconnect.
 */
export const STABLE_MS = 3_000;

/**
 * What the ceiling grows from when minDelay is below it: with `minDelay: 0` it would stay 0 for
 * ever, a reconnect loop with no delay at all.
 */
const GROWTH_BASE_MS = 100;

export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const { minDelay, maxDelay } = options;
  const factor = Math.max(1, options.factor);
  const n = Math.max(0, Math.floor(attempt));
  // factor^n overflows to Infinity for large n; min() below keeps it bounded.
  const ceiling = Math.min(maxDelay, Math.max(minDelay, GROWTH_BASE_MS) * Math.pow(factor, n + 1));
  const floor = Math.min(minDelay, maxDelay);
  const delay = floor + random() * Math.max(0, ceiling - floor);
  return Math.round(Math.min(maxDelay, Math.max(floor, delay)));
}

export function normalizeBackoff(partial: Partial<BackoffOptions> | undefined): BackoffOptions {
  const minDelay = Math.max(0, partial?.minDelay ?? DEFAULT_BACKOFF.minDelay);
  const maxDelay = Math.max(minDelay, partial?.maxDelay ?? DEFAULT_BACKOFF.maxDelay);
  const factor = Math.max(1, partial?.factor ?? DEFAULT_BACKOFF.factor);
  return { minDelay, maxDelay, factor };
}
