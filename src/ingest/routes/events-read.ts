/** GET /api/events/{id} (with history) and GET /api/events (filters, cursor paging). */
import type { FastifyRequest } from 'fastify';
import { createError } from '../../core/errors.js';
import { EVENT_STATUSES, type EventStatus } from '../../core/types.js';
import { describedPattern } from '../ajv.js';
import { EVENT_TYPE_PATTERN, PRINCIPAL_ID_PATTERN } from '../event-input.js';
import { parseDateTime } from '../payload-check.js';
import { eventDetailJson, eventJson } from '../serialize.js';
import type { ApiRoutePlugin } from '../types.js';
import { canSeeEvent, visibilityFilter } from '../visibility.js';

export const UUID_PATTERN = describedPattern(
  '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  'a UUID: 32 hex digits as 8-4-4-4-12 (01a211da-4fee-757e-b777-fffa7edcc206)',
);
/** A page size in a query string, before its range is checked (parseLimit). */
export const LIMIT_PATTERN = describedPattern('^[0-9]{1,9}$', 'a whole number');
export const idParamsSchema = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', pattern: UUID_PATTERN } },
} as const;

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1000;
/** Most ids one list request may name (`?ids=a,b,…`): a URL stays under 4 KiB. */
export const MAX_LIST_IDS = 100;
const UUID = UUID_PATTERN.slice(1, -1);

/** Query values are strings: declared as such and converted here, never coerced. */
const listQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: [...EVENT_STATUSES] },
    type: { type: 'string', pattern: EVENT_TYPE_PATTERN },
    user_id: { type: 'string', pattern: PRINCIPAL_ID_PATTERN },
    since: { type: 'string', format: 'date-time' },
    cursor: { type: 'string', pattern: UUID_PATTERN },
    limit: { type: 'string', pattern: LIMIT_PATTERN },
    // Comma-separated: how a view refreshes the rows it shows that may have changed.
    ids: {
      type: 'string',
      pattern: describedPattern(`^${UUID}(,${UUID}){0,${MAX_LIST_IDS - 1}}$`, `1 to ${MAX_LIST_IDS} event ids (UUIDs), comma-separated`),
    },
  },
} as const;

interface ListQuery {
  status?: EventStatus;
  type?: string;
  user_id?: string;
  since?: string;
  cursor?: string;
  limit?: string;
  ids?: string;
}

export function parseLimit(raw: string | undefined, fallback = DEFAULT_LIMIT): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw createError('VALIDATION_FAILED', `query.limit must be an integer from 1 to ${MAX_LIMIT}`, { field: 'query.limit' });
  }
  return n;
}

export const eventReadRoutes: ApiRoutePlugin = async (app, { store }) => {
  app.get(
    '/api/events/:id',
    { config: { permission: 'events.get.event_detail' }, schema: { params: idParamsSchema } },
    async (request: FastifyRequest<{ Params: { id: string } }>) => {
      const event = await store.getEvent(request.params.id.toLowerCase());
      if (!event || !canSeeEvent(request.auth!, event)) throw createError('NOT_FOUND', `No event ${request.params.id}`);
      return eventDetailJson(event);
    },
  );

  app.get(
    '/api/events',
    { config: { permission: 'events.get.event_list' }, schema: { querystring: listQuerySchema } },
    async (request: FastifyRequest<{ Querystring: ListQuery }>) => {
      const q = request.query;
      const page = await store.listEvents({
        status: q.status,
        type: q.type,
        userId: q.user_id,
        since: q.since === undefined ? undefined : parseDateTime(q.since, 'query.since'),
        cursor: q.cursor?.toLowerCase(),
        limit: parseLimit(q.limit),
        ids: q.ids?.toLowerCase().split(','),
        ...visibilityFilter(request.auth!),
      });
      return { data: page.events.map(eventJson), next_cursor: page.nextCursor };
    },
  );
};
