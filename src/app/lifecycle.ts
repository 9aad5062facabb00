/**
 * Ordered shutdown for a process role. Components register a closer as they start; on SIGTERM,
 * SIGINT or SIGHUP the closers run in reverse start order (stop taking work first, close the database
 * last), then the process exits 0. A second signal exits at once. The whole shutdown has one
 * time budget: closers that hang (a database that stopped answering) cannot add up to many times
 * it; once it is spent, each closer still left gets a short last chance.
 */
import type { Logger } from '../observability/logger.js';

/**
 * The signals that stop a role gracefully. SIGHUP too: it is what a closing terminal or an ended
 * SSH session sends, and by default it would end the process on the spot, in-flight work and all.
 */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** A signal that arrived while a role was still starting (holdSignalsDuringStartup). */
let startupSignal: NodeJS.Signals | null = null;
let releaseStartupHold: (() => void) | null = null;

/**
 * Call first thing when a server role starts: until its Lifecycle handles signals, a stop
 * signal (STOP_SIGNALS) is held instead of killing the process mid-start (exit 143, a stale data-dir lock);
 * the role then stops gracefully, exit 0, as soon as its start-up is done. A second one exits 1.
 */
export function holdSignalsDuringStartup(): void {
  if (releaseStartupHold) return;
  const hold = (signal: NodeJS.Signals) => {
    if (startupSignal) process.exit(1);
    startupSignal = signal;
  };
  for (const signal of STOP_SIGNALS) process.on(signal, hold);
  // What bin/tem.js held while the code was still loading.
  const early = (globalThis as Record<symbol, (() => NodeJS.Signals[]) | undefined>)[Symbol.for('tem.startupSignals')];
  for (const signal of early?.() ?? []) hold(signal);
  releaseStartupHold = () => {
    for (const signal of STOP_SIGNALS) process.off(signal, hold);
  };
}

interface Closer {
  name: string;
  close: () => Promise<unknown> | unknown;
}

export class Lifecycle {
  private readonly closers: Closer[] = [];
  private closing: Promise<void> | null = null;

  /**
   * @param budgetMs how long the closers may take together before shutdown moves on without the
   *   one running (a stuck socket or driver must not keep the process from exiting).
   * @param lastChanceMs how long each closer still left once the budget is spent may take (the
   *   store and the data-dir lock come last), at most `budgetMs`.
   */
  constructor(
    private readonly logger: Logger,
    private readonly budgetMs = 15_000,
    private readonly lastChanceMs = 1000,
  ) {}

  /** Whether shutdown has begun (readiness turns 503 from then on). */
  get isClosing(): boolean {
    return this.closing !== null;
  }

  /** Registers a closer; closers run last-registered first. */
  add(name: string, close: Closer['close']): void {
    this.closers.push({ name, close });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const deadline = Date.now() + this.budgetMs;
      const lastChanceMs = Math.min(this.lastChanceMs, this.budgetMs);
      for (const closer of [...this.closers].reverse()) {
        const timeoutMs = Math.max(deadline - Date.now(), lastChanceMs);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), timeoutMs);
        });
        try {
          const outcome = await Promise.race([Promise.resolve(closer.close()), timedOut]);
          if (outcome === 'timeout') this.logger.warn({ component: closer.name, timeout_ms: timeoutMs }, 'close timed out; continuing shutdown');
        } catch (err) {
          this.logger.warn({ err, component: closer.name }, 'error while closing');
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return this.closing;
  }

  /** Exit 0 after a graceful close on a stop signal; a second signal forces exit 1. */
  handleSignals(): void {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        this.logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      signalled = true;
      this.logger.info({ signal }, 'shutting down');
      void this.close().then(
        () => {
          this.logger.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          this.logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
    releaseStartupHold?.();
    releaseStartupHold = null;
    if (startupSignal) {
      this.logger.info({ signal: startupSignal }, 'signal received while starting');
      onSignal(startupSignal);
    }
  }
}
