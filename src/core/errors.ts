/**
 * The one error-code table. Every error a client can see is built from a code here;
 * the record is exhaustive so the compiler catches a code without a status.
 * HTTP answers render these as application/problem+json; WebSocket ERROR frames
 * carry the protocol subset (see src/protocol/codes.ts).
 */
export const ERROR_TABLE = {
  BAD_REQUEST: { status: 400, title: 'Bad request' },
  VALIDATION_FAILED: { status: 400, title: 'Validation failed' },
  UNAUTHORIZED: { status: 401, title: 'Unauthorized' },
  FORBIDDEN: { status: 403, title: 'Forbidden' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  REQUEST_TIMEOUT: { status: 408, title: 'Request timeout' },
  CONFLICT: { status: 409, title: 'Conflict' },
  IDEMPOTENCY_CONFLICT: { status: 409, title: 'Idempotency key reused with a different request' },
  INVALID_STATE: { status: 409, title: 'Invalid state for this operation' },
  TOO_LARGE: { status: 413, title: 'Payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  UPGRADE_REQUIRED: { status: 426, title: 'Upgrade required' },
  HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  INTERNAL: { status: 500, title: 'Internal server error' },
  STORE_UNAVAILABLE: { status: 503, title: 'Database unavailable' },
  BUS_UNAVAILABLE: { status: 503, title: 'Message bus unavailable' },
  SHUTTING_DOWN: { status: 503, title: 'Server is shutting down' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export interface ErrorOptions {
  /** The request field at fault, e.g. `body.type` or `query.since`. */
  field?: string;
  /** Extra machine-readable members copied onto the problem document. */
  extra?: Record<string, unknown>;
  cause?: unknown;
  /** Seconds a client should wait before retrying (429/503). */
  retryAfter?: number;
}

export class TemError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly field?: string;
  readonly extra?: Record<string, unknown>;
  readonly retryAfter?: number;

  constructor(code: ErrorCode, detail: string, options: ErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TemError';
    this.code = code;
    this.status = ERROR_TABLE[code].status;
    this.field = options.field;
    this.extra = options.extra;
    this.retryAfter = options.retryAfter;
  }

  get title(): string {
    return ERROR_TABLE[this.code].title;
  }
}

export function createError(code: ErrorCode, detail: string, options?: ErrorOptions): TemError {
  return new TemError(code, detail, options);
}

export function isTemError(err: unknown): err is TemError {
  return err instanceof TemError;
}

/** Wraps anything thrown into a TemError; unknown throws become INTERNAL without leaking their message. */
export function toTemError(err: unknown): TemError {
  if (err instanceof TemError) return err;
  return new TemError('INTERNAL', 'An internal error occurred', { cause: err });
}

/** RFC 9457 problem document for an error. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  field?: string;
  [extra: string]: unknown;
}

export function toProblem(err: TemError, instance?: string): Problem {
  const problem: Problem = {
    type: `https://tem.dev/problems/${err.code.toLowerCase().replace(/_/g, '-')}`,
    title: err.title,
    status: err.status,
    detail: err.message,
    code: err.code,
  };
  if (err.field) problem.field = err.field;
  if (instance) problem.instance = instance;
  // Extra members never replace the standard ones (`status` stays the HTTP status).
  if (err.extra) for (const [k, v] of Object.entries(err.extra)) if (!(k in problem)) (problem as unknown as Record<string, unknown>)[k] = v;
  return problem;
}
