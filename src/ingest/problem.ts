/**
 * The one error handler and not-found handler: every failure leaves as
 * application/problem+json built from the error table. Fastify's own errors (validation, body
 * parsing, size, media type) are translated so bad input is always a 4xx naming the field,
 * and anything unexpected is a 500 INTERNAL whose message never reaches the client.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createError, ERROR_TABLE, isTemError, toProblem, type ErrorCode, type TemError } from '../core/errors.js';
import { validationError } from './ajv.js';
import { AllowedMethods } from './allowed-methods.js';

const CONTEXT_NAMES: Record<string, string> = { querystring: 'query', body: 'body', params: 'params', headers: 'headers' };

/** Seconds clients are told to wait when the database is unavailable. */
const STORE_RETRY_AFTER_S = 2;

/** Maps anything thrown in a request to the TemError the client sees. */
export function toClientError(err: unknown): TemError {
  if (isTemError(err)) return err;
  const fe = err as Partial<FastifyError> & { validation?: unknown[]; validationContext?: string };
  if (Array.isArray(fe.validation)) {
    const where = CONTEXT_NAMES[fe.validationContext ?? 'body'] ?? 'body';
    return validationError(where, fe.validation as Parameters<typeof validationError>[1]);
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return createError('TOO_LARGE', 'The request body is larger than allowed', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return createError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json', { field: 'headers.content-type' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return createError('BAD_REQUEST', 'The request body is not valid JSON', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return createError('BAD_REQUEST', 'Content-Length does not match the body', { field: 'headers.content-length' });
  }
  // Other errors Fastify raises for the request itself (bad JSON caught by the parser,
  // prototype poisoning, malformed URLs) carry a 4xx status.
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = codeForStatus(status);
    const field = fe.name === 'SyntaxError' || status === 400 ? 'body' : undefined;
    return createError(code, code === 'BAD_REQUEST' ? 'The request body is not valid JSON' : ERROR_TABLE[code].title, { field });
  }
  return createError('INTERNAL', 'An internal error occurred', { cause: err });
}

function codeForStatus(status: number): ErrorCode {
  for (const [code, spec] of Object.entries(ERROR_TABLE)) {
    if (spec.status === status) return code as ErrorCode;
  }
  return 'BAD_REQUEST';
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: TemError): FastifyReply {
  let retryAfter = error.retryAfter;
  if (retryAfter === undefined && error.status === 503) retryAfter = STORE_RETRY_AFTER_S;
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  if (error.status === 401) reply.header('www-authenticate', 'Bearer');
  return reply
    .code(error.status)
    .type('application/problem+json; charset=utf-8')
    .send(toProblem(error, pathOf(request)));
}

export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const error = toClientError(err);
    const cause = isTemError(err) && err.cause ? err.cause : err;
    if (error.status === 503) {
      // The database or Redis is away: not a fault of this request, and an outage would log one
      // stack per request. Health, readiness and tem_database_up say what is down.
      request.log.warn({ code: error.code, reason: cause instanceof Error ? cause.message : String(cause) }, 'request failed: a dependency is unavailable');
    } else if (error.status >= 500) {
      request.log.error({ err: cause, code: error.code }, 'request failed');
    } else {
      request.log.debug({ code: error.code, field: error.field }, error.message);
    }
    return sendProblem(reply, request, error);
  });
  // Routes are added after this runs: the tracker sees them all.
  const allowed = new AllowedMethods();
  allowed.track(app);
  // A parameter route reached with a path that names a parameterless route for other methods
  // (`GET /api/events/batch` → `/api/events/:id`, refusing `batch` as an id): the method is wrong.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.routeOptions.url?.includes(':')) return;
    const path = pathOf(request);
    const methods = allowed.fixedFor(path);
    if (methods.length === 0 || methods.includes(request.method)) return;
    return methodNotAllowed(reply, request, path, methods);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = pathOf(request);
    const methods = allowed.for(path);
    if (methods.length > 0) return methodNotAllowed(reply, request, path, methods);
    return sendProblem(reply, request, createError('NOT_FOUND', `No route ${request.method} ${path}`));
  });
}

function pathOf(request: FastifyRequest): string {
  return request.url.split('?', 1)[0] ?? '/';
}

/** 405 with the `Allow` header listing what the path takes (RFC 9110 §15.5.6). */
function methodNotAllowed(reply: FastifyReply, request: FastifyRequest, path: string, methods: string[]): FastifyReply {
  reply.header('allow', methods.join(', '));
  return sendProblem(reply, request, createError('METHOD_NOT_ALLOWED', `${path} does not take ${request.method}; it takes ${methods.join(', ')}`));
}
