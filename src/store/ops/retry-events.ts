/**
 * retryEvents(filter, now, maxAttemptsFor?, page?) → ids requeued, in id order (a page: the first
 * `limit` after `after`, and whether failed events matching the filter remain after it).
 * `failed` events matching the filter go back to `queued` with attempts reset and a new job
 * ready at `now`; history and notification as for any status change. With `maxAttemptsFor`, each
 * event's attempt budget is set again from the retry policy of its type as configured now (an
 * operator who raised it and retries gets the new budget); without it, the event keeps its own.
 */
import type { Db } from '../db.js';
import type { EventFilter, RetryPage, RetryResult } from '../types.js';
import { isUuid } from '../../core/ids.js';
import { OUTBOX_CHANNEL, PROCESSING_QUEUE, jobsChannel, recordChangesSql } from './changes.js';
import { eventWhere } from './event-filter.js';

/** The failed events matching `where` (aliases d and e): the dead-letter set joined to its events. */
function failedWhere(where: string): string {
  return `dead_letters d JOIN events e ON e.id = d.event_id WHERE e.status = 'failed' AND ${where}`;
}

export async function retryEvents(db: Db, filter: EventFilter, now: Date, maxAttemptsFor?: (type: string) => number, page?: RetryPage): Promise<RetryResult> {
  // A string that is not a UUID names no event.
  if (filter.ids !== undefined) filter = { ...filter, ids: filter.ids.filter(isUuid) };
  if (filter.ids !== undefined && filter.ids.length === 0) return { ids: [], hasMore: false };
  const params: unknown[] = [now];
  let where = eventWhere(filter, params);
  let limit = '';
  if (page) {
    if (page.after !== undefined) {
      params.push(page.after);
      where += ` AND e.id > $${params.length}::uuid`;
    }
    params.push(page.limit);
    limit = ` LIMIT $${params.length}`;
  }
  // Attempt budgets by type, {} for "keep each event's own": the parameter after the filter's.
  const budgets = `$${params.length + 1}`;
  const sql = `
    WITH target AS (
      SELECT e.id FROM ${failedWhere(where)} ORDER BY e.id${limit} FOR UPDATE OF e
    ),
    changed AS (
      UPDATE events SET status = 'queued', attempts = 0, last_error = NULL, processed_at = NULL,
        updated_at = $1, version = events.version + 1,
        max_attempts = COALESCE((${budgets}::jsonb ->> events.type)::int, events.max_attempts)
      FROM target WHERE events.id = target.id
      RETURNING events.*
    ),
    job AS (
      INSERT INTO jobs (event_id, queue, type, run_at, attempts, max_attempts)
      SELECT c.id, '${PROCESSING_QUEUE}', c.type, $1, 0, c.max_attempts FROM changed c
      ON CONFLICT (event_id) DO NOTHING
    ),
    dead_out AS (
      DELETE FROM dead_letters d USING changed c WHERE d.event_id = c.id
    ),
    ${recordChangesSql('changed', '$1')}
    SELECT c.id::text AS id FROM changed c ORDER BY c.id`;
  return db.tx(async (tx) => {
    params.push(maxAttemptsFor ? await budgetsByType(tx, filter, maxAttemptsFor) : '{}');
    const rows = await tx.query<{ id: string }>(sql, params);
    if (rows.length > 0) {
      tx.notify([OUTBOX_CHANNEL, jobsChannel(PROCESSING_QUEUE)]);
    }
    const ids = rows.map((r) => r.id);
    // A full page may be the last one: look past it rather than have the caller ask for nothing.
    const hasMore = page !== undefined && ids.length === page.limit && (await failedAfter(tx, filter, ids.at(-1)!));
    return { ids, hasMore };
  });
}

/** Whether failed events matching `filter` have ids after `after`. */
async function failedAfter(db: Db, filter: EventFilter, after: string): Promise<boolean> {
  const params: unknown[] = [];
  const where = eventWhere(filter, params);
  params.push(after);
  const rows = await db.query<{ more: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${failedWhere(`${where} AND e.id > $${params.length}::uuid`)}) AS more`,
    params,
  );
  return rows[0]?.more === true;
}

/**
 * The budget of each type among the failed events the filter matches, as JSON, read before the
 * update (types are few; an event of a type this read missed keeps its own budget).
 */
async function budgetsByType(db: Db, filter: EventFilter, maxAttemptsFor: (type: string) => number): Promise<string> {
  const params: unknown[] = [];
  const where = eventWhere(filter, params);
  const types = await db.query<{ type: string }>(
    `SELECT DISTINCT e.type FROM ${failedWhere(where)}`,
    params,
  );
  return JSON.stringify(Object.fromEntries(types.map(({ type }) => [type, maxAttemptsFor(type)])));
}
