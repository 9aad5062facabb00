/**
 * Databases for tests. PostgreSQL: every call clones a fresh database from a template migrated
 * once per schema (CREATE DATABASE … TEMPLATE is a file copy, far faster than migrating), so test
 * files never share state. The template's name carries a hash of the migrations, so a schema
 * change gets a new template and concurrent runs never drop one another's. PGlite: in memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { Store } from '../../src/store/types.js';
import type { Db } from '../../src/store/db.js';
import { SqlStore } from '../../src/store/index.js';
import { PgliteDb } from '../../src/store/pglite-db.js';
import { loadMigrations, migrate } from '../../src/store/migrate.js';
import { PostgresDb } from '../../src/store/postgres-db.js';

// Not imported from services.ts: that module reads vitest's inject(), which global setup lacks.
const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export type StoreKind = 'pglite' | 'postgres';

export interface TestStore {
  store: Store;
  /** The database URL (postgres only), for processes started by the test. */
  url?: string;
  /** The store's own executor, for tests that must look under the store (catalog, statistics). */
  db: Db;
  /** Empties every table back to the freshly migrated state (cheaper than a new store). */
  reset(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** tem_test_template_<hash of the migrations>. */
export function templateName(): string {
  const hash = createHash('sha256');
  for (const m of loadMigrations()) hash.update(`${m.id}:${m.name}:${m.sql}\n`);
  return `tem_test_template_${hash.digest('hex').slice(0, 12)}`;
}

async function withAdmin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Advisory lock key guarding template creation ("temtmpl" as hex). */
const TEMPLATE_LOCK = 0x74656d746d706cn;

/**
 * Creates the migrated template if it does not exist yet (called from global setup). Several
 * runs at once are safe: creation happens under a session advisory lock and is re-checked there.
 */
export async function ensureTemplate(): Promise<string> {
  const name = templateName();
  await withAdmin(async (sql) => {
    await sql.unsafe(`SELECT pg_advisory_lock(${TEMPLATE_LOCK.toString()})`);
    try {
      const exists = await sql.unsafe(`SELECT 1 FROM pg_database WHERE datname = $1`, [name]);
      if (exists.length > 0) return;
      await sql.unsafe(`CREATE DATABASE "${name}"`);
      const db = new PostgresDb({ url: databaseUrl(name), max: 1 });
      try {
        await migrate(db);
      } catch (err) {
        await db.close();
        await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        throw err;
      }
      await db.close();
      await sql.unsafe(`ALTER DATABASE "${name}" WITH IS_TEMPLATE true`);
      // Templates of older schemas (from earlier runs) are no longer needed; best effort.
      const stale = await sql.unsafe<{ datname: string }[]>(
        `SELECT datname FROM pg_database WHERE datname LIKE 'tem_test_template_%' AND datname <> $1`,
        [name],
      );
      for (const { datname } of stale) {
        await sql
          .unsafe(`ALTER DATABASE "${datname}" WITH IS_TEMPLATE false`)
          .then(() => sql.unsafe(`DROP DATABASE IF EXISTS "${datname}"`))
          .catch(() => undefined);
      }
    } finally {
      await sql.unsafe(`SELECT pg_advisory_unlock(${TEMPLATE_LOCK.toString()})`);
    }
  });
  return name;
}

let counter = 0;

/** A fresh, migrated PostgreSQL database; `drop()` removes it (closing what is still connected). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const template = templateName();
  const name = `tem_t_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  await withAdmin(async (sql) => {
    const exists = await sql.unsafe(`SELECT 1 FROM pg_database WHERE datname = $1`, [template]);
    // Global setup normally made it; a run started another way makes it here.
    if (exists.length === 0) await ensureTemplate();
    await sql.unsafe(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  });
  let dropped = false;
  return {
    url: databaseUrl(name),
    async drop() {
      if (dropped) return;
      dropped = true;
      await withAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

const RESET_SQL = `
TRUNCATE events, event_history, jobs, dead_letters, outbox, outbox_held, processed_effects, channel_members, api_keys, principals,
  maintenance_tasks RESTART IDENTITY CASCADE;
ALTER SEQUENCE lease_tokens RESTART;
DELETE FROM roles WHERE NOT builtin;
UPDATE roles SET permissions = CASE name
  WHEN 'admin' THEN '["*"]'::jsonb
  WHEN 'service' THEN '["events.*", "channels.*", "presence.get.presence_list", "common.*"]'::jsonb
  ELSE '["events.post.event_ingest", "events.get.event_detail", "events.get.event_list", "presence.get.presence_list", "common.*"]'::jsonb
END;
INSERT INTO maintenance_tasks (name, run_at) VALUES ('sweep_leases', now()), ('prune_idempotency', now());`;

function resetter(db: Db): () => Promise<void> {
  return () => db.exec(RESET_SQL);
}

/**
 * A migrated store of that kind. PGlite: in memory (starting one takes seconds, so suites share
 * one and call reset() between tests). PostgreSQL: its own cloned database, pool of 3.
 */
export async function createTestStore(kind: StoreKind): Promise<TestStore> {
  if (kind === 'pglite') {
    const db = await PgliteDb.open();
    const store = new SqlStore(db);
    await store.migrate();
    return { store, db, reset: resetter(db), cleanup: () => store.close() };
  }
  const database = await createTestDatabase();
  const db = new PostgresDb({ url: database.url, max: 3 });
  const store = new SqlStore(db);
  return {
    store,
    db,
    url: database.url,
    reset: resetter(db),
    async cleanup() {
      await store.close().catch(() => undefined);
      await database.drop();
    },
  };
}
