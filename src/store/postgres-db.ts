/**
 * postgres.js transport: a small pool against a real PostgreSQL. Types are set up so rows look
 * exactly like PGlite's (int8 as number, timestamps as Date, json parsed) and so JSON passed as
 * text to a `$n::jsonb` parameter is sent verbatim rather than encoded a second time.
 * postgres.js connects lazily and reconnects by itself, so after an outage calls work again
 * without anyone reopening the store.
 */
import postgres from 'postgres';
import type { Db, ExecOptions, Notify } from './db.js';
import { CoalescingNotifier, NOTIFY_CHANNELS_SQL } from './notifier.js';
import { PgListener } from './pg-listener.js';

export interface PostgresDbOptions {
  url: string;
  /** Pool size (default 10). */
  max?: number;
  /** Seconds to wait for a connection before failing (default 5). */
  connectTimeout?: number;
  /**
   * Longest a statement may run (default 10 000 ms): the server cancels it (`statement_timeout`)
   * and the call fails with STORE_UNAVAILABLE, the connection kept. A call with no answer at all
   * a grace period later (or a transaction after three times as long) is taken for a stuck
   * connection: it fails the same way and the pool is replaced. See `deadline()`.
   */
  queryTimeoutMs?: number;
}

/**
 * How much longer than the server's statement_timeout the client waits before it takes a call
 * for stuck: long enough for the server's cancellation to arrive first.
 */
function stallGraceMs(queryTimeoutMs: number): number {
  return Math.max(2000, Math.floor(queryTimeoutMs / 2));
}

/** Rejection of a call that outlived its deadline; mapped to STORE_UNAVAILABLE like a lost connection. */
function timedOut(ms: number): Error {
  return Object.assign(new Error(`the database did not answer within ${ms} ms`), { code: 'CONNECT_TIMEOUT' });
}

/**
 * Seconds before a pooled connection tries again after failing to connect: the driver's own
 * curve (3^n / 100 s with jitter), capped at half a second instead of 20 s. Calls queued on a
 * connection wait for its next attempt, so under the driver's cap a request during an outage
 * waited out the whole deadline (10 s) instead of getting its 503 at once, and the pool came
 * back up to 20 s after the database did.
 */
function reconnectDelayS(retries: number): number {
  return (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 0.5);
}

type Sql = postgres.Sql<Record<string, never>>;
type TxSql = postgres.TransactionSql<Record<string, never>>;

const TYPES = {
  int8: {
    to: 20,
    from: [20],
    serialize: (x: unknown) => String(x),
    parse: (x: string) => Number(x),
  },
  jsonText: {
    to: 3802,
    from: [114, 3802],
    serialize: (x: unknown) => (typeof x === 'string' ? x : JSON.stringify(x)),
    parse: (x: string) => JSON.parse(x) as unknown,
  },
};

/**
 * Every operation's SQL is a constant text (values always travel as parameters), so each runs as
 * a named prepared statement, parsed and planned once per connection. Unprepared (the driver's
 * default for unsafe()), each call cost a describe round trip and a parse before it could run.
 */
const PREPARED = { prepare: true } as const;

function toParams(params: readonly unknown[]): postgres.ParameterOrJSON<never>[] {
  return params as postgres.ParameterOrJSON<never>[];
}

class PostgresTxDb implements Db {
  readonly kind = 'postgres' as const;
  /** Channels to notify once this transaction commits. */
  readonly toNotify = new Set<string>();
  constructor(
    private readonly sql: TxSql,
    private readonly root: PostgresDb,
  ) {}

  async query<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const rows = await this.sql.unsafe(text, toParams(params), PREPARED);
    return rows as unknown as T[];
  }

  async exec(script: string): Promise<void> {
    await this.sql.unsafe(script);
  }

  /** Already in a transaction: nested calls join it. */
  tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return fn(this);
  }

  notify(channels: string[]): void {
    for (const c of channels) this.toNotify.add(c);
  }

  listen(channel: string, cb: Notify): Promise<() => Promise<void>> {
    return this.root.listen(channel, cb);
  }

  async close(): Promise<void> {
    /* owned by the root */
  }
}

