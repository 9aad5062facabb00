/**
 * Time as the client sees it. Injected so tests can move time by hand and so a host with its
 * own scheduler (a worker, a test harness) can supply one. The default uses the global
 * setTimeout/clearTimeout and Date.now, which exist in browsers and in Node.
 */
export type TimerHandle = unknown;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /** Milliseconds on a clock that moves forward; compared, never shown. */
  now(): number;
}

export const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
  now: () => Date.now(),
};
