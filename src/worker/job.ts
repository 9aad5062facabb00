/**
 * One claimed job, from processor to commit: skip when the effect is already recorded, run the
 * processor with the job's AbortSignal, then complete or fail it under the lease token. A job
 * abandoned meanwhile (lease lost, released at shutdown) commits nothing.
 */
import type { Clock } from '../core/clock.js';
import { isTemError } from '../core/errors.js';
import type { TemConfig } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { ClaimedJob, JobRef, Store } from '../store/types.js';
import { retryDelayMs, type RandomSource } from './backoff.js';
import type { CompleteFn } from './completions.js';
import { describeError, resultJson } from './describe-error.js';
import type { TypedEmitter } from './emitter.js';
import type { WorkerEventMap } from './events.js';
import { LazyAbort } from './lazy-abort.js';
import { isNonRetryableError, NonRetryableError, type Processor, type ProcessorContext } from './processors/types.js';

/** One job a worker runs. `abandoned` is set once it must not commit. */
export interface RunningJob {
  job: ClaimedJob;
  ref: JobRef;
  processor: Processor;
  /** Aborted when the run must stop: lease lost, released at shutdown, or timed out. */
  abort: LazyAbort;
  abandoned: 'lost' | 'released' | null;
  /** Writing the outcome: a lease that vanishes now may be our own completion. */
  committing: boolean;
  /** When the lease runs out, as of the claim or the last renewal that kept it (clock ms). */
  leaseExpiresAtMs: number;
  /**
   * Called once when the processor is done with the job (it is being committed, was skipped or
   * abandoned): the worker then counts its slot as free, while the commit is still in flight.
   */
  onProcessed: () => void;
  done: Promise<void>;
}

export interface JobDeps {
  store: Store;
  config: TemConfig;
  clock: Clock;
  logger: Logger;
  events: TypedEmitter<WorkerEventMap>;
  random: RandomSource;
  /** Writes a completion, answering for this job alone (group-committed: completions.ts). */
  complete: CompleteFn;
}

type Outcome = { ok: true; result: unknown; json: string | undefined } | { ok: false; error: unknown };

/**
 * Delays between commit attempts: growing, then every 2 s. While the database is unavailable
 * the outcome is retried for as long as the lease may still hold (renewals keep extending it);
 * any other error gives up after the short sequence, leaving the job to the sweep.
 */
const COMMIT_RETRY_DELAYS_MS = [100, 300, 900];
const COMMIT_RETRY_MAX_DELAY_MS = 2000;

export function runningJob(job: ClaimedJob, processor: Processor, onProcessed: () => void = () => undefined): RunningJob {
  let called = false;
  return {
    job,
    ref: { eventId: job.event.id, leaseToken: job.leaseToken },
    processor,
    abort: new LazyAbort(),
    abandoned: null,
    committing: false,
    leaseExpiresAtMs: job.leaseExpiresAt.getTime(),
    onProcessed: () => {
      if (called) return;
      called = true;
      onProcessed();
    },
    done: Promise.resolve(),
  };
}

export async function runJob(d: JobDeps, entry: RunningJob): Promise<void> {
  const { job, processor } = entry;
  const started = performance.now();
  let skipped: boolean;
  try {
    // The claim usually says already (one query per batch instead of one per job).
    skipped = job.recordedEffects ? job.recordedEffects.includes(processor.name) : await d.store.hasEffect(job.event.id, processor.name);
  } catch (error) {
    d.events.emit('error', { error, context: 'hasEffect', job });
    await releaseQuietly(d, [entry]);
    return;
  }
  const outcome = skipped ? ({ ok: true, result: null, json: 'null' } as const) : await invoke(d, entry);
  if (entry.abandoned) return;
  entry.committing = true;
  entry.onProcessed();
  if (outcome.ok) {
    const ok = await commit(d, entry, 'complete', () => d.complete(entry.ref, { processor: processor.name, result: outcome.result ?? null, resultJson: outcome.json }));
    const durationMs = Math.round(performance.now() - started);
    if (ok) d.events.emit('job:completed', { job, processor: processor.name, durationMs, skipped });
    else if (ok === false) leaseLost(d, entry, 'complete');
    return;
  }
  const error = describeError(outcome.error);
  const nonRetryable = isNonRetryableError(outcome.error);
  const retry = !nonRetryable && job.attempt < job.maxAttempts;
  const now = d.clock.now();
  const delayMs = retry ? retryDelayMs(d.config, job.event.type, job.attempt, d.random) : 0;
  const retryAt = retry ? new Date(now.getTime() + delayMs) : null;
  const ok = await commit(d, entry, 'fail', () => d.store.fail(entry.ref, { error, retryAt }, now));
  if (ok === false) leaseLost(d, entry, 'fail');
  else if (ok && retryAt) d.events.emit('job:retry', { job, processor: processor.name, error, retryAt, delayMs });
  else if (ok) d.events.emit('job:failed', { job, processor: processor.name, error, reason: nonRetryable ? 'non_retryable' : 'exhausted' });
}

