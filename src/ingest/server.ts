/**
 * The public HTTP API (contract §3) on Fastify. Routes come from routes/index.ts plus
 * `deps.extraRoutes`; permissions are checked by the one auth hook; errors leave as
 * problem+json through the one error handler.
 */
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { installAuthHook } from './auth-hook.js';
import { createFastify, installRequestMetrics } from './http-common.js';
import { RequestLimiter } from './rate-limit.js';
import { apiRoutes } from './routes/index.js';
import { IngestService } from './service.js';
import type { ApiDeps, RouteDeps } from './types.js';

export async function buildApiServer(deps: ApiDeps): Promise<FastifyInstance> {
  const app = createFastify({ logger: deps.logger, bodyLimit: deps.config.maxBodyBytes, requestTimeoutMs: deps.config.requestTimeoutMs });
  const ownsIngest = !deps.ingest;
  const ingest = deps.ingest ?? new IngestService({ store: deps.store, config: deps.config, clock: deps.clock, metrics: deps.metrics });
  const { extraRoutes = [], ingest: _ingest, ...rest } = deps;
  const routeDeps: RouteDeps = { ...rest, ingest };

  if (deps.config.corsOrigins) await app.register(cors, corsOptions(deps.config.corsOrigins));
  installAuthHook(app, deps.authenticator, deps.limiter ?? new RequestLimiter(deps.config, deps.bus));
  installRequestMetrics(app, deps.metrics);
  for (const plugin of [...apiRoutes, ...extraRoutes]) await app.register(plugin, routeDeps);
  // In-flight ingests commit before the store is closed by whoever owns it.
  if (ownsIngest) app.addHook('onClose', async () => ingest.close());
  return app;
}

/**
 * Browser pages of the configured origins may call the API with a key or JWT in a header (no
 * cookies: credentials stay off) and read the headers a client acts on.
 */
function corsOptions(setting: string): FastifyCorsOptions {
  const origins = setting.split(',').map((o) => o.trim()).filter(Boolean);
  return {
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-api-key', 'idempotency-key', 'x-request-id'],
    exposedHeaders: ['location', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'idempotent-replayed', 'x-request-id'],
    maxAge: 600,
  };
}
