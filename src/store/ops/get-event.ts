/**
 * getEvent(id) → the event with its status history (version order), or null.
 * A string that is not a UUID cannot name an event: null, not an error.
 */
import type { Db } from '../db.js';
import type { TemEventWithHistory } from '../../core/types.js';
import { isUuid } from '../../core/ids.js';
import { EVENT_COLUMNS, toEvent, toHistory, type EventRow, type HistoryRow } from '../rows.js';

const EVENT_SQL = `SELECT ${EVENT_COLUMNS} FROM events e LEFT JOIN jobs j ON j.event_id = e.id WHERE e.id = $1`;
const HISTORY_SQL = `SELECT status, attempt, error, at, version FROM event_history WHERE event_id = $1 ORDER BY version`;

export async function getEvent(db: Db, id: string): Promise<TemEventWithHistory | null> {
  if (!isUuid(id)) return null;
  const [row] = await db.query<EventRow>(EVENT_SQL, [id]);
  if (!row) return null;
  const history = await db.query<HistoryRow>(HISTORY_SQL, [id]);
  return { ...toEvent(row), history: history.map(toHistory) };
}
