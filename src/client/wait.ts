/**
 * A promise for "until something happens": `watch` subscribes to whatever settles it and returns
 * its unsubscribe; the optional timeout rejects with TIMEOUT. Everything is cleaned up either way.
 */
import { TemClientError } from './errors.js';
import type { TimerHandle, Timers } from './timers.js';

export function waitFor(timers: Timers, timeoutMs: number | undefined, what: string, watch: (done: (err?: TemClientError) => void) => () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let timer: TimerHandle | undefined;
    let settled = false;
    let off: (() => void) | undefined = undefined;
    const done = (err?: TemClientError) => {
      if (settled) return;
      settled = true;
      off?.();
      if (timer !== undefined) timers.clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    off = watch(done);
    if (settled) off();
    else if (timeoutMs !== undefined) timer = timers.setTimeout(() => done(new TemClientError('TIMEOUT', `${what} within ${timeoutMs} ms`)), timeoutMs);
  });
}
