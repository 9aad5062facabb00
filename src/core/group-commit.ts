/**
 * Group commit. Requests that arrive while a commit is in flight wait together and go to the
 * store as one call (one transaction, one fsync) of up to `maxBatch` items, so throughput grows
 * with concurrency instead of being capped by one round trip per item. A request is answered
 * only when the commit holding its item has resolved, with its own result. Used by ingest
 * (`ingest(items)`) and by the worker (`completeMany(items)`); no I/O of its own.
 *
 * When a commit fails with anything but STORE_UNAVAILABLE, the batch is retried one item at a
 * time, so one bad item cannot fail the others that happened to share its transaction.
 */
import { createError, isTemError } from './errors.js';

export interface GroupCommitOptions<I, O> {
  /** Most items per commit. */
  maxBatch: number;
  /** Commits allowed in flight at once (≥ 1). */
  maxInFlight?: number;
  /** Commits items; results in input order. */
  commit: (items: I[]) => Promise<O[]>;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

export class GroupCommitter<I, O> {
  private queue: Pending<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly maxInFlight: number;

  constructor(private readonly options: GroupCommitOptions<I, O>) {
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 1);
  }

  /** Items waiting for a commit slot (not counting those in flight). */
  get pending(): number {
    return this.queue.length;
  }

  submit(item: I): Promise<O> {
    return this.submitMany([item])[0]!;
  }

  /** Queues several items at once; each gets its own promise (they may span commits). */
  submitMany(items: I[]): Promise<O>[] {
    if (this.closed) return items.map(() => Promise.reject(createError('SHUTTING_DOWN', 'The server is shutting down')));
    const promises = items.map(
      (item) => new Promise<O>((resolve, reject) => this.queue.push({ item, resolve, reject })),
    );
    this.schedule();
    return promises;
  }

  /** Refuses new items and resolves once everything queued has been committed. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.queue.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    // While a commit is in flight, its completion pumps; otherwise wait for the rest of this
    // I/O phase so requests that arrived together share the first commit too.
    if (this.scheduled || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
        if (this.queue.length === 0 && this.inFlight === 0) {
          for (const resolve of this.idleWaiters.splice(0)) resolve();
        }
      });
    }
  }

  private async run(batch: Pending<I, O>[]): Promise<void> {
    try {
      const results = await this.options.commit(batch.map((p) => p.item));
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length > 1 && !(isTemError(err) && err.status === 503)) {
        await Promise.all(batch.map((p) => this.run([p])));
        return;
      }
      for (const p of batch) p.reject(err);
    }
  }
}
