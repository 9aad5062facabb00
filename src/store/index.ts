/**
 * Opening a Store: PostgreSQL (postgres.js) when a database URL is given, else the embedded
 * PGlite (in `${dataDir}/pgdata`, or in memory when dataDir is undefined).
 */
import type { Store } from './types.js';
import { SqlStore } from './sql-store.js';
import { PostgresDb } from './postgres-db.js';
import { isTemError } from '../core/errors.js';
import { isLostSession, mapped } from './errors.js';
import { describeFsError } from './fs-errors.js';
import { DiskGuard } from './disk-guard.js';
import { join } from 'node:path';

export interface OpenStoreOptions {
  /** postgres://… — selects PostgreSQL. */
  databaseUrl?: string;
  /** Embedded data directory (PGlite), ignored with databaseUrl; undefined → in memory. */
  dataDir?: string;
  /** PostgreSQL pool size (default 10). */
  poolMax?: number;
  /** Seconds to wait for a PostgreSQL connection (default 5). */
  connectTimeout?: number;
  /** Apply pending migrations before returning (default true). */
  migrate?: boolean;
  /** Embedded only: refuse statements while less than this is free under dataDir (0: no check). */
  minFreeDiskBytes?: number;
  /** Told when the embedded store starts or stops refusing for lack of disk space. */
  onDiskSpace?: (low: boolean, freeBytes: number) => void;
}

export async function createPgliteStore(dataDir?: string, disk: Pick<OpenStoreOptions, 'minFreeDiskBytes' | 'onDiskSpace'> = {}): Promise<SqlStore> {
  // Loaded on demand: PGlite's WebAssembly costs every PostgreSQL-only process start-up time.
  const { PgliteDb } = await import('./pglite-db.js');
  const guard =
    dataDir !== undefined && (disk.minFreeDiskBytes ?? 0) > 0
      ? new DiskGuard({ dir: dataDir, minFreeBytes: disk.minFreeDiskBytes!, onChange: disk.onDiskSpace })
      : undefined;
  const db = await mapped(() => PgliteDb.open(dataDir, guard)).catch((err: unknown) => {
    throw fsFailure(err, dataDir) ?? err;
  });
  return new SqlStore(db);
}

/** A start-up failure of the embedded database's files, saying what and where. */
function fsFailure(err: unknown, dataDir: string | undefined): Error | null {
  const what = describeFsError(err);
  if (what === null) return null;
  // The cause is the file system's own error, not the "internal error" mapDbError made of it.
  const cause = isTemError(err) ? err.cause : err;
  return new Error(`cannot open the embedded database in ${dataDir === undefined ? 'memory' : join(dataDir, 'pgdata')}: ${what}`, { cause });
}

export function createPostgresStore(url: string, options: { poolMax?: number; connectTimeout?: number } = {}): SqlStore {
  return new SqlStore(new PostgresDb({ url, max: options.poolMax, connectTimeout: options.connectTimeout }));
}

/** Tries at the start-up migration when the server ends the session under it. */
const MIGRATE_ATTEMPTS = 5;

export async function openStore(opts: OpenStoreOptions = {}): Promise<Store> {
  const store = opts.databaseUrl
    ? createPostgresStore(opts.databaseUrl, { poolMax: opts.poolMax, connectTimeout: opts.connectTimeout })
    : await createPgliteStore(opts.dataDir, opts);
  if (opts.migrate ?? true) {
    for (let attempt = 1; ; attempt++) {
      try {
        await store.migrate();
        break;
      } catch (err) {
        // A session the server ended (terminated, reset) while migrating is not a database
        // that is down: go on with a new connection, a few times. A refused connect still fails
        // the start at once.
        if (opts.databaseUrl && attempt < MIGRATE_ATTEMPTS && isLostSession(err)) {
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
          continue;
        }
        await store.close().catch(() => undefined);
        throw (opts.databaseUrl ? null : fsFailure(err, opts.dataDir)) ?? err;
      }
    }
  }
  return store;
}

export { SqlStore } from './sql-store.js';
export { mapDbError, isUnavailable } from './errors.js';
export type * from './types.js';
