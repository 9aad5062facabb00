/**
 * What the API's route plugins receive, and the fields it adds to Fastify's types: a route's
 * required permission (`config.permission`, checked by the one auth hook) and the caller's
 * AuthContext on the request.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Authenticator } from '../auth/authenticator.js';
import type { AuthContext } from '../auth/types.js';
import type { Bus } from '../bus/types.js';
import type { TemConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceStore } from '../presence/types.js';
import type { Store } from '../store/types.js';
import type { RequestLimiter } from './rate-limit.js';
import type { IngestService } from './service.js';

export interface ApiDeps {
  store: Store;
  config: TemConfig;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  authenticator: Authenticator;
  bus?: Bus;
  /** Presence of channel members (GET /api/presence); absent when this process has none. */
  presence?: PresenceStore;
  /** Shared with the gateway's INGEST frame; built here when not given (and then closed with the server). */
  ingest?: IngestService;
  /** Per-key request budget, shared with INGEST frames; built here when not given. */
  limiter?: RequestLimiter;
  /** More route plugins (e.g. real-time routes), registered like those of routes/index.ts. */
  extraRoutes?: ApiRoutePlugin[];
  /** When it returns true, /readyz answers 503 (draining before shutdown). */
  isShuttingDown?: () => boolean;
}

/** What every route plugin gets as its options. */
export type RouteDeps = Omit<ApiDeps, 'ingest' | 'extraRoutes'> & { ingest: IngestService };

export type ApiRoutePlugin = FastifyPluginAsync<RouteDeps>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Permission the caller needs (`events.post.event_ingest`); absent = public route. */
    permission?: string;
    /**
     * A POST API route that honours the `Idempotency-Key` header (POST /api/events). Every other
     * one refuses it (http-common.ts): a key it would ignore must not look honoured to a client
     * retrying after a timeout.
     */
    honoursIdempotencyKey?: boolean;
    /** What the refusal of an `Idempotency-Key` header says on this route, when not the default. */
    idempotencyKeyRefusal?: string;
  }
  interface FastifyRequest {
    /** Set by the auth hook on routes that declare a permission. */
    auth?: AuthContext;
  }
}
