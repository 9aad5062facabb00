/**
 * Forward-only migrations: sql/migrations/NNNNNN_name.sql applied in order, each in its own
 * transaction that first takes a cluster-wide advisory lock and then re-checks what is applied,
 * so several processes starting at once apply each migration exactly once (the others wait on
 * the lock, then see it recorded and skip it).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.js';

/** Advisory lock key for migrations ("tem-migr" as hex). */
const MIGRATION_LOCK = 0x74656d2d6d696772n;

/** From src/store (tsx) and from dist/store (built) alike. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../sql/migrations/', import.meta.url));

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .map((file) => /^(\d{6})_([a-z0-9_]+)\.sql$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ id: Number(m[1]), name: m[2]!, sql: readFileSync(`${dir}/${m[0]}`, 'utf8') }))
    .sort((a, b) => a.id - b.id);
}

const TRACKING_SQL = `CREATE TABLE IF NOT EXISTS tem_migrations (
  id integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/**
 * Waits for any other process migrating. Statements here are not bound by the pool's
 * statement_timeout (a wait for another start, or an index built over a large table, may take
 * longer): only by the transaction's own deadline.
 */
async function lock(db: Db): Promise<void> {
  await db.exec('SET LOCAL statement_timeout = 0');
  await db.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK.toString()})`);
}

/** Applies what is pending; returns the ids applied by this call. */
export async function migrate(db: Db, migrations: Migration[] = loadMigrations()): Promise<number[]> {
  // Must come first, under the lock: two concurrent CREATE TABLE IF NOT EXISTS can collide.
  await db.tx(async (tx) => {
    await lock(tx);
    await tx.query(TRACKING_SQL);
  });
  const applied: number[] = [];
  for (const m of migrations) {
    const done = await db.tx(async (tx) => {
      await lock(tx);
      const rows = await tx.query(`SELECT 1 AS ok FROM tem_migrations WHERE id = $1`, [m.id]);
      if (rows.length > 0) return false;
      await tx.exec(m.sql);
      await tx.query(`INSERT INTO tem_migrations (id, name) VALUES ($1, $2)`, [m.id, m.name]);
      return true;
    });
    if (done) applied.push(m.id);
  }
  return applied;
}
