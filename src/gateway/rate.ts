/**
 * Rate limits. Connection attempts per credential use rate-limiter-flexible (memory: a gateway
 * node limits what reaches it; a cluster-wide limit would need Redis and buys little here, since
 * each attempt costs an authentication the API rate-limits anyway). Frames per connection use a
 * fixed one-second window on the injected clock, cheap enough to run on every frame.
 */
import { createHash } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

export class ConnectLimiter {
  private readonly limiter: RateLimiterMemory | null;

  constructor(points: number, windowMs: number) {
    this.limiter = points > 0 ? new RateLimiterMemory({ points, duration: windowMs / 1000 }) : null;
  }

  /** Counts one attempt for this credential; false when over the limit. */
  async attempt(token: string): Promise<boolean> {
    if (!this.limiter) return true;
    // The limiter's memory holds a digest, never the credential itself.
    const key = createHash('sha256').update(token).digest('base64url');
    try {
      await this.limiter.consume(key);
      return true;
    } catch (err) {
      if (err instanceof RateLimiterRes) return false;
      throw err;
    }
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
