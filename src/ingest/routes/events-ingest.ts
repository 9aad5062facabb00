/**
 * POST /api/events and POST /api/events/batch. Validation, idempotency and the group-committed
 * write live in IngestService (shared with the gateway); these handlers only translate HTTP.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createError, toProblem, toTemError, type TemError } from '../../core/errors.js';
import { bindLog } from '../log-bindings.js';
import type { ApiRoutePlugin } from '../types.js';
import type { IngestResult } from '../service.js';

const INGEST = 'events.post.event_ingest';
export const MAX_BATCH_ITEMS = 1000;

function contentLength(request: FastifyRequest): number | undefined {
  const raw = request.headers['content-length'];
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * The answer to an ingest. A replay gets the original answer again (as Stripe's idempotent
 * requests do), with 200 and `Idempotent-Replayed: true`: where the event is now is one
 * `GET /api/events/{id}` away, through the `Location` header.
 */
function accepted(result: IngestResult): { event_id: string; status: string; created_at: string } {
  return { event_id: result.event.id, status: 'accepted', created_at: result.event.createdAt.toISOString() };
}

const batchSchema = {
  type: 'object',
  required: ['events'],
  additionalProperties: false,
  properties: { events: { type: 'array', minItems: 1, maxItems: MAX_BATCH_ITEMS, items: {} } },
} as const;

export const eventIngestRoutes: ApiRoutePlugin = async (app, deps) => {
  const { ingest, config } = deps;

  app.post('/api/events', { config: { permission: INGEST, honoursIdempotencyKey: true } }, async (request, reply) => {
    const result = await ingest.ingest(request.auth!, request.body, headerValue(request, 'idempotency-key'), {
      sizeHint: contentLength(request),
    });
    bindLog(request, { event_id: result.event.id });
    // Accepted and queued are one commit: one line (the worker logs the transitions after it).
    if (result.outcome === 'created') request.log.info({ type: result.event.type, user_id: result.event.userId, status: result.event.status }, 'event accepted');
    reply.header('location', `/api/events/${result.event.id}`);
    if (result.outcome === 'replayed') reply.code(200).header('idempotent-replayed', 'true');
    else reply.code(202);
    return accepted(result);
  });

  /** Batch requests whose body was a bare array of events (no `events` wrapper). */
  const bareArrays = new WeakSet<FastifyRequest>();
  app.post(
    '/api/events/batch',
    {
      config: { permission: INGEST, idempotencyKeyRefusal: 'Use an idempotency_key per item in a batch, not the Idempotency-Key header' },
      bodyLimit: config.maxBatchBodyBytes,
      schema: { body: batchSchema },
      // A bare array of events is taken as {events: [...]}, the form most batch APIs also accept.
      preValidation: async (request) => {
        if (!Array.isArray(request.body)) return;
        // Named as the caller wrote it: the array is `body`, not `body.events`.
        const n = request.body.length;
        if (n < 1 || n > MAX_BATCH_ITEMS) throw createError('VALIDATION_FAILED', `body must hold 1 to ${MAX_BATCH_ITEMS} events, got ${n}`, { field: 'body' });
        request.body = { events: request.body };
        bareArrays.add(request);
      },
    },
    async (request: FastifyRequest<{ Body: { events: unknown[] } }>, reply: FastifyReply) => {
      const ctx = request.auth!;
      const size = contentLength(request);
      const sizeHint = size !== undefined && size <= config.maxPayloadBytes ? size : undefined;
      const results: Record<string, unknown>[] = new Array(request.body.events.length);
      const indexes: number[] = [];
      const items = [];
      // Errors name fields as the caller wrote them: `body.3.type` in a bare array.
      const prefix = bareArrays.has(request) ? 'body' : 'body.events';
      for (const [index, input] of request.body.events.entries()) {
        try {
          items.push(await ingest.accept(ctx, input, undefined, { field: `${prefix}.${index}`, sizeHint }));
          indexes.push(index);
        } catch (err) {
          results[index] = itemError(index, toTemError(err));
        }
      }
      const settled = await Promise.allSettled(ingest.submitMany(items));
      const serverErrors: TemError[] = [];
      settled.forEach((s, i) => {
        const index = indexes[i]!;
        if (s.status === 'fulfilled') {
          const { event, outcome } = s.value;
          if (outcome === 'created') request.log.info({ event_id: event.id, type: event.type, user_id: event.userId, status: event.status }, 'event accepted');
          results[index] = { index, status: outcome === 'created' ? 202 : 200, event_id: event.id, created_at: event.createdAt.toISOString() };
          return;
        }
        const error = toTemError(s.reason);
        if (error.status >= 500) serverErrors.push(error);
        results[index] = itemError(index, error);
      });
      // Nothing could be written (database down): say so for the whole request, so clients
      // back off and retry rather than read a 202.
      if (items.length > 0 && serverErrors.length === items.length) throw serverErrors[0]!;
      reply.code(202);
      return { results };
    },
  );
};

function itemError(index: number, error: TemError): Record<string, unknown> {
  return { index, status: error.status, error: toProblem(error) };
}
