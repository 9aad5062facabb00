/**
 * Rate limits. Connection attempts per credential are counted on the bus's shared counter
 * (src/bus/limits.ts): with Redis the limit holds across every gateway node, so a client cannot
 * multiply it by reconnecting through a load balancer; with Redis away, each node counts alone.
 * Frames per connection use a fixed one-second window on the injected clock, cheap enough to
 * run on every frame.
 */
import { createHash } from 'node:crypto';
import type { Bus, SharedLimiter } from '../bus/types.js';

export class ConnectLimiter {
  private readonly limiter: SharedLimiter | null;

  constructor(points: number, windowMs: number, bus: Pick<Bus, 'limiter'>) {
    // The counter's window is whole seconds (rate-limiter-flexible); at least one.
    this.limiter = points > 0 ? bus.limiter({ name: 'ws-connect', points, windowS: Math.max(1, Math.round(windowMs / 1000)) }) : null;
  }

  /** Counts one attempt for this credential; false when over the limit. */
  async attempt(token: string): Promise<boolean> {
    if (!this.limiter) return true;
    // The counter (memory or Redis) holds a digest, never the credential itself.
    const key = createHash('sha256').update(token).digest('base64url');
    return (await this.limiter.consume(key)).allowed;
  }
}

export type RateVerdict = 'ok' | 'limited' | 'abuse';

/**
 * Frames per second for one connection. Past `rate` a frame is refused (ERROR RATE_LIMITED) and
 * the connection stays open, as for any other refused frame; a client that sends more than
 * `burstFactor` times the rate within one window, or stays over the rate for `abuseWindows`
 * windows in a row, is abusive (close 1008).
 */
export class MessageRate {
  private windowStart = 0;
  private count = 0;
  private overWindows = 0;

  constructor(
    private readonly rate: number,
    private readonly abuseWindows = 5,
    private readonly burstFactor = 10,
  ) {}

  check(nowMs: number): RateVerdict {
    if (this.rate <= 0) return 'ok';
    if (nowMs - this.windowStart >= 1000) {
      const consecutive = nowMs - this.windowStart < 2000;
      this.overWindows = this.count > this.rate && consecutive ? this.overWindows + 1 : 0;
      this.windowStart = nowMs;
      this.count = 0;
    }
    this.count++;
    if (this.count <= this.rate) return 'ok';
    if (this.count > this.rate * this.burstFactor || this.overWindows >= this.abuseWindows) return 'abuse';
    return 'limited';
  }

  /**
   * The socket was not read for `pausedMs` (backpressure): what the client sent meanwhile arrives
   * at once. It is allowed as if it had been read as sent, so a client within its rate is never
   * limited, nor closed, for the server's own delay.
   */
  resumeAfter(nowMs: number, pausedMs: number): void {
    this.windowStart = nowMs;
    this.count = -Math.floor((this.rate * pausedMs) / 1000);
  }
}
