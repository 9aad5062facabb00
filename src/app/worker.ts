/**
 * `tem worker [--queue processing|maintenance]` on PostgreSQL. The processing queue runs
 * processors; the maintenance queue sweeps expired leases, prunes idempotency keys and relays
 * the outbox to the bus (REDIS_URL). They are separate processes so a stuck processor cannot
 * stop recovery.
 */
import { OutboxRelay } from '../outbox/index.js';
import { MaintenanceWorker, Worker, loadProcessors } from '../worker/index.js';
import { createRuntime, runForever, startBus, startStore } from './runtime.js';

export async function runWorker(queue: 'processing' | 'maintenance'): Promise<void> {
  const rt = createRuntime(queue === 'processing' ? 'worker' : 'maintenance');
  const { config, logger, metrics, clock, lifecycle } = rt;
  try {
    const store = await startStore(rt, { requireDatabaseUrl: true });
    const workerId = `${config.nodeId}/${queue}`;
    if (queue === 'processing') {
      const processors = await loadProcessors(config.processors);
      const worker = new Worker({ store, config, logger, clock, metrics, processors, workerId });
      await worker.start();
      lifecycle.add('worker', () => worker.stop());
    } else {
      const bus = startBus(rt);
      const maintenance = new MaintenanceWorker({ store, config, logger, clock, metrics, workerId });
      await maintenance.start();
      lifecycle.add('maintenance', () => maintenance.stop());
      const relay = new OutboxRelay({ store, bus, logger, metrics, clock });
      await relay.start();
      lifecycle.add('relay', () => relay.stop());
    }
    logger.info({ queue, workerId }, 'listening');
    runForever(rt);
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}
