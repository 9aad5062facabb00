/**
 * `tem worker [--queue processing|maintenance]` on PostgreSQL. The processing queue runs
 * processors; the maintenance queue sweeps expired leases, prunes idempotency keys and relays
 * the outbox to the bus (only with REDIS_URL: without it there is nobody to relay to). They are
 * separate processes so a stuck processor cannot stop recovery.
 */
import { OutboxRelay } from '../outbox/index.js';
import { MaintenanceWorker, Worker, loadProcessors } from '../worker/index.js';
import { startMetricsListener } from './metrics-listener.js';
import { createRuntime, runForever, startBus, startStore } from './runtime.js';

export async function runWorker(queue: 'processing' | 'maintenance'): Promise<void> {
  const rt = createRuntime(queue === 'processing' ? 'worker' : 'maintenance');
  const { config, logger, metrics, clock, lifecycle } = rt;
  try {
    const store = await startStore(rt, { requireDatabaseUrl: true });
    // Before the work starts, so it is closed last: a scrape during the drain still answers.
    const metricsUrl = await startMetricsListener(rt);
    const workerId = `${config.nodeId}/${queue}`;
    if (queue === 'processing') {
      const processors = await loadProcessors(config.processors);
      const worker = new Worker({ store, config, logger, clock, metrics, processors, workerId });
      await worker.start();
      lifecycle.add('worker', () => worker.stop());
    } else {
      const maintenance = new MaintenanceWorker({ store, config, logger, clock, metrics, workerId });
      await maintenance.start();
      lifecycle.add('maintenance', () => maintenance.stop());
      if (config.redisUrl) {
        const relay = new OutboxRelay({ store, bus: startBus(rt), logger, metrics, clock });
        await relay.start();
        lifecycle.add('relay', () => relay.stop());
      } else {
        // Without Redis the bus would be this process's own memory: relaying there would delete
        // every notification with nobody to receive it. The outbox keeps them instead, until a
        // maintenance process with REDIS_URL (or `tem start`) relays them.
        logger.warn({ queue }, 'REDIS_URL is not set: the outbox relay does not run here; notifications wait in the outbox');
      }
    }
    logger.info({ queue, worker_id: workerId, ...(metricsUrl ? { metrics: `${metricsUrl}/metrics` } : {}) }, 'listening');
    runForever(rt);
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}
