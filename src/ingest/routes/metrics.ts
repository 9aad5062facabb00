/**
 * GET /metrics: Prometheus text from this process's registry. Gauges that live in the database
 * (events by status, queue depth and age, leased jobs) are refreshed from store.stats() before
 * each scrape, with a short timeout so a scrape still answers when the database does not
 * (tem_database_up 0, those gauges NaN or absent).
 */
import { EVENT_STATUSES } from '../../core/types.js';
import type { ApiRoutePlugin } from '../types.js';

const STATS_TIMEOUT_MS = 1000;

export const metricsRoutes: ApiRoutePlugin = async (app, { store, metrics, clock, logger }) => {
  if (!metrics.registry.getSingleMetric('tem_database_up')) metrics.registry.registerMetric(metrics.databaseUp);
  const refresh = async (): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const stats = await Promise.race([
        store.stats(clock.now()),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('stats timed out')), STATS_TIMEOUT_MS);
        }),
      ]);
      for (const status of EVENT_STATUSES) metrics.eventsByStatus.set({ status }, stats.byStatus[status] ?? 0);
      metrics.queueDepth.set(stats.queueDepth);
      metrics.oldestQueuedAge.set(stats.oldestQueuedAgeMs / 1000);
      metrics.leasedJobs.set(stats.leased);
      metrics.databaseUp.set(1);
    } catch (err) {
      logger.debug({ err }, 'metrics: database stats unavailable');
      // Unknown, not the last figures read: a backlog growing during an outage must not look flat.
      metrics.databaseUp.set(0);
      metrics.eventsByStatus.reset();
      for (const gauge of [metrics.queueDepth, metrics.oldestQueuedAge, metrics.leasedJobs]) gauge.set(Number.NaN);
    } finally {
      clearTimeout(timer);
    }
  };

  app.get('/metrics', async (_request, reply) => {
    await refresh();
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
