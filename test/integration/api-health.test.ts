/**
 * Health, readiness and metrics — with the database up, with it unreachable (a store pointed at
 * a closed port), and with the Redis bus up or down.
 */
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authenticator } from '../../src/auth/authenticator.js';
import { RedisBus } from '../../src/bus/redis.js';
import { defaultNamespaces } from '../../src/bus/namespaces.js';
import { generateApiKey } from '../../src/auth/keys.js';
import { loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/core/clock.js';
import { buildApiServer } from '../../src/ingest/server.js';
import { IngestService } from '../../src/ingest/service.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createPostgresStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { createTestApi, type TestApi } from '../helpers/api.js';
import { authContext } from '../helpers/auth-context.js';
import { REDIS_URL, services } from '../helpers/services.js';

const kind = services.postgres ? 'postgres' : 'pglite';
const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe(`health with the database up (${kind})`, () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi({ kind });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('reports ok with the embedded bus disabled and the package version', async () => {
    const res = await api.request('GET', '/api/v1/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', database: 'ok', redis: 'disabled', version: pkg.version });
    expect((await api.request('GET', '/healthz')).status).toBe(200);
    expect(await api.request('GET', '/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } });
  });

  it('serves Prometheus metrics with request counts and database gauges, without credentials', async () => {
    const user = await api.createPrincipal({ kind: 'user' });
    await api.request('POST', '/api/events', { key: user.key, body: { type: 'metric.test', payload: {} } });
    await api.request('GET', '/api/events/nope', { key: user.key });
    const res = await api.request('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.body as unknown as string;
    expect(text).toMatch(/tem_http_requests_total\{method="POST",route="\/api\/events",status="202"\} 1/);
    expect(text).toMatch(/tem_http_requests_total\{method="GET",route="\/api\/events\/:id",status="400"\} 1/);
    // prom-client's standard process metrics under their usual names.
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(text).toMatch(/tem_http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="\/api\/events"\}/);
    expect(text).toMatch(/tem_events\{status="queued"\} 1/);
    expect(text).toMatch(/tem_queue_depth 1/);
    expect(text).toMatch(/tem_events_ingested_total 1/);
    expect(text).toMatch(/^tem_jobs_leased 0$/m);
    expect(text).toMatch(/^tem_database_up 1$/m);
    const age = Number(/^tem_queue_oldest_age_seconds (\S+)$/m.exec(text)?.[1]);
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(60);
    // Once a worker holds the job: nothing ready, one leased, no age.
    const [job] = await api.store.claim({ queue: 'processing', workerId: 'metrics-test', limit: 1, leaseMs: 60_000, now: new Date() });
    expect(job).toBeDefined();
    const after = (await api.request('GET', '/metrics')).body as unknown as string;
    expect(after).toMatch(/^tem_queue_depth 0$/m);
    expect(after).toMatch(/^tem_jobs_leased 1$/m);
    expect(after).toMatch(/^tem_queue_oldest_age_seconds 0$/m);
    expect(after).toMatch(/tem_events\{status="processing"\} 1/);
  });
});

describe.skipIf(!services.redis)('health with the Redis bus', () => {
  let api: TestApi;
  let up: RedisBus;
  let down: RedisBus;
  beforeAll(async () => {
    up = new RedisBus({ url: REDIS_URL, namespaces: defaultNamespaces, prefix: `tem-test-api-health-${process.pid}:` });
    down = new RedisBus({ url: `redis://127.0.0.1:${await closedPort()}`, namespaces: defaultNamespaces, connectTimeoutMs: 200, commandTimeoutMs: 200 });
    api = await createTestApi({ kind, bus: up });
  });
  afterAll(async () => {
    await api?.close();
    await up?.close();
    await down?.close();
  });

  it('reports redis ok when it answers, and degraded (still 200) when it does not', async () => {
    expect((await api.request('GET', '/api/v1/health')).body).toMatchObject({ status: 'ok', redis: 'ok' });
    const degraded = await createTestApi({ store: api.store, bus: down });
    try {
      const res = await degraded.request('GET', '/api/v1/health');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'degraded', database: 'ok', redis: 'down' });
    } finally {
      await degraded.close();
    }
  });
});

describe('with the database unreachable', () => {
  let store: Store;
  let app: FastifyInstance;
  let ingest: IngestService;
  let authenticator: Authenticator;
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    store = createPostgresStore(`postgres://postgres@127.0.0.1:${await closedPort()}/none`, { poolMax: 1, connectTimeout: 1 });
    const config = loadConfig({ configFile: '/nonexistent.json' }, {});
    const metrics = createMetrics();
    authenticator = new Authenticator(store, config, systemClock);
    ingest = new IngestService({ store, config, clock: systemClock, metrics });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    app = await buildApiServer({ store, config, logger: pino({ level: 'info' }, sink), clock: systemClock, metrics, authenticator, ingest });
  });
  afterAll(async () => {
    await app?.close();
    await ingest?.close();
    await store?.close();
  });

  it('answers health 503 with database down, readyz 503 with the reason, healthz 200', async () => {
    const health = await app.inject({ method: 'GET', url: '/api/v1/health' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({ status: 'down', database: 'down', redis: 'disabled' });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'not_ready', reason: 'database unavailable', detail: expect.any(String) });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('still serves /metrics', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('tem_http_requests_total');
    // The database figures are unknown, not stale or zero.
    expect(res.body).toMatch(/^tem_database_up 0$/m);
    expect(res.body).toMatch(/^tem_queue_depth nan$/im);
    expect(res.body).toMatch(/^tem_queue_oldest_age_seconds nan$/im);
    expect(res.body).not.toMatch(/^tem_events\{/m);
  });

  it('answers authenticated requests 503 STORE_UNAVAILABLE with Retry-After, never 500', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/events', headers: { 'x-api-key': generateApiKey().key }, payload: { type: 'x', payload: {} } });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.json()).toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
    // Not a fault of the request: warn lines naming the code, no error and no stack per request
    // for the length of an outage.
    const lines = logs.filter((l) => l.request_id === res.headers['x-request-id']);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, 'request failed: a dependency is unavailable'],
      [40, 'request completed'],
    ]);
    expect(lines[0]).toMatchObject({ code: 'STORE_UNAVAILABLE', reason: expect.any(String) });
    expect(JSON.stringify(lines)).not.toContain('"stack"');
  });

  it('rejects every request waiting in a failed group commit with the store error', async () => {
    const ctx = authContext({ principalId: 'svc', kind: 'service', userId: 'svc', role: 'service', permissions: ['*'], keyId: 'k', via: 'key' });
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => ingest.ingest(ctx, { type: 'x', payload: { i } })));
    expect(results.every((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'STORE_UNAVAILABLE')).toBe(true);
  });
});
