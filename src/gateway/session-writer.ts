/**
 * Session writes of one node: per connection, one write at a time, and always of its latest
 * state. A write asked for while another is in flight is folded into one more write after it,
 * made with the connection's state as it is then. Two writes of the same session in flight at
 * once could land in either order (a command retried inside the Redis client, a reconnect), and
 * an older state landing last would leave the session without the channel just subscribed: the
 * resume on another node would not bring it back.
 *
 * A write that fails is tried again after a pause, a few times, with the state as it is then,
 * so a Redis blip right after a SUBSCRIBE does not leave the session behind until the next
 * periodic save (a third of the session TTL, minutes by default).
 */
import type { Logger } from 'pino';
import type { Connection } from './connection.js';

/** Pauses before the attempts after a failed write. */
export const SESSION_WRITE_RETRY_MS = [200, 1000, 3000] as const;

interface Slot {
  /** Another write was asked for while this one ran. */
  again: boolean;
  /** One of the writes folded in takes the session over (a resume). */
  takeOver: boolean;
  done: Promise<void>;
}

export interface SessionWriterOptions {
  /** Writes what the connection's session is now (or forgets it); throws when it could not. */
  write: (conn: Connection, takeOver: boolean) => Promise<void>;
  logger: Pick<Logger, 'warn'>;
  retryMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
}

export class SessionWriter {
  private readonly slots = new Map<Connection, Slot>();
  private readonly retryMs: readonly number[];
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: SessionWriterOptions) {
    this.retryMs = options.retryMs ?? SESSION_WRITE_RETRY_MS;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Asks for the connection's session to be written (now, or right after the write in flight). */
  request(conn: Connection, takeOver = false): void {
    const running = this.slots.get(conn);
    if (running) {
      running.again = true;
      running.takeOver ||= takeOver;
      return;
    }
    const slot: Slot = { again: false, takeOver: false, done: Promise.resolve() };
    this.slots.set(conn, slot);
    slot.done = this.run(conn, slot, takeOver).finally(() => this.slots.delete(conn));
  }

  /** Resolves once no write is in flight or waiting (shutdown, before the store closes). */
  async drain(): Promise<void> {
    while (this.slots.size > 0) await Promise.all([...this.slots.values()].map((s) => s.done));
  }

  private async run(conn: Connection, slot: Slot, takeOver: boolean): Promise<void> {
    let failures = 0;
    for (;;) {
      try {
        await this.options.write(conn, takeOver);
        failures = 0;
      } catch (err) {
        const pause = this.retryMs[failures++];
        if (pause === undefined) {
          this.options.logger.warn({ err, connection_id: conn.id, attempts: failures }, 'session save failed');
          failures = 0;
        } else {
          // Tried again with the state as it is after the pause (a takeover stays one).
          await this.sleep(pause);
          slot.again = true;
          slot.takeOver ||= takeOver;
        }
      }
      if (!slot.again) return;
      slot.again = false;
      takeOver = slot.takeOver;
      slot.takeOver = false;
    }
  }
}
