/**
 * The public HTTP API (contract §3) on Fastify. Routes come from routes/index.ts plus
 * `deps.extraRoutes`; permissions are checked by the one auth hook; errors leave as
 * problem+json through the one error handler.
 */
import type { FastifyInstance } from 'fastify';
import { installAuthHook } from './auth-hook.js';
import { createFastify, installRequestMetrics } from './http-common.js';
import { RequestLimiter } from './rate-limit.js';
import { apiRoutes } from './routes/index.js';
import { IngestService } from './service.js';
import type { ApiDeps, RouteDeps } from './types.js';

export async function buildApiServer(deps: ApiDeps): Promise<FastifyInstance> {
  const app = createFastify({ logger: deps.logger, bodyLimit: deps.config.maxBodyBytes });
  const ownsIngest = !deps.ingest;
  const ingest = deps.ingest ?? new IngestService({ store: deps.store, config: deps.config, clock: deps.clock, metrics: deps.metrics });
  const { extraRoutes = [], ingest: _ingest, ...rest } = deps;
  const routeDeps: RouteDeps = { ...rest, ingest };

  installAuthHook(app, deps.authenticator, new RequestLimiter(deps.config, deps.bus));
  installRequestMetrics(app, deps.metrics);
  for (const plugin of [...apiRoutes, ...extraRoutes]) await app.register(plugin, routeDeps);
  // In-flight ingests commit before the store is closed by whoever owns it.
  if (ownsIngest) app.addHook('onClose', async () => ingest.close());
  return app;
}
