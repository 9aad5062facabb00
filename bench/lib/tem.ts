/**
 * A distributed tem deployment for one run: a fresh database, a unique Redis prefix, an admin
 * key given through TEM_ADMIN_KEY, and the roles the benchmark asks for as child processes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { generateApiKey } from '../../src/auth/keys.js';
import { createDatabase, type BenchDatabase } from './db.js';
import { REDIS_URL, runTag, sleep } from './env.js';
import { freePort } from './ports.js';
import { CLI, spawnNode, type Child, type LogLine, type SpawnOptions } from './proc.js';
import { onCleanup } from './cleanup.js';
import { clearRedisKeys } from './redis.js';

export type TemRole = 'api' | 'worker' | 'maintenance' | 'gateway';

export interface TemDeployment {
  tag: string;
  db: BenchDatabase;
  redisPrefix: string;
  adminKey: string;
  jwtSecret: string;
  apiUrl: string;
  internalUrl: string;
  /** Base env every role of this deployment gets. */
  env: Record<string, string>;
  children: Map<string, Child>;
  /** Starts one more role (e.g. a second gateway, or a worker once events are queued). */
  start(role: TemRole, opts?: { name?: string; env?: Record<string, string>; nodeArgs?: string[] }): Promise<{ child: Child; url?: string }>;
  stop(name: string): Promise<void>;
}

const ROLE_ARGS: Record<TemRole, string[]> = {
  api: ['api'],
  worker: ['worker', '--queue', 'processing'],
  maintenance: ['worker', '--queue', 'maintenance'],
  gateway: ['gateway'],
};

/** Lines that mean a role without a listener (the workers) is up. */
export function isReadyLine(role: TemRole): (l: LogLine) => boolean {
  if (role === 'worker' || role === 'maintenance') {
    return (l) => l.msg === 'listening' || /\b(started|ready|running)\b/i.test(String(l.msg ?? ''));
  }
  return (l) => l.msg === 'listening';
}

export async function deployTem(
  name: string,
  options: { roles: TemRole[]; env?: Record<string, string>; redis?: boolean; echo?: boolean; config?: Record<string, unknown> },
): Promise<TemDeployment> {
  const tag = runTag(name);
  const db = await createDatabase(tag);
  onCleanup(`drop database ${tag}`, () => db.drop());
  const redisPrefix = `${tag}:`;
  if (options.redis !== false) onCleanup(`clear redis keys of ${tag}`, () => clearRedisKeys(tag));
  const dataDir = mkdtempSync(join(tmpdir(), `${tag}-`));
  onCleanup('remove data dir', () => rmSync(dataDir, { recursive: true, force: true }));
  const configPath = join(dataDir, 'tem.config.json');
  writeFileSync(configPath, JSON.stringify(options.config ?? {}, null, 2));
  const adminKey = generateApiKey().key;
  const jwtSecret = generateApiKey().key;
  const httpPort = await freePort();
  const internalPort = await freePort();
  const apiUrl = `http://127.0.0.1:${httpPort}`;
  const internalUrl = `http://127.0.0.1:${internalPort}`;
  const env: Record<string, string> = {
    DATABASE_URL: db.url,
    TEM_ADMIN_KEY: adminKey,
    TEM_JWT_SECRET: jwtSecret,
    TEM_LOG_LEVEL: process.env.BENCH_TEM_LOG_LEVEL ?? 'warn',
    TEM_RATE_LIMIT_POINTS: '0',
    TEM_WS_CONNECT_LIMIT: '0',
    TEM_API_INTERNAL_URL: internalUrl,
    TEM_DATA_DIR: dataDir,
    TEM_CONFIG: configPath,
    TEM_REDIS_PREFIX: redisPrefix,
    ...(options.redis === false ? {} : { REDIS_URL }),
    ...options.env,
  };
  const children = new Map<string, Child>();
  const counts = new Map<TemRole, number>();
  const dep: TemDeployment = {
    tag,
    db,
    redisPrefix,
    adminKey,
    jwtSecret,
    apiUrl,
    internalUrl,
    env,
    children,
    async start(role, opts = {}) {
      const n = (counts.get(role) ?? 0) + 1;
      counts.set(role, n);
      const childName = opts.name ?? (n === 1 ? role : `${role}${n}`);
      const roleEnv: Record<string, string> = { ...env, TEM_NODE_ID: `${tag}-${childName}`, ...opts.env };
      let url: string | undefined;
      if (role === 'api') {
        roleEnv.TEM_HTTP_PORT = String(httpPort);
        roleEnv.TEM_INTERNAL_PORT = String(internalPort);
        url = apiUrl;
      } else if (role === 'gateway') {
        const port = opts.env?.TEM_HTTP_PORT ?? String(await freePort());
        roleEnv.TEM_HTTP_PORT = port;
        roleEnv.TEM_INTERNAL_PORT = String(await freePort());
        url = `http://127.0.0.1:${port}`;
      } else {
        roleEnv.TEM_HTTP_PORT = String(await freePort());
        roleEnv.TEM_INTERNAL_PORT = String(await freePort());
      }
      const spawnOpts: SpawnOptions = { env: roleEnv, nodeArgs: opts.nodeArgs, echo: options.echo || process.env.BENCH_ECHO === '1' };
      const child = spawnNode(childName, CLI, ROLE_ARGS[role], spawnOpts);
      await waitReady(role, child, roleEnv, url);
      children.set(childName, child);
      return { child, url };
    },
    async stop(childName) {
      const child = children.get(childName);
      if (!child) return;
      await child.stop();
      children.delete(childName);
    },
  };
  for (const role of options.roles) await dep.start(role);
  return dep;
}

