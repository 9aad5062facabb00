/**
 * A small typed event emitter (no Node `events` import, so it runs in the browser).
 * `on` returns a function that removes the listener. A listener that throws does not break
 * the client's state machine: the error is rethrown on a fresh task, where the host reports it
 * (window.onerror, Node's uncaughtException) as it would for any other callback.
 */
type Listener<T> = (arg: T) => void;

export class Emitter<M extends object> {
  private readonly listeners = new Map<keyof M, Set<Listener<never>>>();

  on<K extends keyof M>(event: K, fn: Listener<M[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(fn as Listener<never>);
    return () => this.off(event, fn);
  }

  once<K extends keyof M>(event: K, fn: Listener<M[K]>): () => void {
    const off = this.on(event, (arg) => {
      off();
      fn(arg);
    });
    return off;
  }

  off<K extends keyof M>(event: K, fn?: Listener<M[K]>): void {
    if (!fn) {
      this.listeners.delete(event);
      return;
    }
    this.listeners.get(event)?.delete(fn as Listener<never>);
  }

  removeAllListeners(): void {
    this.listeners.clear();
  }

  listenerCount<K extends keyof M>(event: K): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  protected emit<K extends keyof M>(event: K, arg: M[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    // Copy: a listener may remove itself (once) or others while we iterate.
    for (const fn of [...set]) {
      try {
        (fn as Listener<M[K]>)(arg);
      } catch (err) {
        globalThis.setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}
