/**
 * SQL fragments shared by every operation that changes an event's status: the history entry
 * and the `event.update` outbox row, written by the same statement as the change itself.
 */

/** Outbox columns an INSERT fills, in the order updateRowSql() selects them. */
export const OUTBOX_INSERT_COLUMNS = 'event_id, channel, event, payload, user_id, type, status, attempts, version, updated_at, last_error';

/**
 * The `event.update` outbox row of event row alias `x` (columns as OUTBOX_INSERT_COLUMNS): the
 * event's state at this change as plain columns; the relay builds the EventUpdatePayload from
 * them (rows.ts), which is cheaper than building JSON in the writing statement.
 */
export function updateRowSql(x: string): string {
  return `${x}.id AS event_id, 'user:' || ${x}.user_id AS channel, 'event.update' AS event, NULL::jsonb AS payload,
    ${x}.user_id AS user_id, ${x}.type AS type, ${x}.status AS status, ${x}.attempts AS attempts, ${x}.version AS version,
    ${x}.updated_at AS updated_at, ${x}.last_error AS last_error`;
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
      SELECT c.id, c.channel, c.type, c.payload, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1 FROM ${changed} c WHERE c.channel IS NOT NULL`
    : '';
  return `hist AS (
    INSERT INTO event_history (event_id, status, attempt, error, version, at)
    SELECT c.id, c.status, c.attempts, CASE WHEN c.status IN ('queued', 'failed') THEN c.last_error END, c.version, ${nowParam}
    FROM ${changed} c
  ),
  note AS (
    INSERT INTO outbox (${OUTBOX_INSERT_COLUMNS}, created_at)
    SELECT ${OUTBOX_INSERT_COLUMNS.split(', ').map((col) => `m.${col}`).join(', ')}, ${nowParam}
    FROM (
      SELECT ${updateRowSql('c')}, 0 AS k
      FROM ${changed} c
      ${delivery}
    ) m
    ORDER BY m.event_id, m.k
  )`;
}

/**
 * CTE (to follow recordChangesSql) entering the events of `changed` that are now `failed` into the
 * dead-letter set: the index of failed events, since `events` has none on status (migration 000005).
 */
export function enterDeadLettersSql(changed: string, nowParam: string): string {
  return `dead_in AS (
    INSERT INTO dead_letters (event_id, failed_at)
    SELECT c.id, ${nowParam} FROM ${changed} c WHERE c.status = 'failed'
    ON CONFLICT (event_id) DO NOTHING
  )`;
}

export const PROCESSING_QUEUE = 'processing';
export const OUTBOX_CHANNEL = 'tem_outbox';
export function jobsChannel(queue: string): string {
  return `tem_jobs_${queue}`;
}
