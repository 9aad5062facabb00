/**
 * The processing worker: claim → process → complete/fail, for one queue.
 *
 * - Claims in batches, at most `workerConcurrency` jobs being processed at once; completions are
 *   group-committed (many jobs per completeMany statement), each job still fenced by its own
 *   lease token. A job whose processor has returned frees its slot while its commit is in
 *   flight, so the next claim overlaps the last commit instead of waiting for it; the jobs
 *   waiting for a commit are bounded separately (`maxHeld`).
 * - Woken by the store's job notifications (LISTEN/NOTIFY), with polling every
 *   `pollIntervalMs` only as a backstop and a timer for the next delayed retry (`nextRunAt`).
 * - Renews the leases of its jobs every leaseMs/3. A job whose lease is lost has its signal
 *   aborted and its result is never committed: the store fences complete/fail by lease token,
 *   and this worker does not even try once it knows.
 * - Store errors never end the loop: it backs off and tries again. A job whose outcome could
 *   not be written stays leased; the maintenance sweep requeues it when the lease runs out and
 *   the effects log keeps the re-run from repeating a recorded effect.
 * - Everything that happens is emitted on `events`; logging and metrics subscribe there.
 */
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { TemConfig } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ClaimedJob, Store, Unlisten } from '../store/types.js';
import { groupCompletions } from './completions.js';
import { backoffDelayMs, type RandomSource } from './backoff.js';
import { TypedEmitter } from './emitter.js';
import type { WorkerEventMap } from './events.js';
import { releaseQuietly, runJob, runningJob, type JobDeps, type RunningJob } from './job.js';
import { countWorkerEvents, logWorkerEvents } from './observe.js';
import type { Processor } from './processors/types.js';
import { ProcessorRegistry } from './processors/registry.js';
import { Wakeup } from './wakeup.js';

export interface WorkerOptions {
  store: Store;
  config: TemConfig;
  logger: Logger;
  clock?: Clock;
  metrics?: Metrics;
  /** Processors to run (or a ready registry); types no processor claims use the default one. */
  processors?: Processor[] | ProcessorRegistry;
  queue?: string;
  workerId: string;
  /** Randomness of the retry backoff (tests inject a fixed one). */
  random?: RandomSource;
  /** How often leases are renewed; default leaseMs / 3. */
  renewIntervalMs?: number;
}

const STORE_BACKOFF = { baseMs: 100, maxMs: 5000 };

export class Worker {
  readonly events: TypedEmitter<WorkerEventMap>;
  readonly workerId: string;
  readonly queue: string;
  private readonly store: Store;
  private readonly config: TemConfig;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly registry: ProcessorRegistry;
  private readonly random: RandomSource;
  private readonly renewIntervalMs: number;

  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private readonly inFlight = new Map<string, RunningJob>();
  /** Jobs of inFlight whose processor has not returned yet (what workerConcurrency bounds). */
  private processing = 0;
  /** Most jobs held at once, processing or waiting for their commit. */
  private readonly maxHeld: number;
  private loop: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  /** The stop stopped waiting for the claim loop (the database did not answer in the drain time). */
  private loopAbandoned = false;
  private unlisten: Unlisten | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private renewing = false;
  private readonly wakeup = new Wakeup();
  private readonly deps: JobDeps;
  /** The last claim was full or a notification arrived: claim again as soon as there is room. */
  private moreWork = true;
  private waitingForCapacity = false;
  /** The last claim came back full: there is a backlog, so refill in batches (see run()). */
  private backlog = false;
  private readonly refillBatch: number;
  private capacityWaitSince: number | null = null;
  private storeFailures = 0;

  constructor(options: WorkerOptions) {
    this.store = options.store;
    this.config = options.config;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.workerId = options.workerId;
    this.queue = options.queue ?? 'processing';
    this.random = options.random ?? Math.random;
    this.registry = options.processors instanceof ProcessorRegistry ? options.processors : new ProcessorRegistry(options.processors ?? []);
    this.renewIntervalMs = options.renewIntervalMs ?? Math.max(10, Math.floor(this.config.leaseMs / 3));
    this.refillBatch = Math.max(1, Math.floor(Math.min(this.config.workerBatchSize, this.config.workerConcurrency) / 4));
    // Two group commits of up to workerBatchSize may be in flight while the slots refill.
    this.maxHeld = this.config.workerConcurrency + 2 * this.config.workerBatchSize;
    this.events = new TypedEmitter<WorkerEventMap>((err, event) =>
      this.logger.error({ err: (err as Error)?.message ?? String(err), event: String(event) }, 'worker event listener threw'),
    );
    logWorkerEvents(this.events, this.logger);
    if (options.metrics) countWorkerEvents(this.events, options.metrics);
    this.deps = {
      store: this.store,
      config: this.config,
      clock: this.clock,
      logger: this.logger,
      events: this.events,
      random: this.random,
      complete: groupCompletions(this.store, this.clock, this.config.workerBatchSize),
    };
  }

