#!/usr/bin/env node
// Runs the test suites and says plainly which ones were skipped because a service was missing.
// CI sets TEM_REQUIRE_SERVICES=1 so a missing PostgreSQL or Redis fails the run instead.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const report = join(tmpdir(), `tem-services-${process.pid}.json`);
const result = spawnSync('npx', ['vitest', 'run', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, TEM_SERVICES_REPORT: report },
});
let services = { postgres: true, redis: true };
try {
  services = JSON.parse(readFileSync(report, 'utf8'));
  rmSync(report);
} catch {
  /* vitest failed before global setup ran */
}
const skipped = [];
if (!services.postgres) skipped.push('PostgreSQL suites (start PostgreSQL on 127.0.0.1:5432 or set TEST_DATABASE_URL)');
if (!services.redis) skipped.push('Redis suites (start Redis on 127.0.0.1:6379 or set TEST_REDIS_URL)');
if (services.redisCluster === false) skipped.push('Redis Cluster suites (install redis-server and redis-cli, or set TEST_REDIS_CLUSTER_URL)');
if (skipped.length) {
  console.log('\nSKIPPED because a service was not reachable:');
  for (const s of skipped) console.log(`  - ${s}`);
  console.log('CI runs with TEM_REQUIRE_SERVICES=1, where a missing service fails the run.');
}
process.exit(result.status ?? 1);
