/**
 * A three-master Redis Cluster for the suites that run on one (TEST_REDIS_CLUSTER_URL names a
 * node of an existing one). Started by the global setup from the machine's own `redis-server` on
 * ports 21379–21381 (their cluster-bus ports 31379–31381), below the range the kernel hands out to
 * outgoing connections (TEST_REDIS_CLUSTER_BASE_PORT moves them), unless one already answers
 * there, and shut down after the run if it was
 * started here. Nothing is kept on disk beyond the nodes' cluster files in a temporary folder.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';

const run = promisify(execFile);
const BASE_PORT = Number(process.env.TEST_REDIS_CLUSTER_BASE_PORT ?? 21379);

const HOST = '127.0.0.1';

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

async function clusterOk(port: number): Promise<boolean> {
  try {
    return (await cli(port, 'cluster', 'info')).includes('cluster_state:ok');
  } catch {
    return false;
  }
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`Redis Cluster: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A message published on the first node reaches a subscriber of the last (the nodes have met). */
async function pubSubCrossesNodes(ports: number[]): Promise<boolean> {
  const sub = new Redis({ host: HOST, port: ports[2], lazyConnect: true });
  const pub = new Redis({ host: HOST, port: ports[0], lazyConnect: true });
  try {
    await sub.subscribe('tem-cluster-check');
    const got = new Promise<boolean>((resolve) => {
      sub.once('message', () => resolve(true));
      setTimeout(() => resolve(false), 500);
    });
    await pub.publish('tem-cluster-check', 'hi');
    return await got;
  } catch {
    return false;
  } finally {
    sub.disconnect();
    pub.disconnect();
  }
}

/**
 * Starts the cluster (on three ports from `basePort`) unless it is up; returns its URL and how
 * to stop it (null: not ours).
 */
export async function ensureRedisCluster(basePort = BASE_PORT): Promise<{ url: string; stop: (() => Promise<void>) | null }> {
  const ports = [basePort, basePort + 1, basePort + 2];
  const url = `redis://${HOST}:${ports[0]}`;
  if (await clusterOk(ports[0]!)) return { url, stop: null };
  const dir = mkdtempSync(join(tmpdir(), 'tem-redis-cluster-'));
  for (const port of ports) {
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', HOST, '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--save', '', '--appendonly', 'no', '--logfile', join(dir, `${port}.log`)],
      { stdio: 'ignore', detached: true },
    );
    child.unref();
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  }
  for (const port of ports) await waitUntil(async () => (await cli(port, 'ping').catch(() => '')).includes('PONG'), `node ${port}`);
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
  for (const port of ports) await waitUntil(() => clusterOk(port), `cluster state ok on ${port}`);
  await waitUntil(() => pubSubCrossesNodes(ports), 'pub/sub between nodes');
  const stop = async (): Promise<void> => {
    await Promise.all(ports.map((port) => cli(port, 'shutdown', 'nosave').catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  };
  return { url, stop };
}

/** A cluster client that knows the cluster's nodes (before `ready` it knows none). */
export async function readyCluster(url: string): Promise<Cluster> {
  const cluster = new Cluster([url]);
  if (cluster.status !== 'ready') await new Promise((resolve) => cluster.once('ready', resolve));
  return cluster;
}

/** Deletes the keys matching `pattern` on every master (SCAN walks one node). */
export async function deleteClusterKeys(cluster: Cluster, pattern: string): Promise<void> {
  await Promise.all(
    cluster.nodes('master').map(async (node) => {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        for (const key of keys) await node.del(key);
        cursor = next;
      } while (cursor !== '0');
    }),
  );
}

/**
 * A cluster a test may pause or reshard: one of its own from `basePort` (the shared one serves
 * suites running in parallel), or TEST_REDIS_CLUSTER_URL's when one is given.
 */
export async function disruptableCluster(basePort: number): Promise<{ url: string; stop: (() => Promise<void>) | null }> {
  if (process.env.TEST_REDIS_CLUSTER_URL) return { url: process.env.TEST_REDIS_CLUSTER_URL, stop: null };
  return ensureRedisCluster(basePort + (BASE_PORT - 21379));
}
