/** What the internal listener's route plugins receive. */
import type { FastifyPluginAsync } from 'fastify';
import type { TokenAuthenticator } from '../auth/types.js';
import type { TemConfig } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Store } from '../store/types.js';
import type { RequestLimiter } from './rate-limit.js';
import type { IngestService } from './service.js';

export interface InternalDeps {
  config: TemConfig;
  logger: Logger;
  authenticator: TokenAuthenticator;
  store?: Store;
  metrics?: Metrics;
  /** For internal routes that ingest on behalf of a gateway connection. */
  ingest?: IngestService;
  /** The public API's per-key request budget, which INGEST frames count against too. */
  limiter?: RequestLimiter;
  /** More internal route plugins, registered like those of internal/index.ts. */
  extraRoutes?: InternalRoutePlugin[];
}

export type InternalRoutePlugin = FastifyPluginAsync<Omit<InternalDeps, 'extraRoutes'>>;
