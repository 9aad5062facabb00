/**
 * EventFilter → a SQL condition on `events e`, appending its values to `params`.
 * Shared by listEvents and retryEvents so both read a filter the same way.
 */
import type { EventFilter } from '../types.js';
import { ID_CLOCK_MARGIN_MS, uuidv7Floor } from '../../core/ids.js';

export function eventWhere(filter: EventFilter, params: unknown[]): string {
  const parts: string[] = [];
  const add = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.ids !== undefined) {
    parts.push(`e.id IN (SELECT value::uuid FROM jsonb_array_elements_text(${add(JSON.stringify(filter.ids))}::jsonb))`);
  }
  if (filter.status !== undefined) {
    parts.push(`e.status = ${add(filter.status)}`);
    // `events` has no index on status (migration 000005): the sets below are what finds the
    // rare statuses without scanning every event. They are exact: only an unfinished event has
    // a job, and only a failed one a dead letter.
    if (filter.status === 'failed') parts.push('e.id IN (SELECT event_id FROM dead_letters)');
    else if (filter.status === 'queued' || filter.status === 'processing') parts.push('e.id IN (SELECT event_id FROM jobs)');
  }
  if (filter.type !== undefined) parts.push(`e.type = ${add(filter.type)}`);
  if (filter.userId !== undefined) parts.push(`e.user_id = ${add(filter.userId)}`);
  if (filter.producerId !== undefined) parts.push(`e.producer_id = ${add(filter.producerId)}`);
  if (filter.since !== undefined) {
    // The primary key bounds the range (ids are minted in creation order, migration 000008);
    // created_at decides exactly.
    parts.push(`e.id >= ${add(uuidv7Floor(filter.since.getTime() - ID_CLOCK_MARGIN_MS))}::uuid`);
    parts.push(`e.created_at >= ${add(filter.since)}`);
  }
  if (filter.visibleTo !== undefined) {
    const p = add(filter.visibleTo);
    parts.push(`(e.user_id = ${p} OR e.producer_id = ${p})`);
  }
  return parts.length === 0 ? 'TRUE' : parts.join(' AND ');
}
