/**
 * LISTEN/NOTIFY for the postgres.js transport on its own connection, kept alive across outages.
 * postgres.js's own listen() re-issues LISTEN once when its connection closes and gives up if
 * that single attempt fails (the database still being down), leaving listeners deaf for good.
 * Here a closed connection starts a retry loop that re-LISTENs every channel until it succeeds,
 * then calls each handler once with an empty payload: notifications may have been missed while
 * away, and every handler treats a wake-up as "look again".
 */
import postgres from 'postgres';
import type { Notify } from './db.js';

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

function quote(channel: string): string {
  return `"${channel.replace(/"/g, '""')}"`;
}

export class PgListener {
  private readonly sql: postgres.Sql;
  private readonly channels = new Map<string, Set<Notify>>();
  private retrying = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;

  /** LISTENs sent and not yet answered: a second listener of the channel waits for it too. */
  private readonly pending = new Map<string, Promise<unknown>>();

  /** `backoff`: seconds before the n-th reconnect attempt (the pool's curve: postgres-db.ts). */
  constructor(url: string, connectTimeout: number, backoff?: (attempt: number) => number) {
    // onnotify/onclose are postgres.js options its typings do not list.
    const options = {
      ...(backoff ? { backoff } : {}),
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      connect_timeout: connectTimeout,
      fetch_types: false,
      onnotice: () => {},
      onnotify: (channel: string, payload: string) => this.dispatch(channel, payload),
      onclose: () => this.lost(),
      connection: { application_name: 'tem-listen' },
    };
    this.sql = postgres(url, options as unknown as postgres.Options<Record<string, never>>);
  }

  async listen(channel: string, cb: Notify): Promise<() => Promise<void>> {
    let set = this.channels.get(channel);
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
      const listening = this.sql.unsafe(`LISTEN ${quote(channel)}`);
      this.pending.set(channel, listening);
      try {
        await listening;
      } catch (err) {
        this.channels.delete(channel);
        throw err;
      } finally {
        this.pending.delete(channel);
      }
    } else {
      // Resolving before the first caller's LISTEN is answered would report a listener that,
      // should that LISTEN fail, never hears anything.
      await this.pending.get(channel);
    }
    set.add(cb);
    return () => this.unlisten(channel, cb);
  }

  private async unlisten(channel: string, cb: Notify): Promise<void> {
    const set = this.channels.get(channel);
    if (!set?.delete(cb) || set.size > 0) return;
    this.channels.delete(channel);
    if (this.closed) return;
    await this.sql.unsafe(`UNLISTEN ${quote(channel)}`).catch(() => undefined);
  }

  private dispatch(channel: string, payload: string): void {
    for (const cb of this.channels.get(channel) ?? []) cb(payload);
  }

  /** The connection closed: LISTENs are gone with it. */
  private lost(): void {
    if (this.closed || this.retrying || this.channels.size === 0) return;
    this.retrying = true;
    this.schedule(RETRY_MIN_MS);
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(() => void this.relisten(delay), delay);
    this.timer.unref();
  }

  private async relisten(delay: number): Promise<void> {
    this.timer = null;
    if (this.closed) return;
    const names = [...this.channels.keys()];
    try {
      if (names.length > 0) await this.sql.unsafe(names.map((n) => `LISTEN ${quote(n)}`).join('; '));
    } catch {
      this.schedule(Math.min(delay * 2, RETRY_MAX_MS));
      return;
    }
    this.retrying = false;
    for (const name of names) this.dispatch(name, '');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.sql.end({ timeout: 5 });
  }
}
