export { Worker, type WorkerOptions } from './runner.js';
export {
  MaintenanceWorker,
  builtinMaintenanceTasks,
  SWEEP_LEASES,
  PRUNE_IDEMPOTENCY,
  type MaintenanceTask,
  type MaintenanceTaskContext,
  type MaintenanceWorkerOptions,
} from './maintenance.js';
export { backoffCeilingMs, backoffDelayMs, retryDelayMs, type RandomSource } from './backoff.js';
export { TypedEmitter, type Listener } from './emitter.js';
export type { WorkerEventMap, MaintenanceEventMap } from './events.js';
export { describeError } from './describe-error.js';
export * from './processors/index.js';