async function invoke(d: JobDeps, entry: RunningJob): Promise<Outcome> {
  const { job, processor } = entry;
  // A run that outlives TEM_PROCESSOR_TIMEOUT_MS counts as a failed (retryable) attempt, so a
  // hung processor cannot hold its slot — and renew its lease — forever. Its signal is aborted
  // so a cooperative processor stops; a result it returns later is discarded.
  const limitMs = d.config.processorTimeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const timedOut =
    limitMs > 0
      ? new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const error = new Error(`processor timed out after ${limitMs} ms`);
            entry.abort.abort(error);
            reject(error);
          }, limitMs);
        })
      : null;
  try {
    const run = processor.process(job.event, processorContext(d, entry));
    const result = await (timedOut ? Promise.race([run, timedOut]) : run);
    // The same result would fail the same way on every retry: the event fails at once, saying why.
    const stored = resultJson(result);
    if (!stored.ok) return { ok: false, error: new NonRetryableError(`the processor's result cannot be stored: ${stored.reason}`) };
    return { ok: true, result, json: stored.json };
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

/** The processor's context; its signal and its child logger are made on first use only. */
function processorContext(d: JobDeps, entry: RunningJob): ProcessorContext {
  const { job, processor } = entry;
  let logger: Logger | undefined;
  return {
    attempt: job.attempt,
    idempotencyKey: `${job.event.id}:${processor.name}`,
    get signal() {
      return entry.abort.signal;
    },
    get logger() {
      logger ??= d.logger.child({ event_id: job.event.id, type: job.event.type, attempt: job.attempt, processor: processor.name });
      return logger;
    },
  };
}

/**
 * Writes the outcome. While the store is unavailable it keeps trying until the lease, as last
 * renewed, runs out: giving up earlier would leave a finished run to the sweep, which counts the
 * attempt (failing the event on its last one) and runs the processor again, although a
 * database back within the lease could have taken the result. Other errors are retried
 * briefly. Returns the store's answer, or undefined when it could not be written: the job then
 * stays leased until the sweep requeues it.
 */
async function commit(d: JobDeps, entry: RunningJob, context: string, write: () => Promise<boolean>): Promise<boolean | undefined> {
  // Renewals may go on extending the lease while the writes keep failing: one lease length of
  // trying is the bound either way.
  const giveUpAtMs = d.clock.nowMs() + d.config.leaseMs;
  for (let i = 0; ; i++) {
    try {
      return await write();
    } catch (error) {
      d.events.emit('error', { error, context, job: entry.job });
      const unavailable = isTemError(error) && error.code === 'STORE_UNAVAILABLE';
      const delay = COMMIT_RETRY_DELAYS_MS[i] ?? (unavailable ? COMMIT_RETRY_MAX_DELAY_MS : undefined);
      if (delay === undefined || entry.abandoned) return undefined;
      // Past the lease the write can only be refused (fenced): the sweep has the job.
      if (i >= COMMIT_RETRY_DELAYS_MS.length && d.clock.nowMs() + delay >= Math.min(entry.leaseExpiresAtMs, giveUpAtMs)) return undefined;
      await new Promise((r) => setTimeout(r, delay));
      if (entry.abandoned) return undefined;
    }
  }
}

function leaseLost(d: JobDeps, entry: RunningJob, stage: 'complete' | 'fail'): void {
  // Released at shutdown while committing: the release won, which is not a lost lease.
  if (entry.abandoned === 'released') return;
  entry.abandoned = 'lost';
  d.events.emit('job:lease_lost', { job: entry.job, processor: entry.processor.name, stage });
}

/**
 * Gives leases back without counting the attempt: whether the store took them (false: a store
 * error left them to the sweep, which requeues them once the leases run out, counting it).
 */
export async function releaseQuietly(d: JobDeps, entries: RunningJob[]): Promise<boolean> {
  if (entries.length === 0) return true;
  try {
    await d.store.releaseJobs(entries.map((e) => e.ref), d.clock.now());
    return true;
  } catch (error) {
    d.events.emit('error', { error, context: 'releaseJobs' });
    return false;
  }
}
