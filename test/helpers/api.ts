/**
 * A public API server on a test store, with an admin key and helpers to create principals and
 * keys. For any suite that needs to drive the HTTP API (or the IngestService behind it).
 *
 *   const api = await createTestApi({ kind: 'pglite' });
 *   const alice = await api.createPrincipal({ id: 'alice', kind: 'user' });
 *   const res = await api.request('POST', '/api/events', { key: alice.key, body: {...} });
 *   await api.close();
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Authenticator } from '../../src/auth/authenticator.js';
import { ensureAdminKey } from '../../src/auth/bootstrap.js';
import { generateApiKey } from '../../src/auth/keys.js';
import type { Bus } from '../../src/bus/types.js';
import { loadConfig, type TemConfig } from '../../src/config/index.js';
import { ManualClock, systemClock, type Clock } from '../../src/core/clock.js';
import { buildApiServer } from '../../src/ingest/server.js';
import { IngestService } from '../../src/ingest/service.js';
import type { ApiRoutePlugin } from '../../src/ingest/types.js';
import { silentLogger, type Logger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import type { Store } from '../../src/store/types.js';
import { createTestStore, type StoreKind } from './db.js';

export interface TestApiOptions {
  /** Store to create (default pglite); ignored when `store` is given. */
  kind?: StoreKind;
  /** Use this store (not closed by close()). */
  store?: Store;
  /** Config overrides (environment is ignored). */
  config?: Parameters<typeof loadConfig>[0];
  /** Default: the system clock. Pass a ManualClock to control expiry. */
  clock?: Clock;
  bus?: Bus;
  extraRoutes?: ApiRoutePlugin[];
  logger?: Logger;
  /** Also listen on 127.0.0.1 on a free port (url is then set). */
  listen?: boolean;
}

export interface TestPrincipal {
  id: string;
  key: string;
  keyId: string;
}

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: LightMyRequestResponse['headers'];
  body: T;
  raw: LightMyRequestResponse;
}

export interface RequestOptions {
  key?: string;
  body?: unknown;
  /** Sent as-is (no JSON encoding). */
  payload?: string | Buffer;
  headers?: Record<string, string>;
}

export interface TestApi {
  app: FastifyInstance;
  store: Store;
  config: TemConfig;
  clock: Clock;
  metrics: Metrics;
  authenticator: Authenticator;
  ingest: IngestService;
  adminKey: string;
  /** http://127.0.0.1:port when started with listen: true. */
  url?: string;
  /** Creates a principal through the admin API and a key for it. */
  createPrincipal(input: {
    id?: string;
    kind?: 'user' | 'service';
    role?: string;
    extra_permissions?: string[];
    revoked_permissions?: string[];
  }): Promise<TestPrincipal>;
  /** Creates another key for a principal through the admin API. */
  createKey(principalId: string, expiresAt?: Date): Promise<{ key: string; keyId: string }>;
  /** An injected request; JSON bodies are encoded and decoded. */
  request<T = Record<string, unknown>>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  close(): Promise<void>;
}

export async function createTestApi(options: TestApiOptions = {}): Promise<TestApi> {
  const owned = options.store ? null : await createTestStore(options.kind ?? 'pglite');
  const store = options.store ?? owned!.store;
  const config = loadConfig({ configFile: '/nonexistent/tem.config.json', ...options.config }, {});
  const clock = options.clock ?? systemClock;
  const metrics = createMetrics();
  const logger = options.logger ?? silentLogger();
  const authenticator = new Authenticator(store, config, clock);
  await authenticator.start();
  const ingest = new IngestService({ store, config, clock, metrics });
  const adminKey = generateApiKey().key;
  await ensureAdminKey(store, adminKey);
  const app = await buildApiServer({
    store,
    config,
    logger,
    clock,
    metrics,
    authenticator,
    ingest,
    bus: options.bus,
    extraRoutes: options.extraRoutes,
  });
  await app.ready();
  let url: string | undefined;
  if (options.listen) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (address && typeof address === 'object') url = `http://127.0.0.1:${address.port}`;
  }

  const request = async <T>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key !== undefined) headers['x-api-key'] = opts.key;
    let payload: string | Buffer | undefined = opts.payload;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const raw = await app.inject({ method: method as 'GET', url: path, headers, payload });
    let body: unknown = raw.body;
    if (raw.body && /json/.test(String(raw.headers['content-type'] ?? ''))) body = JSON.parse(raw.body);
    return { status: raw.statusCode, headers: raw.headers, body: body as T, raw };
  };

  const createKey = async (principalId: string, expiresAt?: Date) => {
    const res = await request<{ key: string; key_id: string }>('POST', `/api/admin/principals/${encodeURIComponent(principalId)}/keys`, {
      key: adminKey,
      body: expiresAt ? { expires_at: expiresAt.toISOString() } : {},
    });
    if (res.status !== 201) throw new Error(`creating a key failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { key: res.body.key, keyId: res.body.key_id };
  };

  return {
    app,
    store,
    config,
    clock,
    metrics,
    authenticator,
    ingest,
    adminKey,
    url,
    request,
    createKey,
    async createPrincipal(input) {
      const kind = input.kind ?? 'user';
      const res = await request<{ id: string }>('POST', '/api/admin/principals', {
        key: adminKey,
        body: { role: kind, ...input, kind },
      });
      if (res.status !== 201) throw new Error(`creating a principal failed: ${res.status} ${JSON.stringify(res.body)}`);
      const key = await createKey(res.body.id);
      return { id: res.body.id, ...key };
    },
    async close() {
      await app.close();
      await ingest.close();
      await authenticator.close();
      if (owned) await owned.cleanup();
    },
  };
}

export { ManualClock };
