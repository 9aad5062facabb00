/**
 * Which real services the suites can use. Suites that need PostgreSQL or Redis use
 * `describe.skipIf(!services.postgres)`; scripts/test.mjs prints what was skipped and why, and
 * with TEM_REQUIRE_SERVICES=1 (set by CI) a missing service fails the run instead.
 */
import { inject } from 'vitest';

export const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface AvailableServices {
  postgres: boolean;
  redis: boolean;
  /** A three-node Redis Cluster (test/helpers/redis-cluster.ts). */
  redisCluster: boolean;
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: AvailableServices;
    redisClusterUrl: string;
  }
}

export const services: AvailableServices = inject('services');
/** A node of the test Redis Cluster ('' when there is none). */
export const REDIS_CLUSTER_URL: string = inject('redisClusterUrl');

/** A database URL on the same server with another database name. */
export function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
