/**
 * Open-loop pacing: fires `fn(i)` at a steady rate without waiting for earlier calls, so a slow
 * answer never lowers the offered load (a closed loop would hide latency: coordinated omission).
 */
import { sleep } from './env.js';

export async function paced(ratePerS: number, durationS: number, fn: (i: number) => Promise<unknown>): Promise<{ sent: number; failed: number; errors: string[] }> {
  const total = Math.round(ratePerS * durationS);
  const intervalMs = 1000 / ratePerS;
  const start = performance.now();
  const pending = new Set<Promise<unknown>>();
  let failed = 0;
  const errors: string[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const p = fn(i).catch((err: unknown) => {
      failed++;
      if (errors.length < 5) errors.push(err instanceof Error ? err.message : String(err));
    });
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }
  await Promise.all(pending);
  return { sent: total, failed, errors };
}

/** Epoch time in fractional milliseconds (comparable across processes on one machine). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
