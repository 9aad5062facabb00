/**
 * The maintenance worker: periodic tasks on their own queue and loop, so a stuck processor can
 * never stop recovery. Built in: `sweep_leases` (requeue jobs of dead workers, every
 * sweepIntervalMs), `prune_idempotency` (every minute) and `vacuum_queues` (every
 * queueVacuumIntervalMs: src/worker/vacuum-task.ts). More tasks (the outbox relay) can be
 * registered. Tasks are claimed through the store's maintenance_tasks rows, so any number of
 * maintenance processes share the work and a task never runs twice at once while its claim
 * holds.
 *
 * Every task must tolerate an overlapping run: a claim is held for `lockMs` only, so a run that
 * outlasts it (or a process killed mid-run) lets another process run the task again. Keeping the
 * claim short is what bounds recovery after a crash of the process that held the sweep.
 */
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { TemConfig } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Store } from '../store/types.js';
import { backoffDelayMs } from './backoff.js';
import { TypedEmitter } from './emitter.js';
import { PRUNE_IDEMPOTENCY, SWEEP_LEASES, type MaintenanceEventMap } from './events.js';
import { countMaintenanceEvents, logMaintenanceEvents } from './observe.js';
import { describeError } from './describe-error.js';
import { Wakeup } from './wakeup.js';
import { vacuumQueuesTask } from './vacuum-task.js';

export interface MaintenanceTaskContext {
  /** The time the task was claimed at (from the injected clock). */
  now: Date;
  /** Aborted when the maintenance worker stops. */
  signal: AbortSignal;
}

export interface MaintenanceTask {
  name: string;
  intervalMs: number;
  /** Resolves with what it did (a count is logged and, for the sweep, counted in metrics). */
  run(ctx: MaintenanceTaskContext): Promise<unknown>;
}

export interface MaintenanceWorkerOptions {
  store: Store;
  config: TemConfig;
  logger: Logger;
  clock?: Clock;
  metrics?: Metrics;
  workerId: string;
  /** Extra tasks, e.g. the outbox relay. */
  tasks?: MaintenanceTask[];
  /**
   * How long a claimed task stays locked; default 2 × sweepIntervalMs within [2 s, 30 s]. Short on
   * purpose: if the process holding the sweep dies, another sweeps once the lock runs out, and
   * that delay adds to how long a dead worker's jobs wait (lease 5 s + sweep 1 s + lock 2 s).
   */
  lockMs?: number;
}

export { SWEEP_LEASES, PRUNE_IDEMPOTENCY } from './events.js';
const PRUNE_INTERVAL_MS = 60_000;
/** A due task this process does not know (another version registered it): leave it to others. */
const FOREIGN_TASK_DEFER_MS = 5_000;
const STORE_BACKOFF = { baseMs: 100, maxMs: 5000 };

/** `onError` reports what fails after its run has returned (the queue vacuum finishing in the background). */
export function builtinMaintenanceTasks(store: Store, config: TemConfig, onError: (err: unknown) => void = () => {}): MaintenanceTask[] {
  return [
    { name: SWEEP_LEASES, intervalMs: config.sweepIntervalMs, run: ({ now }) => store.sweepExpiredLeases(now) },
    {
      name: PRUNE_IDEMPOTENCY,
      intervalMs: PRUNE_INTERVAL_MS,
      run: ({ now }) => store.pruneIdempotencyKeys(new Date(now.getTime() - config.idempotencyRetentionMs)),
    },
    ...(config.queueVacuumIntervalMs > 0 ? [vacuumQueuesTask(store, config.queueVacuumIntervalMs, onError)] : []),
  ];
}

export class MaintenanceWorker {
  readonly events: TypedEmitter<MaintenanceEventMap>;
  readonly workerId: string;
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly tasks = new Map<string, MaintenanceTask>();
  private readonly lockMs: number;
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private ensured = false;
  private loop: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private readonly abort = new AbortController();
  private readonly wakeup = new Wakeup();
  private failures = 0;

  constructor(options: MaintenanceWorkerOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger;
    this.workerId = options.workerId;
    this.lockMs = options.lockMs ?? Math.min(30_000, Math.max(2_000, 2 * options.config.sweepIntervalMs));
    this.events = new TypedEmitter<MaintenanceEventMap>((err, event) =>
      this.logger.error({ err: (err as Error)?.message ?? String(err), event: String(event) }, 'maintenance event listener threw'),
    );
    logMaintenanceEvents(this.events, this.logger);
    if (options.metrics) countMaintenanceEvents(this.events, options.metrics);
    // A vacuum cut short by shutdown (the store closing its connections) is no error worth a line.
    const background = (error: unknown): void => {
      if (this.state === 'running') this.events.emit('error', { error, context: 'vacuum_queues' });
    };
    for (const task of [...builtinMaintenanceTasks(options.store, options.config, background), ...(options.tasks ?? [])]) this.register(task);
  }

