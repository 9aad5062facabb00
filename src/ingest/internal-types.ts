/** What the internal listener's route plugins receive. */
import type { FastifyPluginAsync } from 'fastify';
import type { TokenAuthenticator } from '../auth/types.js';
import type { TemConfig } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Store } from '../store/types.js';

export interface InternalDeps {
  config: TemConfig;
  logger: Logger;
  authenticator: TokenAuthenticator;
  store?: Store;
  metrics?: Metrics;
  /** More internal route plugins, registered like those of internal/index.ts. */
  extraRoutes?: InternalRoutePlugin[];
}

export type InternalRoutePlugin = FastifyPluginAsync<Omit<InternalDeps, 'extraRoutes'>>;
