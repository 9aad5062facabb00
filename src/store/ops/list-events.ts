/**
 * listEvents(query) → EventPage: newest first by id (UUIDv7, so creation order), ids below
 * `cursor`, filtered; fetches limit + 1 rows to know whether there is a next page.
 */
import type { Db } from '../db.js';
import type { EventPage, ListEventsQuery } from '../types.js';
import { createError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { EVENT_COLUMNS, toEvent, type EventRow } from '../rows.js';
import { eventWhere } from './event-filter.js';

export async function listEvents(db: Db, q: ListEventsQuery): Promise<EventPage> {
  if (q.cursor !== undefined && !isUuid(q.cursor)) {
    throw createError('BAD_REQUEST', 'cursor is not valid', { field: 'query.cursor' });
  }
  const limit = Math.max(1, Math.floor(q.limit));
  const params: unknown[] = [];
  let where = eventWhere(q, params);
  if (q.cursor !== undefined) {
    params.push(q.cursor);
    where += ` AND e.id < $${params.length}`;
  }
  params.push(limit + 1);
  const rows = await db.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events e LEFT JOIN jobs j ON j.event_id = e.id
     WHERE ${where} ORDER BY e.id DESC LIMIT $${params.length}`,
    params,
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { events: page.map(toEvent), nextCursor: rows.length > limit && last ? last.id : null };
}
