/**
 * What the embedded process and `tem api` share: the authenticator (with key revocations
 * forwarded to gateways), the ingest service, the public API with the console, and the internal
 * listener. Built here once so the two roots cannot drift apart.
 */
import type { FastifyInstance } from 'fastify';
import { Authenticator } from '../auth/authenticator.js';
import type { Bus } from '../bus/types.js';
import { consolePlugin } from '../console/plugin.js';
import { buildApiServer, buildInternalServer, IngestService, RequestLimiter } from '../ingest/index.js';
import type { PresenceStore } from '../presence/types.js';
import type { Store } from '../store/types.js';
import type { Runtime } from './runtime.js';
import { forwardAuthChanges } from './wiring.js';

export interface ApiCore {
  authenticator: Authenticator;
  ingest: IngestService;
  /** Per-key request budget: HTTP requests and INGEST frames alike. */
  limiter: RequestLimiter;
  api: FastifyInstance;
  internal: FastifyInstance;
}

export async function buildApiCore(rt: Runtime, deps: { store: Store; bus: Bus; presence: PresenceStore }): Promise<ApiCore> {
  const { config, logger, metrics, clock, lifecycle } = rt;
  const { store, bus, presence } = deps;
  const authenticator = new Authenticator(store, config, clock);
  await authenticator.start();
  lifecycle.add('authenticator', () => authenticator.close());
  forwardAuthChanges(authenticator, bus, logger);

  const ingest = new IngestService({ store, config, clock, metrics });
  lifecycle.add('ingest', () => ingest.close());

  const limiter = new RequestLimiter(config, bus);
  const api = await buildApiServer({ store, config, logger, clock, metrics, authenticator, bus, presence, ingest, limiter, isShuttingDown: () => lifecycle.isClosing });
  await api.register(consolePlugin, config.publicWsUrl ? { wsUrl: config.publicWsUrl } : {});
  const internal = await buildInternalServer({ config, logger, authenticator, store, metrics, ingest, limiter });
  return { authenticator, ingest, limiter, api, internal };
}