export class PostgresDb implements Db {
  readonly kind = 'postgres' as const;
  private sql: Sql;
  private readonly options: PostgresDbOptions;
  private readonly url: string;
  private readonly connectTimeout: number;
  private readonly queryTimeoutMs: number;
  private closed = false;
  /** Opened on the first listen() only: most short-lived stores never listen. */
  private listener: PgListener | null = null;
  private readonly notifier = new CoalescingNotifier((channels) => this.query(NOTIFY_CHANNELS_SQL, [JSON.stringify(channels)]));

  constructor(options: PostgresDbOptions) {
    this.options = options;
    this.url = options.url;
    this.connectTimeout = options.connectTimeout ?? 5;
    this.queryTimeoutMs = options.queryTimeoutMs ?? 10_000;
    this.sql = this.pool();
  }

  /** What every connection of this store is opened with; `settings` go in its startup packet. */
  private connectionOptions(settings: Record<string, string | number> = {}) {
    return { connect_timeout: this.connectTimeout, onnotice: () => {}, connection: { application_name: 'tem', ...settings } };
  }

  private pool(): Sql {
    // A slow statement is the server's to cancel (57014, one call failing): were it left to the
    // client deadline, the pool would be replaced and every call in flight on it would fail.
    const settings = { statement_timeout: this.queryTimeoutMs };
    return postgres(this.url, { ...this.connectionOptions(settings), max: this.options.max ?? 10, idle_timeout: 30, backoff: reconnectDelayS, types: TYPES }) as unknown as Sql;
  }

  /**
   * Bounds a call on the pool. Why: after PostgreSQL was unreachable for a few seconds, the
   * driver can leave a connection whose queued queries never settle (seen in the outage test:
   * every later request waited forever). A call past its deadline fails like a lost connection
   * (→ 503), and the whole pool is swapped for a fresh one so later calls cannot queue behind
   * the stuck connection; the old pool is ended in the background. A statement that is merely
   * slow never gets here: the server cancels it first (statement_timeout, set in `pool()`).
   */
  private async deadline<T>(ms: number, run: (sql: Sql) => Promise<T>): Promise<T> {
    const sql = this.sql;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timedOut(ms)), ms);
    });
    try {
      return await Promise.race([run(sql), expired]);
    } catch (err) {
      if ((err as { code?: string }).code === 'CONNECT_TIMEOUT' && this.sql === sql && !this.closed) {
        this.sql = this.pool();
        void sql.end({ timeout: 0 }).catch(() => undefined);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async query<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const run = () => this.deadline(this.queryTimeoutMs + stallGraceMs(this.queryTimeoutMs), (sql) => sql.unsafe(text, toParams(params), PREPARED));
    try {
      return (await run()) as unknown as T[];
    } catch (err) {
      // A pooled connection the server closed while it sat idle (a restart, a terminated
      // backend) fails the next write with EPIPE: the statement never reached a server, so
      // it is safe to send it once more, on a connection the driver opens afresh.
      if ((err as { code?: string }).code !== 'EPIPE' || this.closed) throw err;
      return (await run()) as unknown as T[];
    }
  }

  async exec(script: string, options: ExecOptions = {}): Promise<void> {
    if (!options.isolated) {
      await this.sql.unsafe(script);
      return;
    }
    // A connection of its own, outside the pool: when every pooled connection is busy the driver
    // queues statements on busy ones, and one queued behind a long VACUUM would wait it out. Not a
    // reserved pool connection either: released after its backend died mid-statement (a database
    // restart), the driver hands it out again and a later write fails outside any promise,
    // which ends the process.
    const own = postgres(this.url, { ...this.connectionOptions({ statement_timeout: Math.max(1, Math.floor(options.isolated.timeoutMs)) }), max: 1 });
    try {
      await own.unsafe(script);
    } finally {
      await own.end({ timeout: 1 }).catch(() => undefined);
    }
  }

  async tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    let txDb: PostgresTxDb | undefined;
    const result = await this.deadline(this.queryTimeoutMs * 3 + stallGraceMs(this.queryTimeoutMs), (sql) => sql.begin((tx) => fn((txDb = new PostgresTxDb(tx, this)))));
    if (txDb && txDb.toNotify.size > 0) this.notifier.notify(txDb.toNotify);
    return result as T;
  }

  notify(channels: string[]): void {
    this.notifier.notify(channels);
  }

  listen(channel: string, cb: Notify): Promise<() => Promise<void>> {
    this.listener ??= new PgListener(this.url, this.connectTimeout, reconnectDelayS);
    return this.listener.listen(channel, cb);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.sql.end({ timeout: 5 }), this.listener?.close()]);
  }
}
