/**
 * What a processor is: the code that turns an event into an effect. A processor's result is
 * recorded once per (event, processor name) in the effects log, so its name must stay stable
 * across deployments — renaming a processor makes old events look unprocessed by it.
 */
import type { Logger } from '../../observability/logger.js';
import type { TemEvent } from '../../core/types.js';

export interface ProcessorContext {
  /** Attempt number of this run (1 for the first). */
  attempt: number;
  /**
   * Aborted when this run must stop: the lease was lost (another worker may own the job now)
   * or the worker is shutting down and released the job. A result returned after that is
   * discarded, so long-running processors should watch it.
   */
  signal: AbortSignal;
  logger: Logger;
  /**
   * `{event id}:{processor name}`, the effects-log key: the same on every run of this processor
   * for this event. The result is recorded once per key; an effect outside tem (a payment, an
   * e-mail) is made once by passing this key to that system as its idempotency key, since a run
   * cut short by a crash runs again.
   */
  idempotencyKey: string;
}

export interface Processor {
  /** Stable name: the effects-log key together with the event id. */
  name: string;
  /** Event types handled: exact (`payment.success`), `prefix.*` (`payment.*`) or `*`. */
  types: string[];
  /** Resolves with the effect to record (JSON-serialisable); throws to fail this attempt. */
  process(event: TemEvent, ctx: ProcessorContext): Promise<unknown>;
}

/**
 * Thrown by a processor when retrying cannot help (bad payload, unknown account): the event is
 * failed at once instead of burning its remaining attempts.
 */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}

export function isNonRetryableError(err: unknown): boolean {
  // Checked by name as well so a processor bundling its own copy of this class still works.
  return err instanceof NonRetryableError || (err instanceof Error && err.name === 'NonRetryableError');
}
