/**
 * A job's abort signal, made only when the processor reads it. Node's AbortSignal is costly to
 * create (an EventTarget each); a worker that made two per job and combined them with
 * AbortSignal.any spent more on signals than on running a no-op job. Most processors never look.
 */
export class LazyAbort {
  private controller: AbortController | null = null;
  private abortedWith: { reason: unknown } | null = null;

  /** The signal to hand out; already aborted when asked for after abort(). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith.reason);
    }
    return this.controller.signal;
  }

  /** Aborts once; later calls keep the first reason. */
  abort(reason: unknown): void {
    if (this.abortedWith) return;
    this.abortedWith = { reason };
    this.controller?.abort(reason);
  }
}
