/**
 * Fastify settings and hooks both listeners share: the Ajv setup (no coercion, unknown fields
 * rejected), the problem+json error handling, request ids in logs, and per-route request
 * metrics.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyInstance, type FastifyRequest, type RouteOptions } from 'fastify';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createAjv } from './ajv.js';
import { createError } from '../core/errors.js';
import { rawProblemResponse } from '../core/raw-problem.js';
import { forbiddenKeyMessage, forbiddenKeyPath, mayHoldForbiddenKey } from '../core/forbidden-keys.js';
import { installProblemHandlers, sendProblem } from './problem.js';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** How often Node checks open connections against the request timeout (its own default is 30 s). */
const TIMEOUT_CHECK_MS = 1000;

/** Node's own headers timeout, kept unless the request timeout is shorter. */
const HEADERS_TIMEOUT_MS = 60_000;

/** `requestTimeoutMs`: TEM_REQUEST_TIMEOUT_MS, on every listener alike. */
export function createFastify(options: { logger: Logger; bodyLimit: number; requestTimeoutMs: number }): FastifyInstance {
  const { requestTimeoutMs } = options;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit,
    // Fastify sets no limit by default: a client sending a body a byte at a time held its
    // connection (and a slot of the server's) for as long as it liked.
    requestTimeout: requestTimeoutMs,
    // One access line per request from the onResponse hook instead of two from Fastify.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // A caller's X-Request-Id is kept when it is a sane token, so logs can be joined across
    // services; anything else gets a fresh id rather than reaching the logs verbatim.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
    },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Answered by the onRequest hook below instead, as problem+json like every other error.
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    // Raised before routing (e.g. bad percent-encoding), outside the error handler.
    frameworkErrors: (_err, request, reply) => {
      void sendProblem(reply, request, createError('BAD_REQUEST', 'The request URL is not valid', { field: 'url' }));
    },
    clientErrorHandler: answerClientError,
    // Node answers an HTTP/1.1 request without Host with a bare 400 before any handler runs; the
    // onRequest hook below answers it as problem+json naming the header instead.
    // Node enforces the request timeout only while the headers timeout is no longer than it.
    http: { requireHostHeader: false, connectionsCheckingInterval: TIMEOUT_CHECK_MS, headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs) },
  }) as unknown as FastifyInstance;
  const ajv = createAjv();
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  let closing = false;
  // The request id is echoed so a client can quote it when reporting a problem. Once closing, a
  // request that still arrives (the next one on a connection that was busy when close began)
  // gets 503 with Retry-After and the connection is closed: the client retries elsewhere.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) {
      reply.header('connection', 'close');
      return sendProblem(reply, request, createError('SHUTTING_DOWN', 'The server is shutting down'));
    }
    // HTTP/1.1 requires Host (RFC 9112 §3.2); HTTP/1.0 clients may leave it out.
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      reply.header('connection', 'close');
      return sendProblem(reply, request, createError('BAD_REQUEST', 'An HTTP/1.1 request must carry a Host header', { field: 'headers.host' }));
    }
    // Bodies are read as sent: a compressed one would be taken for bad JSON (gzip) or, worse,
    // read as if it were not compressed at all.
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      return sendProblem(reply, request, createError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${encoding} is not supported; send the body uncompressed`, { field: 'headers.content-encoding' }));
    }
  });
  // Closing: a request in flight on a keep-alive connection (a gateway's introspection call, say)
  // would otherwise leave its connection open, idle, for keepAliveTimeout (72 s) after its answer,
  // and close() would wait for it. From now on an answered connection idles 1 ms at most.
  app.addHook('preClose', (done) => {
    closing = true;
    app.server.keepAliveTimeout = 1;
    done();
  });
  // An empty query parameter (`?status=&cursor=`, as forms and URL templates send them) is no
  // parameter: no filter, the first page. An API route that takes no query (the ingest path, an
  // event's detail, key creation) refuses a parameter that has a value, as its schema would an
  // unknown field: `POST /api/events?idempotency_key=k` or `…/keys?expires_at=…` must not be
  // answered as if the value had been taken. Public routes (health, metrics, the console) are
  // left as they are: probes and scrapers add parameters of their own.
  app.addHook('onRoute', (route) => {
    const takesQuery = route.schema?.querystring !== undefined;
    if (!takesQuery && !route.config?.permission) return;
    const dropEmpty = async (request: FastifyRequest): Promise<void> => {
      const query = request.query as Record<string, unknown> | undefined;
      if (!query || typeof query !== 'object') return;
      for (const k of Object.keys(query)) {
        if (query[k] === '') delete query[k];
        // `?limit=5&limit=6` arrives as an array, which no query schema takes: say what happened
        // rather than "must be string".
        else if (takesQuery && Array.isArray(query[k])) throw createError('VALIDATION_FAILED', `query.${k} is given more than once`, { field: `query.${k}` });
        else if (!takesQuery) throw createError('VALIDATION_FAILED', `query.${k} is not a known field: this route takes no query parameters`, { field: `query.${k}` });
      }
    };
    runFirst(route, dropEmpty);
  });
  // Only POST /api/events honours an Idempotency-Key. Elsewhere a client retrying after a
  // timeout would take the key for a guarantee and get a second publication, principal or key:
  // refused, as an unknown field is, before anything is done.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!methods.includes('POST') || !route.config?.permission || route.config.honoursIdempotencyKey) return;
    const detail = route.config.idempotencyKeyRefusal ?? 'This route does not take an Idempotency-Key (only POST /api/events does): nothing here would be deduplicated by it';
    const refuseKey = async (request: FastifyRequest): Promise<void> => {
      if (request.headers['idempotency-key'] !== undefined) throw createError('VALIDATION_FAILED', detail, { field: 'headers.idempotency-key' });
    };
    runFirst(route, refuseKey);
  });
  // JSON only: a text/plain body is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');
  // An empty body labelled application/json is no body: many HTTP clients send that header on
  // every request, including a retry, a key revocation or a membership PUT that take no body.
  // Routes that need a body still answer 400 naming it; anything else is Fastify's own parser.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    // JSON is UTF-8 (RFC 8259 §8.1) and is read as such: a body declared in another charset
    // would be read as something else than was sent.
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(request.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return done(createError('UNSUPPORTED_MEDIA_TYPE', `charset ${charset} is not supported; send JSON as UTF-8`, { field: 'headers.content-type' }), undefined);
    }
    if (body === '') return done(null, undefined);
    parseJson(request, body as string, (err, value) => {
      // Refused by the prototype-poisoning check (Fastify reports it as invalid JSON): valid
      // JSON, so say which key instead.
      const path = err && mayHoldForbiddenKey(body as string) ? poisonedPath(body as string) : null;
      if (path) done(createError('VALIDATION_FAILED', forbiddenKeyMessage(path), { field: path }), undefined);
      else done(err, value);
    });
  });
  installProblemHandlers(app);
  return app;
}

function poisonedPath(text: string): string | null {
  try {
    return forbiddenKeyPath(JSON.parse(text) as unknown, 'body');
  } catch {
    return null;
  }
}

/**
 * A request Node's HTTP parser refused (a malformed request line or header, headers over the
 * limit) never reaches Fastify's handlers: it is answered here, as problem+json too, and the
 * connection closed. Nothing is answered on a socket that is already gone.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  // A request not received in time gets 408, as Node and Fastify answer it.
  const error =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? createError('REQUEST_TIMEOUT', 'The request was not received in time')
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? createError('HEADERS_TOO_LARGE', 'The request headers are larger than allowed', { field: 'headers' })
        : createError('BAD_REQUEST', 'The request is not valid HTTP', { field: err.code === 'HPE_INVALID_HEADER_TOKEN' ? 'headers' : 'request' });
  // Written, then the socket is destroyed: a half-open client must not keep it until a timeout.
  socket.write(rawProblemResponse(error), () => socket.destroy());
}

export function installRequestMetrics(app: FastifyInstance, metrics: Metrics | undefined): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    if (metrics) {
      metrics.httpRequests.inc({ method: request.method, route, status: String(status) });
      metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    }
    const line = { method: request.method, route, status, ms: Math.round(reply.elapsedTime * 10) / 10 };
    // 503: a dependency is away (logged once per request at warn, see installProblemHandlers).
    if (status === 503) request.log.warn(line, 'request completed');
    else if (status >= 500) request.log.error(line, 'request completed');
    else if (status >= 400) request.log.info(line, 'request completed');
    else request.log.debug(line, 'request completed');
  });
}

/** Puts `hook` before the route's own preValidation hooks (and any added before it). */
function runFirst(route: RouteOptions, hook: (request: FastifyRequest) => Promise<void>): void {
  const own = route.preValidation;
  route.preValidation = (own ? [hook, ...(Array.isArray(own) ? own : [own])] : hook) as typeof route.preValidation;
}
