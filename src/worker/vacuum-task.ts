/**
 * The `vacuum_queues` maintenance task: VACUUM (ANALYZE) of jobs and outbox every interval
 * (src/store/ops/vacuum.ts, docs/decisions/0018).
 *
 * It runs beside the maintenance loop, not in it. On tables kept this small a vacuum takes
 * milliseconds, but the first one after the maintenance queue was down for a long time can take
 * seconds or more, and the lease sweep, which bounds how soon a dead worker's jobs run again, must
 * not wait behind it. So a run waits for the vacuum only briefly; one still going then finishes in
 * the background (its failure is reported through `onError`) and the next turn skips while it
 * does. One runs at a time per process; SKIP_LOCKED turns a vacuum already running elsewhere
 * (another maintenance process, or autovacuum) into a skip instead of a wait. On PGlite the
 * vacuum holds its one connection, so there the loop's next statement waits for it anyway.
 */
import type { Store } from '../store/types.js';
import type { MaintenanceTask } from './maintenance.js';

export const VACUUM_QUEUES = 'vacuum_queues';
/** How long a run waits for its vacuum before leaving it to finish in the background. */
const WAIT_MS = 250;

/**
 * A vacuum still unsettled after this is taken for lost (a dead connection) and no longer waited
 * for: well past the 60 s after which the server cancels one (src/store/ops/vacuum.ts).
 */
const STALE_MS = 180_000;
/** Shortest interval: below it the maintenance loop would do little else. */
export const MIN_VACUUM_INTERVAL_MS = 1000;

export function vacuumQueuesTask(store: Pick<Store, 'vacuumQueues'>, intervalMs: number, onError: (err: unknown) => void): MaintenanceTask {
  let runningSince: number | null = null;
  return {
    name: VACUUM_QUEUES,
    intervalMs: Math.max(MIN_VACUUM_INTERVAL_MS, intervalMs),
    run: async () => {
      if (runningSince !== null && performance.now() - runningSince < STALE_MS) return 'skipped: the previous vacuum is still running';
      const started = (runningSince = performance.now());
      let waiting = true;
      const vacuum = store.vacuumQueues().then(
        () => 'vacuumed',
        (err: unknown) => {
          // While the run waits, the failure is the run's own; afterwards only a report is left.
          if (waiting) throw err;
          onError(err);
          return 'failed';
        },
      );
      void vacuum
        .finally(() => {
          if (runningSince === started) runningSince = null;
        })
        .catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const later = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('continuing in the background'), WAIT_MS);
        timer.unref();
      });
      try {
        return await Promise.race([vacuum, later]);
      } finally {
        waiting = false;
        clearTimeout(timer);
      }
    },
  };
}
