/**
 * The events a Worker and a MaintenanceWorker emit, one per state transition. Payloads carry
 * the job so subscribers can log `event_id`, `type` and `attempt` without reaching back in.
 */
import type { ClaimedJob } from '../store/types.js';

export interface WorkerEventMap {
  /** Leased by this worker; the event is now `processing`. */
  'job:claimed': { job: ClaimedJob; processor: string };
  /** Committed as `processed`. `skipped`: the effect was already recorded, the run was skipped. */
  'job:completed': { job: ClaimedJob; processor: string; durationMs: number; skipped: boolean };
  /** Attempt failed; the event is `queued` again until `retryAt`. */
  'job:retry': { job: ClaimedJob; processor: string; error: string; retryAt: Date; delayMs: number };
  /** Failed for good (the dead-letter set). */
  'job:failed': { job: ClaimedJob; processor: string; error: string; reason: 'exhausted' | 'non_retryable' };
  /**
   * This worker no longer holds the lease (it expired and was swept, or another worker owns the
   * job): nothing was committed. `stage` says where that was noticed.
   */
  'job:lease_lost': { job: ClaimedJob; processor: string; stage: 'renew' | 'complete' | 'fail' };
  /** Given back unfinished at shutdown, without counting the attempt. */
  'job:released': { job: ClaimedJob; processor: string };
  /** Could not be given back at shutdown (the store failed): its lease runs out and the sweep requeues it. */
  'job:unreleased': { job: ClaimedJob; processor: string };
  /** A store or internal error the worker survived; `context` says what it was doing. */
  error: { error: unknown; context: string; job?: ClaimedJob };
  /** Stopped claiming and every job is finished or released. */
  stopped: { released: number };
}

/** Names of the built-in maintenance tasks (src/worker/maintenance.ts), as their events carry them. */
export const SWEEP_LEASES = 'sweep_leases';
export const PRUNE_IDEMPOTENCY = 'prune_idempotency';

export interface MaintenanceEventMap {
  'task:completed': { name: string; result: unknown; durationMs: number };
  'task:failed': { name: string; error: string; durationMs: number };
  error: { error: unknown; context: string };
  stopped: Record<string, never>;
}
