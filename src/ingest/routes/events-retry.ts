/** POST /api/events/{id}/retry and POST /api/events/retry (bulk): failed → queued. */
import type { FastifyRequest } from 'fastify';
import { retryPolicy } from '../../config/index.js';
import { createError, type TemError } from '../../core/errors.js';
import { EVENT_TYPE_PATTERN, PRINCIPAL_ID_PATTERN } from '../event-input.js';
import { parseDateTime } from '../payload-check.js';
import { eventDetailJson } from '../serialize.js';
import { bindLog } from '../log-bindings.js';
import { refuseBody } from '../no-body.js';
import type { ApiRoutePlugin } from '../types.js';
import { canSeeEvent, visibilityFilter } from '../visibility.js';
import { idParamsSchema, MAX_LIMIT, UUID_PATTERN } from './events-read.js';

const RETRY = 'events.post.event_retry';
/**
 * Events a bulk retry requeues per request, oldest first (default, most): each page is one
 * transaction and one answer of bounded size, however large the failed set has grown.
 */
const RETRY_PAGE = 1000;
const RETRY_MAX = 10_000;

const bulkSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['failed'] },
    type: { type: 'string', pattern: EVENT_TYPE_PATTERN },
    user_id: { type: 'string', pattern: PRINCIPAL_ID_PATTERN },
    since: { type: 'string', format: 'date-time' },
    ids: { type: 'array', maxItems: MAX_LIMIT, items: { type: 'string', pattern: UUID_PATTERN } },
    limit: { type: 'integer', minimum: 1, maximum: RETRY_MAX },
    cursor: { type: 'string', pattern: UUID_PATTERN },
  },
} as const;

interface BulkRetry {
  status?: 'failed';
  type?: string;
  user_id?: string;
  since?: string;
  ids?: string[];
  limit?: number;
  /** The `next_cursor` of the page before. */
  cursor?: string;
}

/** The 409 for a retry of an event that is not failed, naming its status. */
function notFailed(status: string): TemError {
  return createError('INVALID_STATE', `Only failed events can be retried; this one is ${status}`, { extra: { event_status: status } });
}

export const eventRetryRoutes: ApiRoutePlugin = async (app, { store, clock, config }) => {
  // A retried event gets the attempt budget its type has now, as a new event would.
  const budget = (type: string): number => retryPolicy(config, type).maxAttempts;
  app.post(
    '/api/events/:id/retry',
    {
      config: { permission: RETRY },
      schema: { params: idParamsSchema },
      // Takes no body (none, or {}): a field sent by mistake is refused, not silently ignored.
      preValidation: refuseBody('a retry'),
    },
    async (request: FastifyRequest<{ Params: { id: string } }>) => {
      const id = request.params.id.toLowerCase();
      const event = await store.getEvent(id);
      if (!event || !canSeeEvent(request.auth!, event)) throw createError('NOT_FOUND', `No event ${id}`);
      if (event.status !== 'failed') throw notFailed(event.status);
      const { ids: retried } = await store.retryEvents({ ids: [id] }, clock.now(), budget);
      // Another request retried it between our read and the update: its status now.
      if (retried.length === 0) throw notFailed((await store.getEvent(id))?.status ?? event.status);
      bindLog(request, { event_id: id });
      request.log.info({ status: 'queued' }, 'event retried');
      const after = await store.getEvent(id);
      return eventDetailJson(after ?? event);
    },
  );

  app.post(
    '/api/events/retry',
    {
      config: { permission: RETRY },
      schema: { body: bulkSchema },
      // No body is no filter (every failed event), as `{}` is.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request: FastifyRequest<{ Body: BulkRetry }>) => {
      const b = request.body;
      const limit = b.limit ?? RETRY_PAGE;
      const { ids: retried, hasMore } = await store.retryEvents(
        {
          status: 'failed',
          type: b.type,
          userId: b.user_id,
          since: b.since === undefined ? undefined : parseDateTime(b.since, 'body.since'),
          ids: b.ids?.map((id) => id.toLowerCase()),
          ...visibilityFilter(request.auth!),
        },
        clock.now(),
        budget,
        { limit, after: b.cursor?.toLowerCase() },
      );
      // One line per event, as every other status change is logged.
      for (const eventId of retried) request.log.info({ event_id: eventId, status: 'queued' }, 'event retried');
      // Events that failed again since keep their ids, before the cursor: paging through ends.
      return { retried, count: retried.length, has_more: hasMore, next_cursor: hasMore ? retried.at(-1)! : null };
    },
  );
};
