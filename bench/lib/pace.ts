/**
 * Open-loop pacing: fires `fn(i, dueMs)` at a steady rate without waiting for earlier calls, so
 * a slow answer never lowers the offered load (a closed loop would hide latency: coordinated
 * omission). `dueMs` is when the call was scheduled (epoch ms, as nowMs()): latency is timed
 * from there, so a load generator that falls behind (a GC pause, a busy event loop) counts its
 * own lag against the result rather than hiding it. How late calls went out is reported.
 */
import { sleep } from './env.js';
import { summarize, type Summary } from './stats.js';

export async function paced(
  ratePerS: number,
  durationS: number,
  fn: (i: number, dueMs: number) => Promise<unknown>,
): Promise<{ sent: number; failed: number; errors: string[]; sendLagMs: Summary }> {
  const total = Math.round(ratePerS * durationS);
  const intervalMs = 1000 / ratePerS;
  const start = performance.now();
  const pending = new Set<Promise<unknown>>();
  let failed = 0;
  const errors: string[] = [];
  const lags: number[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    lags.push(Math.max(0, performance.now() - due));
    const p = fn(i, performance.timeOrigin + due).catch((err: unknown) => {
      failed++;
      if (errors.length < 5) errors.push(err instanceof Error ? err.message : String(err));
    });
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }
  await Promise.all(pending);
  return { sent: total, failed, errors, sendLagMs: summarize(lags) };
}

/** Epoch time in fractional milliseconds (comparable across processes on one machine). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
