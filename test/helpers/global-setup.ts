import { connect } from 'node:net';
import type { TestProject } from 'vitest/node';
import { writeFileSync } from 'node:fs';
import { ensureTemplate } from './db.js';

const PG = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const REDIS = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1500 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export default async function setup(project: TestProject): Promise<void> {
  const postgres = await reachable(PG.hostname, Number(PG.port || 5432));
  const redis = await reachable(REDIS.hostname, Number(REDIS.port || 6379));
  const missing = [!postgres && `PostgreSQL (${PG.host})`, !redis && `Redis (${REDIS.host})`].filter(Boolean);
  if (missing.length && process.env.TEM_REQUIRE_SERVICES === '1') {
    throw new Error(`TEM_REQUIRE_SERVICES=1 but not reachable: ${missing.join(', ')}`);
  }
  // The migrated template every PostgreSQL test database is cloned from (test/helpers/db.ts).
  if (postgres) await ensureTemplate();
  if (process.env.TEM_SERVICES_REPORT) writeFileSync(process.env.TEM_SERVICES_REPORT, JSON.stringify({ postgres, redis }));
  project.provide('services', { postgres, redis });
}
