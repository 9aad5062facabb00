/**
 * PGlite transport: the embedded PostgreSQL (WASM) in this process. One connection, so
 * PGlite serialises queries itself; a transaction holds it until it ends.
 */
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { join } from 'node:path';
import type { Db, Notify } from './db.js';
import type { DiskGuard } from './disk-guard.js';
import { CoalescingNotifier, NOTIFY_CHANNELS_SQL } from './notifier.js';

type Runner = Pick<Transaction, 'query' | 'exec'>;

class PgliteTxDb implements Db {
  readonly kind = 'pglite' as const;
  /** Channels to notify once this transaction commits (the direct handle sends at once). */
  readonly toNotify = new Set<string>();
  constructor(
    private readonly runner: Runner,
    private readonly root: PgliteDb,
  ) {}

  async query<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const res = await this.runner.query<T>(text, params as unknown[]);
    return res.rows;
  }

  async exec(script: string): Promise<void> {
    await this.runner.exec(script);
  }

  /** Already in a transaction: nested calls join it. */
  tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return fn(this);
  }

  notify(channels: string[]): void {
    if (this.runner === this.root.pg) this.root.notify(channels);
    else for (const c of channels) this.toNotify.add(c);
  }

  listen(channel: string, cb: Notify): Promise<() => Promise<void>> {
    return this.root.listen(channel, cb);
  }

  async close(): Promise<void> {
    /* owned by the root */
  }
}

export class PgliteDb implements Db {
  readonly kind = 'pglite' as const;
  private readonly direct: PgliteTxDb;
  private readonly notifier = new CoalescingNotifier((channels) => this.query(NOTIFY_CHANNELS_SQL, [JSON.stringify(channels)]));

  /** `guard`: statements are refused while the data directory's disk is almost full (disk-guard.ts). */
  constructor(
    readonly pg: PGlite,
    private readonly guard?: DiskGuard,
  ) {
    this.direct = new PgliteTxDb(pg, this);
  }

  /** `dataDir` undefined → in memory (tests); otherwise the cluster lives in `${dataDir}/pgdata`. */
  static async open(dataDir?: string, guard?: DiskGuard): Promise<PgliteDb> {
    await guard?.start();
    try {
      guard?.check(true);
      const pg = dataDir === undefined ? await PGlite.create() : await PGlite.create(join(dataDir, 'pgdata'));
      return new PgliteDb(pg, guard);
    } catch (err) {
      guard?.stop();
      throw err;
    }
  }

  async query<T>(text: string, params?: readonly unknown[]): Promise<T[]> {
    this.guard?.check();
    return this.direct.query<T>(text, params);
  }

  async exec(script: string): Promise<void> {
    this.guard?.check();
    return this.direct.exec(script);
  }

  async tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    this.guard?.check();
    let txDb: PgliteTxDb | undefined;
    const result = await this.pg.transaction((t) => fn((txDb = new PgliteTxDb(t, this))));
    if (txDb && txDb.toNotify.size > 0) this.notifier.notify(txDb.toNotify);
    return result;
  }

  notify(channels: string[]): void {
    if (!this.pg.closed) this.notifier.notify(channels);
  }

  async listen(channel: string, cb: Notify): Promise<() => Promise<void>> {
    const unlisten = await this.pg.listen(channel, cb);
    return async () => {
      if (!this.pg.closed) await unlisten();
    };
  }

  async close(): Promise<void> {
    this.guard?.stop();
    if (!this.pg.closed) await this.pg.close();
  }
}
