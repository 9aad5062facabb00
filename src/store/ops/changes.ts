/**
 * SQL fragments shared by every operation that changes an event's status: the history entry
 * and the `event.update` outbox row, written by the same statement as the change itself.
 */

/** A timestamptz as the ISO string JavaScript's toISOString() gives. */
export function isoSql(col: string): string {
  return `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/** The EventUpdatePayload (src/core/types.ts) of event row alias `x`. */
export function updatePayloadSql(x: string): string {
  return `jsonb_build_object('event_id', ${x}.id::text, 'status', ${x}.status, 'user_id', ${x}.user_id,
    'type', ${x}.type, 'attempts', ${x}.attempts, 'updated_at', ${isoSql(`${x}.updated_at`)},
    'version', ${x}.version, 'last_error', ${x}.last_error)`;
}

/**
 * CTEs (to follow `WITH …, <changed> AS (UPDATE events … RETURNING events.*)`) that write the
 * history entry and the owner notification of each changed event, at time `nowParam`.
 * A history entry carries the error only for the states an error leads to.
 */
export function recordChangesSql(changed: string, nowParam: string, opts: { delivery?: boolean } = {}): string {
  // A processed event with a channel is also delivered there: its type and payload verbatim,
  // right after its status update (one INSERT, so the two keep this order in the outbox).
  const delivery = opts.delivery
    ? `UNION ALL
      SELECT c.id, c.channel, c.type, c.payload, 1 FROM ${changed} c WHERE c.channel IS NOT NULL`
    : '';
  return `hist AS (
    INSERT INTO event_history (event_id, status, attempt, error, version, at)
    SELECT c.id, c.status, c.attempts, CASE WHEN c.status IN ('queued', 'failed') THEN c.last_error END, c.version, ${nowParam}
    FROM ${changed} c
  ),
  note AS (
    INSERT INTO outbox (event_id, channel, event, payload, created_at)
    SELECT m.id, m.channel, m.event, m.payload, ${nowParam}
    FROM (
      SELECT c.id, 'user:' || c.user_id AS channel, 'event.update' AS event, ${updatePayloadSql('c')} AS payload, 0 AS k
      FROM ${changed} c
      ${delivery}
    ) m
    ORDER BY m.id, m.k
  )`;
}

export const PROCESSING_QUEUE = 'processing';
export const OUTBOX_CHANNEL = 'tem_outbox';
export function jobsChannel(queue: string): string {
  return `tem_jobs_${queue}`;
}
