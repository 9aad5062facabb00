/**
 * Typing notices: TYPING_START / TYPING_STOP become an ephemeral `typing {user_id, is_typing}`
 * event on the channel, which fan-out gives to everyone there except the typist's connections.
 * A start with no stop ends by itself after the timeout (contract: 10 s), and so does typing on a
 * channel the connection leaves. Repeated starts only extend the timer: the others hear once.
 */
import type { Connection } from './connection.js';
import type { GatewayContext } from './context.js';

export class TypingTracker {
  private readonly timers = new Map<Connection, Map<string, NodeJS.Timeout>>();

  constructor(private readonly ctx: GatewayContext) {}

  start(conn: Connection, channel: string): void {
    let mine = this.timers.get(conn);
    if (!mine) this.timers.set(conn, (mine = new Map()));
    const existing = mine.get(channel);
    if (existing) clearTimeout(existing);
    const timer = setTimeout(() => this.stop(conn, channel), this.ctx.tuning.typingTimeoutMs);
    timer.unref?.();
    mine.set(channel, timer);
    if (!existing) this.publish(conn.userId, channel, true);
  }

  stop(conn: Connection, channel: string): void {
    const mine = this.timers.get(conn);
    const timer = mine?.get(channel);
    if (!mine || !timer) return;
    clearTimeout(timer);
    mine.delete(channel);
    if (mine.size === 0) this.timers.delete(conn);
    this.publish(conn.userId, channel, false);
  }

  /** The connection closed: whatever it was typing stops. */
  stopAll(conn: Connection): void {
    for (const channel of this.channelsOf(conn)) this.stop(conn, channel);
  }

  /** How many channels the connection is typing on. */
  count(conn: Connection): number {
    return this.timers.get(conn)?.size ?? 0;
  }

  /** The channels the connection is typing on. */
  channelsOf(conn: Connection): string[] {
    return [...(this.timers.get(conn)?.keys() ?? [])];
  }

  isTyping(conn: Connection, channel: string): boolean {
    return this.timers.get(conn)?.has(channel) ?? false;
  }

  private publish(userId: string, channel: string, isTyping: boolean): void {
    this.ctx.bus.publishControl({ kind: 'ephemeral', channel, event: 'typing', payload: { user_id: userId, is_typing: isTyping } }).catch((err: unknown) => {
      this.ctx.logger.warn({ err, channel }, 'typing notice failed');
    });
  }
}
