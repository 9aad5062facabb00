/**
 * vacuumQueues() → the queue tables (`jobs`, `outbox`, `outbox_held`) vacuumed and analyzed.
 *
 * Why the maintenance queue does this rather than leaving it to autovacuum: every event inserts
 * and deletes a job and three outbox rows, so these tables are mostly dead rows within seconds,
 * while autovacuum visits a database at most once a minute (autovacuum_naptime). Until then:
 * - the dead rows are visited by every scan of the tables (the claim, the relay, completions);
 * - the planner knows the tables only as they were when last measured — empty, after migrate —
 *   and the plans it caches for the statements above then scan the whole table instead of the
 *   index: measured at 1,000 events/s, a third of the database's CPU went to such scans, and
 *   e2e latency halved once the tables had been analyzed once.
 * VACUUM takes no lock that blocks reads or writes of the rows, and on tables kept this small it
 * takes milliseconds; the task runs it beside the maintenance loop all the same
 * (src/worker/vacuum-task.ts). It cannot run inside a transaction, hence exec() rather than a
 * query. On PGlite, whose one connection every statement shares, the others wait while it runs.
 */
import type { Db } from '../db.js';

export const QUEUE_TABLES = ['jobs', 'outbox', 'outbox_held'] as const;

/** Cancelled past this (by the server): a vacuum that long is autovacuum's job. */
export const VACUUM_TIMEOUT_MS = 60_000;

export async function vacuumQueues(db: Db): Promise<void> {
  // SKIP_LOCKED: a table another vacuum is working on (autovacuum, another process) is skipped,
  // not waited for. Isolated: on PostgreSQL no other statement queues behind it.
  await db.exec(`VACUUM (SKIP_LOCKED, ANALYZE) ${QUEUE_TABLES.join(', ')}`, { isolated: { timeoutMs: VACUUM_TIMEOUT_MS } });
}
