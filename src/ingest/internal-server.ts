/**
 * The internal listener (default 127.0.0.1:8081, never the public port): token introspection
 * for gateways and a liveness probe. It shares the public API's error handling.
 */
import type { FastifyInstance } from 'fastify';
import { createFastify, installRequestMetrics } from './http-common.js';
import { internalRoutes } from './internal/index.js';
import type { InternalDeps } from './internal-types.js';

const INTERNAL_BODY_LIMIT = 64 * 1024;

export async function buildInternalServer(deps: InternalDeps): Promise<FastifyInstance> {
  const app = createFastify({ logger: deps.logger, bodyLimit: INTERNAL_BODY_LIMIT, requestTimeoutMs: deps.config.requestTimeoutMs });
  installRequestMetrics(app, undefined);
  const { extraRoutes = [], ...routeDeps } = deps;
  for (const plugin of [...internalRoutes, ...extraRoutes]) await app.register(plugin, routeDeps);
  return app;
}