  /** Jobs currently running (including ones abandoned whose processor has not returned). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`worker ${this.workerId} was already started`);
    this.state = 'running';
    await this.listen();
    if (this.state !== 'running') {
      // stop() was called while we were subscribing: it found no loop or timer to end.
      await this.unlisten?.().catch(() => undefined);
      this.unlisten = null;
      return;
    }
    this.renewTimer = setInterval(() => void this.renewLeases(), this.renewIntervalMs);
    this.loop = this.run();
  }

  /** Claim now instead of at the next notification or poll (tests, and after a manual requeue). */
  wake(): void {
    this.moreWork = true;
    this.signal();
  }

  /**
   * Stops claiming, lets in-flight jobs finish for up to `shutdownTimeoutMs`, then releases the
   * rest (their signals are aborted, the attempt is not counted). Safe to call more than once.
   */
  stop(): Promise<void> {
    if (this.state === 'idle' || this.state === 'stopped') {
      this.state = 'stopped';
      return this.stopping ?? Promise.resolve();
    }
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** Extends the leases of running jobs; jobs whose lease is gone are aborted and abandoned. */
  async renewLeases(): Promise<void> {
    if (this.renewing) return;
    // Jobs being committed are renewed too (a blip may make the commit retry for a while), but
    // only the commit's own answer may say their lease is gone: it may be our completion.
    const live = [...this.inFlight.values()].filter((e) => !e.abandoned);
    if (live.length === 0) return;
    this.renewing = true;
    try {
      const now = this.clock.now();
      const held = await this.store.extendLeases(live.map((e) => e.ref), this.config.leaseMs, now);
      const kept = new Set(held.map((r) => r.leaseToken));
      for (const entry of live) {
        if (kept.has(entry.ref.leaseToken)) {
          entry.leaseExpiresAtMs = now.getTime() + this.config.leaseMs;
          continue;
        }
        // A job that finished meanwhile was not ours to lose.
        if (entry.abandoned || entry.committing || !this.inFlight.has(entry.ref.leaseToken)) continue;
        entry.abandoned = 'lost';
        entry.abort.abort(new Error('lease lost'));
        this.events.emit('job:lease_lost', { job: entry.job, processor: entry.processor.name, stage: 'renew' });
      }
    } catch (error) {
      this.events.emit('error', { error, context: 'extendLeases' });
    } finally {
      this.renewing = false;
    }
  }

  // ── the claim loop ───────────────────────────────────────────────────────

  private async run(): Promise<void> {
    while (this.state === 'running') {
      try {
        if (!this.unlisten) await this.listen();
        const room = Math.min(this.config.workerConcurrency - this.processing, this.maxHeld - this.inFlight.size);
        // With a backlog, claiming one job per freed slot would cost a claim transaction per
        // job; waiting for a few slots costs nothing (the jobs are waiting anyway). New work
        // on an idle queue is claimed at once, whatever the room, and so is the backlog after
        // a poll interval of waiting (slow jobs must not keep the free slots idle).
        const patient = this.backlog && (this.capacityWaitSince ??= Date.now()) > Date.now() - this.config.pollIntervalMs;
        if (room < (patient ? this.refillBatch : 1)) {
          this.waitingForCapacity = true;
          await this.sleep(this.config.pollIntervalMs);
          this.waitingForCapacity = false;
          continue;
        }
        this.capacityWaitSince = null;
        const limit = Math.min(this.config.workerBatchSize, room);
        this.moreWork = false;
        let jobs: ClaimedJob[];
        try {
          jobs = await this.store.claim({ queue: this.queue, workerId: this.workerId, limit, leaseMs: this.config.leaseMs, now: this.clock.now() });
          this.storeFailures = 0;
        } catch (error) {
          this.moreWork = true;
          this.backlog = false;
          this.events.emit('error', { error, context: 'claim' });
          await this.sleep(this.storeBackoffMs());
          continue;
        }
        if (this.loopAbandoned) {
          // The claim outlived the drain time and the stop went on without it: nobody waits for
          // these jobs any more, so they go back at once instead of being started.
          await releaseQuietly(this.deps, jobs.map((job) => runningJob(job, this.registry.resolve(job.event.type))));
          break;
        }
        for (const job of jobs) this.begin(job);
        this.backlog = jobs.length === limit;
        if (jobs.length === limit) {
          this.moreWork = true;
          continue;
        }
        if (!this.moreWork) await this.sleep(await this.idleDelayMs());
      } catch (error) {
        this.events.emit('error', { error, context: 'loop' });
        await this.sleep(this.storeBackoffMs());
      }
    }
  }

  private async listen(): Promise<void> {
    try {
      this.unlisten = await this.store.onJobsAvailable(this.queue, () => this.wake());
    } catch (error) {
      // Polling still finds the work; the next loop turn tries to listen again.
      this.events.emit('error', { error, context: 'listen' });
    }
  }

  /** How long to sleep when idle: the poll backstop, or less when a delayed retry is due sooner. */
  private async idleDelayMs(): Promise<number> {
    let delay = this.config.pollIntervalMs;
    try {
      const next = await this.store.nextRunAt(this.queue);
      if (next) delay = Math.min(delay, Math.max(10, next.getTime() - this.clock.nowMs()));
    } catch (error) {
      this.events.emit('error', { error, context: 'nextRunAt' });
    }
    return delay;
  }

  private storeBackoffMs(): number {
    this.storeFailures += 1;
    return 50 + backoffDelayMs(STORE_BACKOFF, this.storeFailures, this.random);
  }

  private signal(): void {
    this.wakeup.wake();
  }

  private sleep(ms: number): Promise<void> {
    return this.state === 'running' ? this.wakeup.sleep(ms) : Promise.resolve();
  }

  // ── one job ──────────────────────────────────────────────────────────────

  private begin(job: ClaimedJob): void {
    const processor = this.registry.resolve(job.event.type);
    this.processing++;
    const entry = runningJob(job, processor, () => {
      this.processing--;
      if (this.waitingForCapacity || this.moreWork) this.signal();
    });
    // Keyed by lease token: after a lost lease the same event may be claimed here again
    // while the abandoned run has not returned yet.
    this.inFlight.set(job.leaseToken, entry);
    this.events.emit('job:claimed', { job, processor: processor.name });
    entry.done = runJob(this.deps, entry)
      .catch((error) => this.events.emit('error', { error, context: 'execute', job }))
      .finally(() => {
        entry.onProcessed();
        this.inFlight.delete(job.leaseToken);
        if (this.waitingForCapacity || this.moreWork) this.signal();
      });
  }

  // ── shutdown ─────────────────────────────────────────────────────────────

  private async shutdown(): Promise<void> {
    this.state = 'stopping';
    this.signal();
    // One drain time for everything: a claim or an UNLISTEN the database does not answer (it
    // stopped responding) must not hold the stop past it, with or without jobs in flight. A claim
    // that commits after all leases what nobody runs; the sweep puts it back when that runs out.
    let timer: NodeJS.Timeout | undefined;
    const drained = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.config.shutdownTimeoutMs)));
    this.loopAbandoned = (await Promise.race([this.loop?.then(() => false), drained.then(() => true)])) ?? false;
    const unlisten = this.unlisten;
    this.unlisten = null;
    await Promise.race([unlisten?.().catch((error: unknown) => this.events.emit('error', { error, context: 'unlisten' })), drained]);

    const pending = [...this.inFlight.values()].map((e) => e.done);
    if (pending.length > 0) await Promise.race([Promise.allSettled(pending), drained]);
    clearTimeout(timer);
    const rest = [...this.inFlight.values()].filter((e) => !e.abandoned);
    for (const entry of rest) {
      entry.abandoned = 'released';
      entry.abort.abort(new Error('worker shutting down'));
    }
    const released = await releaseQuietly(this.deps, rest);
    for (const entry of rest) this.events.emit(released ? 'job:released' : 'job:unreleased', { job: entry.job, processor: entry.processor.name });
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
    this.state = 'stopped';
    this.events.emit('stopped', { released: released ? rest.length : 0 });
  }
}
