/**
 * Logging and metrics for the workers, as subscribers of their typed events: one log line per
 * state transition (with event_id, type and attempt), counters for outcomes and lost leases.
 */
import { isTemError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ClaimedJob, SweptLease } from '../store/types.js';
import type { TypedEmitter } from './emitter.js';
import { SWEEP_LEASES, type MaintenanceEventMap, type WorkerEventMap } from './events.js';

type Off = () => void;

function jobFields(job: ClaimedJob, processor: string) {
  return { event_id: job.event.id, type: job.event.type, attempt: job.attempt, processor };
}

/** What to log about an error: its code and message, never a stack a client could see. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (isTemError(err)) return { code: err.code, err: err.message };
  if (err instanceof Error) return { err: err.message, name: err.name };
  return { err: String(err) };
}

export function logWorkerEvents(events: TypedEmitter<WorkerEventMap>, logger: Logger): Off {
  const offs = [
    events.on('job:claimed', ({ job, processor }) => logger.info(jobFields(job, processor), 'job claimed')),
    events.on('job:completed', ({ job, processor, durationMs, skipped }) =>
      logger.info({ ...jobFields(job, processor), duration_ms: durationMs, skipped }, 'job processed'),
    ),
    events.on('job:retry', ({ job, processor, error, retryAt, delayMs }) =>
      logger.warn({ ...jobFields(job, processor), error, retry_at: retryAt.toISOString(), delay_ms: delayMs }, 'job failed, will retry'),
    ),
    events.on('job:failed', ({ job, processor, error, reason }) =>
      logger.error({ ...jobFields(job, processor), error, reason }, 'job failed'),
    ),
    events.on('job:lease_lost', ({ job, processor, stage }) =>
      logger.warn({ ...jobFields(job, processor), stage }, 'lease lost, result not committed'),
    ),
    events.on('job:released', ({ job, processor }) => logger.info(jobFields(job, processor), 'job released')),
    events.on('job:unreleased', ({ job, processor }) =>
      logger.warn(jobFields(job, processor), 'job not released (the database did not answer); the lease sweep requeues it when its lease runs out'),
    ),
    events.on('error', ({ error, context, job }) =>
      logger.error({ ...errorFields(error), context, ...(job ? { event_id: job.event.id, type: job.event.type, attempt: job.attempt } : {}) }, 'worker error'),
    ),
    events.on('stopped', ({ released }) => logger.info({ released }, 'worker stopped')),
  ];
  return () => offs.forEach((off) => off());
}

export function countWorkerEvents(events: TypedEmitter<WorkerEventMap>, metrics: Metrics): Off {
  const offs = [
    events.on('job:completed', ({ skipped }) => metrics.jobsCompleted.inc({ outcome: skipped ? 'skipped' : 'processed' })),
    events.on('job:retry', () => metrics.jobsCompleted.inc({ outcome: 'retry' })),
    events.on('job:failed', () => metrics.jobsCompleted.inc({ outcome: 'failed' })),
    events.on('job:lease_lost', () => metrics.leaseLost.inc()),
    events.on('job:released', () => metrics.jobsCompleted.inc({ outcome: 'released' })),
  ];
  return () => offs.forEach((off) => off());
}

/** How much a task did: a count, or the length of the list of what it did (the lease sweep's). */
function amount(result: unknown): unknown {
  return Array.isArray(result) ? result.length : result;
}

export function logMaintenanceEvents(events: TypedEmitter<MaintenanceEventMap>, logger: Logger): Off {
  const offs = [
    events.on('task:completed', ({ name, result, durationMs }) => {
      const done = amount(result);
      // Sweeps run every second: only say something when they did something.
      (typeof done === 'number' && done > 0 ? logger.info : logger.debug).call(logger, { task: name, result: done, duration_ms: durationMs }, 'maintenance task done');
      // Each event a sweep moved gets its own line, as the worker logs each of its transitions.
      if (name === SWEEP_LEASES && Array.isArray(result)) {
        for (const { eventId, status, attempts } of result as SweptLease[]) {
          logger.warn({ event_id: eventId, status, attempts }, status === 'failed' ? 'lease expired, event failed (no attempt left)' : 'lease expired, event requeued');
        }
      }
    }),
    events.on('task:failed', ({ name, error, durationMs }) => logger.error({ task: name, error, duration_ms: durationMs }, 'maintenance task failed')),
    events.on('error', ({ error, context }) => logger.error({ ...errorFields(error), context }, 'maintenance error')),
    events.on('stopped', () => logger.info('maintenance stopped')),
  ];
  return () => offs.forEach((off) => off());
}

export function countMaintenanceEvents(events: TypedEmitter<MaintenanceEventMap>, metrics: Metrics): Off {
  return events.on('task:completed', ({ name, result }) => {
    const done = amount(result);
    if (name === SWEEP_LEASES && typeof done === 'number' && done > 0) metrics.leaseExpiries.inc(done);
  });
}
