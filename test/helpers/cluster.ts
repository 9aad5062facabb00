/**
 * A distributed deployment as real processes: `tem api`, `tem worker` ×N,
 * `tem worker --queue maintenance` and `tem gateway` ×M on the real PostgreSQL and Redis.
 * Redis traffic can go through a TcpProxy so a test can take Redis away from every role.
 */
import { generateApiKey } from '../../src/auth/keys.js';
import { randomBase62 } from '../../src/core/ids.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { REDIS_URL } from './services.js';
import { spawnTem, type TemProcess } from './processes.js';
import { TcpProxy } from './tcp-proxy.js';

export interface ClusterOptions {
  workers?: number;
  gateways?: number;
  /** Route every role's Redis connections through a proxy the test controls. */
  redisProxy?: boolean;
  env?: Record<string, string>;
}

export interface Cluster {
  db: TestDatabase;
  adminKey: string;
  apiUrl: string;
  internalUrl: string;
  gatewayUrls: string[];
  gateways: TemProcess[];
  api: TemProcess;
  workers: TemProcess[];
  maintenance: TemProcess;
  redisProxy: TcpProxy | null;
  /** Admin call to the API; returns the parsed body. */
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** A user principal with a key. */
  createUser(id: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const db = await createTestDatabase();
  const adminKey = generateApiKey().key;
  let redisProxy: TcpProxy | null = null;
  let redisUrl = REDIS_URL;
  if (options.redisProxy) {
    redisProxy = TcpProxy.forUrl(REDIS_URL, 6379);
    await redisProxy.start();
    redisUrl = redisProxy.url(REDIS_URL);
  }
  const env: Record<string, string | undefined> = {
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    TEM_REDIS_PREFIX: `temtest:${randomBase62(8)}:`,
    TEM_ADMIN_KEY: adminKey,
    TEM_HTTP_PORT: '0',
    TEM_INTERNAL_PORT: '0',
    // Workers serve their metrics on a port of their own (they have no other listener).
    TEM_METRICS_PORT: '0',
    TEM_RATE_LIMIT_POINTS: '0',
    TEM_WS_CONNECT_LIMIT: '0',
    TEM_LOG_LEVEL: 'info',
    ...options.env,
  };
  const procs: TemProcess[] = [];
  const spawn = (args: string[], extra: Record<string, string> = {}) => {
    const p = spawnTem(args, { ...env, ...extra });
    procs.push(p);
    return p;
  };
  try {
    const api = spawn(['api']);
    const apiLog = await api.waitForLog('listening', 90_000);
    const apiUrl = String(apiLog.url);
    const internalUrl = String(apiLog.internal);
    const workers = Array.from({ length: options.workers ?? 2 }, () => spawn(['worker']));
    const maintenance = spawn(['worker', '--queue', 'maintenance']);
    const gateways = Array.from({ length: options.gateways ?? 2 }, () => spawn(['gateway'], { TEM_API_INTERNAL_URL: internalUrl }));
    const gatewayUrls = (await Promise.all(gateways.map((g) => g.waitForLog('listening', 90_000)))).map((l) => String(l.url));
    await Promise.all([...workers, maintenance].map((w) => w.waitForLog('listening', 90_000)));

    const admin = async <T>(method: string, path: string, body?: unknown) => {
      const res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: { 'x-api-key': adminKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
    };
    return {
      db,
      adminKey,
      apiUrl,
      internalUrl,
      gatewayUrls,
      gateways,
      api,
      workers,
      maintenance,
      redisProxy,
      admin,
      async createUser(id) {
        const p = await admin('POST', '/api/admin/principals', { id, kind: 'user', role: 'user' });
        if (p.status !== 201 && p.status !== 200) throw new Error(`create principal ${id}: ${p.status} ${JSON.stringify(p.body)}`);
        const k = await admin<{ key: string }>('POST', `/api/admin/principals/${id}/keys`, {});
        return k.body.key;
      },
      async stop() {
        await Promise.all(procs.map((p) => p.stop()));
        await redisProxy?.stop();
        await db.drop();
      },
    };
  } catch (err) {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await redisProxy?.stop();
    await db.drop();
    throw err;
  }
}