/**
 * Roles log `"msg":"listening"` at info level, but benchmarks run them at TEM_LOG_LEVEL=warn
 * (info logs every job and connection), where that line is filtered. So: the API and gateways
 * are ready when /healthz answers; workers when they log `listening` (info level) or, at warn,
 * once they have stayed up a few seconds — benchmarks that depend on a worker warm up end to end.
 */
async function waitReady(role: TemRole, child: Child, env: Record<string, string>, url: string | undefined): Promise<void> {
  if (url) {
    await Promise.race([
      waitHttpOk(`${url}/healthz`, 90_000),
      child.exited.then((code) => {
        throw new Error(`${child.name} exited (${code}) during start-up\n${child.tail.join('\n')}`);
      }),
    ]);
    return;
  }
  const verbose = ['info', 'debug', 'trace'].includes(env.TEM_LOG_LEVEL ?? 'info');
  if (verbose) {
    await child.waitForLog(isReadyLine(role), 90_000);
    return;
  }
  await Promise.race([
    sleep(WORKER_SETTLE_MS),
    child.exited.then((code) => {
      throw new Error(`${child.name} exited (${code}) during start-up\n${child.tail.join('\n')}`);
    }),
  ]);
}

const WORKER_SETTLE_MS = 4000;

// ── admin API ───────────────────────────────────────────────────────────────

export async function adminRequest<T>(dep: Pick<TemDeployment, 'apiUrl' | 'adminKey'>, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${dep.apiUrl}${path}`, {
    method,
    headers: { 'x-api-key': dep.adminKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Creates a principal and one key for it; returns the key. */
export async function principalWithKey(
  dep: Pick<TemDeployment, 'apiUrl' | 'adminKey'>,
  id: string,
  kind: 'service' | 'user',
  role: string,
  extraPermissions: string[] = [],
): Promise<string> {
  await adminRequest(dep, 'POST', '/api/admin/principals', { id, kind, role, extra_permissions: extraPermissions });
  const { key } = await adminRequest<{ key: string }>(dep, 'POST', `/api/admin/principals/${encodeURIComponent(id)}/keys`, {});
  return key;
}

/** An end-user JWT (HS256 with TEM_JWT_SECRET) allowed on `channels`. */
export async function userJwt(secret: string, userId: string, channels: string[], ttlS = 3600): Promise<string> {
  return new SignJWT({ channels })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlS)
    .sign(new TextEncoder().encode(secret));
}

/** Polls a URL until it answers 200 (a role that filtered its "listening" line). */
export async function waitHttpOk(url: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > until) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
