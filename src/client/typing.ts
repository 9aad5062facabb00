/**
 * Typing indicators for one channel. Call start() on every keystroke: TYPING_START goes out at
 * most once per `interval` while typing continues (the server's own indicator lasts 10 s, so a
 * few seconds keeps it alive without flooding), and TYPING_STOP goes out on stop() or by itself
 * after `timeout` without a start().
 */
import type { TimerHandle, Timers } from './timers.js';

export interface TypingOptions {
  interval: number;
  timeout: number;
  send(type: 'TYPING_START' | 'TYPING_STOP'): void;
}

export class TypingThrottle {
  private typing = false;
  private lastStart = -Infinity;
  private idleTimer: TimerHandle | undefined;

  constructor(
    private readonly timers: Timers,
    private readonly options: TypingOptions,
  ) {}

  get isTyping(): boolean {
    return this.typing;
  }

  start(): void {
    const now = this.timers.now();
    if (!this.typing || now - this.lastStart >= this.options.interval) {
      this.options.send('TYPING_START');
      this.lastStart = now;
    }
    this.typing = true;
    this.clearIdle();
    this.idleTimer = this.timers.setTimeout(() => {
      this.idleTimer = undefined;
      this.stop();
    }, this.options.timeout);
  }

  stop(): void {
    this.clearIdle();
    if (!this.typing) return;
    this.typing = false;
    this.lastStart = -Infinity;
    this.options.send('TYPING_STOP');
  }

  /** Forgets the state without sending (the connection is gone; the server stops it by itself). */
  reset(): void {
    this.clearIdle();
    this.typing = false;
    this.lastStart = -Infinity;
  }

  private clearIdle(): void {
    if (this.idleTimer !== undefined) this.timers.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}