  /** Adds a task; before start() (or its row is created on the next turn of the loop). */
  register(task: MaintenanceTask): this {
    if (!task.name || typeof task.run !== 'function') throw new Error('a maintenance task needs a name and a run() function');
    if (!Number.isInteger(task.intervalMs) || task.intervalMs < 1) throw new Error(`maintenance task "${task.name}" needs a positive integer intervalMs`);
    if (this.tasks.has(task.name)) throw new Error(`maintenance task "${task.name}" is registered twice`);
    this.tasks.set(task.name, task);
    this.ensured = false;
    return this;
  }

  taskNames(): string[] {
    return [...this.tasks.keys()];
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`maintenance worker ${this.workerId} was already started`);
    this.state = 'running';
    try {
      await this.ensureTasks();
    } catch (error) {
      // The loop tries again; start-up does not fail because the database blinked.
      this.events.emit('error', { error, context: 'ensureMaintenanceTasks' });
    }
    this.loop = this.run();
  }

  /**
   * Claims and runs every task that is due now, one claim at a time; returns how many ran.
   * The loop calls this on every tick; tests driving a ManualClock call it directly.
   */
  async runDue(): Promise<number> {
    if (!this.ensured) await this.ensureTasks();
    let ran = 0;
    // Bounded: each pass either runs a task (rescheduling it) or defers a foreign one.
    for (let i = 0; i < 4 * (this.tasks.size + 4); i++) {
      const now = this.clock.now();
      const claim = await this.store.claimMaintenanceTask(this.workerId, now, this.lockMs);
      if (!claim) break;
      const task = this.tasks.get(claim.name);
      if (!task) {
        await this.store.finishMaintenanceTask(claim.name, new Date(now.getTime() + FOREIGN_TASK_DEFER_MS), null, now);
        continue;
      }
      await this.execute(task, now);
      ran += 1;
    }
    return ran;
  }

  /** Finishes the task running now (tasks are short), then stops. Safe to call more than once. */
  stop(): Promise<void> {
    if (this.state === 'idle' || this.state === 'stopped') {
      this.state = 'stopped';
      return this.stopping ?? Promise.resolve();
    }
    this.stopping ??= (async () => {
      this.state = 'stopping';
      this.abort.abort(new Error('maintenance worker stopping'));
      this.wakeup.wake();
      await this.loop;
      this.state = 'stopped';
      this.events.emit('stopped', {});
    })();
    return this.stopping;
  }

  private async ensureTasks(): Promise<void> {
    await this.store.ensureMaintenanceTasks(this.taskNames(), this.clock.now());
    this.ensured = true;
  }

  private async execute(task: MaintenanceTask, now: Date): Promise<void> {
    const started = performance.now();
    let error: string | null = null;
    let result: unknown;
    try {
      result = await task.run({ now, signal: this.abort.signal });
    } catch (err) {
      error = describeError(err);
    }
    // Fixed rate from the claim time: a slow run is followed at once by the next.
    await this.store.finishMaintenanceTask(task.name, new Date(now.getTime() + task.intervalMs), error, this.clock.now());
    const durationMs = Math.round(performance.now() - started);
    if (error === null) this.events.emit('task:completed', { name: task.name, result, durationMs });
    else this.events.emit('task:failed', { name: task.name, error, durationMs });
  }

  /** Between turns: often enough that the shortest task starts close to when it is due. */
  private tickMs(): number {
    const shortest = Math.min(...[...this.tasks.values()].map((t) => t.intervalMs));
    return Math.min(1000, Math.max(10, Math.floor(shortest / 4)));
  }

  private async run(): Promise<void> {
    while (this.state === 'running') {
      let delay = this.tickMs();
      try {
        await this.runDue();
        this.failures = 0;
      } catch (error) {
        this.events.emit('error', { error, context: 'maintenance' });
        this.failures += 1;
        delay = 50 + backoffDelayMs(STORE_BACKOFF, this.failures);
      }
      if (this.state !== 'running') break;
      await this.wakeup.sleep(delay);
    }
  }
}
