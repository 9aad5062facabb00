/**
 * Dead-connection detection by elapsed time, not by counting timer ticks.
 *
 * The client PINGs every `interval` (the server's heartbeat_interval, from HELLO_ACK) and the
 * server answers PONG, so on a healthy connection some frame arrives at least once per interval.
 * A connection is judged by `now - lastReceived`, read from the clock when a timer fires.
 *
 * Browsers throttle timers in background tabs (to once a minute, or suspend them), and a laptop
 * can sleep. When the timer finally fires, a lot of time has passed and no PING went out in the
 * meantime, so nothing came back either: silence alone proves nothing, and the socket may also
 * hold frames that have not been dispatched yet. So the check never disconnects on the spot:
 * when the silence is past the deadline it sends a probe PING and looks again after `grace`
 * ms; only if nothing at all arrived since the probe was sent is the connection declared dead.
 * If the grace timer is itself delayed, a live socket has had even longer to answer, so a late
 * timer can only make the verdict more lenient, never wrong.
 */
import type { TimerHandle, Timers } from './timers.js';

export interface HeartbeatOptions {
  /** PING period in ms. */
  interval: number;
  /** How long a probe may go unanswered, in ms. */
  grace: number;
  sendPing(): void;
  onDead(silentForMs: number): void;
}

export class Heartbeat {
  private timer: TimerHandle | undefined;
  private lastReceived = 0;
  private lastPingAt = 0;
  private probeSentAt: number | undefined;
  private running = false;

  constructor(
    private readonly timers: Timers,
    private readonly options: HeartbeatOptions,
  ) {}

  /** Silence past which a probe is sent: one missed PONG plus the grace period. */
  get deadline(): number {
    return this.options.interval + this.options.grace;
  }

  start(): void {
    this.stop();
    this.running = true;
    this.lastReceived = this.timers.now();
    this.lastPingAt = this.lastReceived;
    this.schedule(this.options.interval);
  }

  stop(): void {
    this.running = false;
    this.probeSentAt = undefined;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Call on every frame received. */
  received(): void {
    this.lastReceived = this.timers.now();
  }

  private schedule(ms: number): void {
    this.timer = this.timers.setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    const now = this.timers.now();
    // A wall clock set backwards must not make the connection look fresher than it is forever.
    if (now < this.lastReceived) this.lastReceived = now;

    if (this.probeSentAt !== undefined) {
      const probe = this.probeSentAt;
      this.probeSentAt = undefined;
      if (this.lastReceived >= probe) {
        this.ping(now);
        this.scheduleNext(now);
      } else {
        this.running = false;
        this.options.onDead(now - this.lastReceived);
      }
      return;
    }

    if (now - this.lastReceived >= this.deadline) {
      this.probeSentAt = now;
      this.ping(now);
      this.schedule(this.options.grace);
      return;
    }
    if (now - this.lastPingAt >= this.options.interval) this.ping(now);
    this.scheduleNext(now);
  }

  private ping(now: number): void {
    this.lastPingAt = now;
    this.options.sendPing();
  }

  /**
   * Wakes for whichever comes first: the next PING, or the moment the silence reaches the
   * deadline. Waking only to ping, a server gone silent right after a PONG was found a whole
   * interval late (about 65 s instead of 40 with the defaults).
   */
  private scheduleNext(now: number): void {
    const next = Math.min(this.lastPingAt + this.options.interval, this.lastReceived + this.deadline);
    this.schedule(Math.max(1, next - now));
  }
}
