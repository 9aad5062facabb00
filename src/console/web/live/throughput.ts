/**
 * Events per second by status, counted from the live status changes the console receives
 * (each `event.update` that moves an event into a status counts once for that status).
 * Kept as one-second buckets in a ring covering the last `windowSec` seconds.
 */
import { STATUSES } from './events.js';

export interface Series {
  status: string;
  /** Events per second, oldest first, one point per `step` seconds. */
  points: number[];
}

export class Throughput {
  private readonly counts = new Map<number, Map<string, number>>();
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly windowSec = 300,
    private readonly now: () => number = () => Date.now(),
  ) {}

  record(status: string, at = this.now()): void {
    const sec = Math.floor(at / 1000);
    let m = this.counts.get(sec);
    if (!m) {
      m = new Map();
      this.counts.set(sec, m);
      this.prune(sec);
    }
    m.set(status, (m.get(status) ?? 0) + 1);
    for (const fn of this.listeners) fn();
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Per-status rates, averaged over `step`-second buckets, ending at the last full second. */
  series(step = 5): { series: Series[]; endSec: number; step: number } {
    const endSec = Math.floor(this.now() / 1000);
    const buckets = Math.floor(this.windowSec / step);
    const series = STATUSES.map((status) => {
      const points: number[] = [];
      for (let b = buckets - 1; b >= 0; b--) {
        let sum = 0;
        for (let s = 0; s < step; s++) sum += this.counts.get(endSec - b * step - s)?.get(status) ?? 0;
        points.push(sum / step);
      }
      return { status, points };
    });
    return { series, endSec, step };
  }

  /** Rate over the last `sec` seconds for one status. */
  recent(status: string, sec = 10): number {
    const endSec = Math.floor(this.now() / 1000);
    let sum = 0;
    for (let s = 0; s < sec; s++) sum += this.counts.get(endSec - s)?.get(status) ?? 0;
    return sum / sec;
  }

  private prune(nowSec: number): void {
    for (const k of this.counts.keys()) if (k < nowSec - this.windowSec - 5) this.counts.delete(k);
  }
}
