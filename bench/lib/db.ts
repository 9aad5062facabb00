/**
 * A fresh PostgreSQL database per run, dropped at the end (the server is shared, so a run never
 * touches anyone else's database). Pools stay small: max_connections is shared by everyone.
 */
import postgres from 'postgres';
import { PG_ADMIN_URL } from './env.js';

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

function urlFor(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function createDatabase(name: string): Promise<BenchDatabase> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`bad database name ${name}`);
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => undefined });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  let dropped = false;
  return {
    name,
    url: urlFor(name),
    async drop() {
      if (dropped) return;
      dropped = true;
      const sql = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => undefined });
      try {
        // WITH (FORCE) ends sessions a crashed child may have left behind.
        await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await sql.end();
      }
    },
  };
}
