/**
 * A listener of its own for Prometheus: `/metrics` (this process's registry) and `/healthz`, on
 * `TEM_HTTP_HOST`:`TEM_METRICS_PORT`. Workers have no other listener, so without it their
 * counters — jobs completed, lease expiries, relay lag and bus publish failures (the relay runs
 * in `tem worker --queue maintenance`) — could not be scraped at all. The other roles serve
 * /metrics on their public port.
 */
import type { FastifyInstance } from 'fastify';
import { createFastify } from '../ingest/http-common.js';
import type { Metrics } from '../observability/metrics.js';
import { METRICS_LISTENER, listen } from './listen.js';
import type { Runtime } from './runtime.js';

/** GET /metrics: this process's registry, as Prometheus text (this listener and a gateway's). */
export function serveMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
}

/** Starts the listener when TEM_METRICS_PORT is set; returns its base URL (or null). */
export async function startMetricsListener(rt: Runtime): Promise<string | null> {
  const { config, logger, metrics, lifecycle } = rt;
  if (config.metricsPort === undefined) return null;
  const app = createFastify({ logger, bodyLimit: 1024, requestTimeoutMs: config.requestTimeoutMs });
  app.get('/healthz', async () => ({ status: 'ok' }));
  serveMetrics(app, metrics);
  const url = await listen(app, config.httpHost, config.metricsPort, METRICS_LISTENER);
  // Closed last of all (added first): a final scrape during the drain still answers.
  lifecycle.add('metrics listener', () => app.close());
  return url;
}
