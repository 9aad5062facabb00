/**
 * getEvent(id) → the event with its status history (version order), or null.
 * A string that is not a UUID cannot name an event: null, not an error.
 * One statement, so the event and its history come from one snapshot: read apart, a status
 * change committed in between showed a status its own history did not have yet.
 */
import type { Db } from '../db.js';
import type { TemEventWithHistory } from '../../core/types.js';
import { isUuid } from '../../core/ids.js';
import { EVENT_COLUMNS, toEvent, toHistory, type EventRow, type HistoryRow } from '../rows.js';

// An entry written `with_accepted` (migration 000007) also stands for the `accepted` state
// before it: same instant and attempt, the version before.
const EVENT_SQL = `
SELECT ${EVENT_COLUMNS},
  (SELECT coalesce(json_agg(json_build_object('status', h.status, 'attempt', h.attempt, 'error', h.error,
      'at', (extract(epoch FROM h.at) * 1000)::float8, 'version', h.version) ORDER BY h.version), '[]'::json)
   FROM event_history eh CROSS JOIN LATERAL (
     SELECT eh.status, eh.attempt, eh.error, eh.at, eh.version
     UNION ALL
     SELECT 'accepted', eh.attempt, NULL, eh.at, eh.version - 1 WHERE eh.with_accepted
   ) h WHERE eh.event_id = e.id) AS history
FROM events e LEFT JOIN jobs j ON j.event_id = e.id WHERE e.id = $1`;

type HistoryJson = Omit<HistoryRow, 'at'> & { at: number };

export async function getEvent(db: Db, id: string): Promise<TemEventWithHistory | null> {
  if (!isUuid(id)) return null;
  const [row] = await db.query<EventRow & { history: HistoryJson[] | string }>(EVENT_SQL, [id]);
  if (!row) return null;
  const raw = typeof row.history === 'string' ? (JSON.parse(row.history) as HistoryJson[]) : row.history;
  return { ...toEvent(row), history: raw.map((h) => toHistory({ ...h, at: new Date(h.at) })) };
}
