import { connect } from 'node:net';
import type { TestProject } from 'vitest/node';
import { writeFileSync } from 'node:fs';
import { ensureTemplate } from './db.js';
import { ensureRedisCluster } from './redis-cluster.js';

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

/**
 * The Redis Cluster suites' cluster: TEST_REDIS_CLUSTER_URL, or one started here from the
 * machine's redis-server (stopped again by the returned teardown).
 */
async function redisCluster(): Promise<{ url: string | null; stop: (() => Promise<void>) | null; error?: string }> {
  if (process.env.TEST_REDIS_CLUSTER_URL) return { url: process.env.TEST_REDIS_CLUSTER_URL, stop: null };
  try {
    return await ensureRedisCluster();
  } catch (err) {
    return { url: null, stop: null, error: err instanceof Error ? err.message : String(err) };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const postgres = await reachable(PG.hostname, Number(PG.port || 5432));
  const redis = await reachable(REDIS.hostname, Number(REDIS.port || 6379));
  const cluster = await redisCluster();
  const missing = [!postgres && `PostgreSQL (${PG.host})`, !redis && `Redis (${REDIS.host})`, !cluster.url && `a Redis Cluster (${cluster.error})`].filter(Boolean);
  if (missing.length && process.env.TEM_REQUIRE_SERVICES === '1') {
    throw new Error(`TEM_REQUIRE_SERVICES=1 but not reachable: ${missing.join(', ')}`);
  }
  // The migrated template every PostgreSQL test database is cloned from (test/helpers/db.ts).
  if (postgres) await ensureTemplate();
  const services = { postgres, redis, redisCluster: cluster.url !== null };
  if (process.env.TEM_SERVICES_REPORT) writeFileSync(process.env.TEM_SERVICES_REPORT, JSON.stringify(services));
  project.provide('services', services);
  project.provide('redisClusterUrl', cluster.url ?? '');
  return async () => {
    await cluster.stop?.();
  };
}
