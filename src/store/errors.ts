/**
 * One mapping from driver errors to TemError, used by both transports so callers see the same
 * codes on PGlite and PostgreSQL. The original error stays as `cause` for logs.
 */
import { type TemError, createError, isTemError } from '../core/errors.js';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
  // postgres.js
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

/**
 * SQLSTATEs that mean "the server is not (or no longer) usable", besides class 08 (connection),
 * class 53 (insufficient resources: too many connections, disk full, out of memory) and class
 * 28 (the login was refused: a role or password changed under a running deployment). 3D000 and
 * 57P04: the database does not exist, or was dropped. 57014: a statement cancelled, by its
 * statement_timeout (the database too slow to answer in time) or by an operator. All are the
 * database's state, not the request's, and pass with time or once an operator acts: 503,
 * retried, never 500.
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '57P04', '3D000', '57014']);
const UNAVAILABLE_CLASSES = /^(08|53|28)[0-9A-Z]{3}$/;
/** 55000 is also raised by statements (e.g. currval before nextval): only this message counts. */
const NOT_ACCEPTING = /not currently accepting connections/;

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // Node's AggregateError for a connect that failed on every address.
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner)) for (const e of inner) if (codeOf(e)) return codeOf(e);
  return undefined;
}

export function isUnavailable(err: unknown): boolean {
  const code = codeOf(err);
  if (!code) return false;
  if (code === '55000') return NOT_ACCEPTING.test(String((err as { message?: unknown }).message ?? ''));
  return NETWORK_CODES.has(code) || UNAVAILABLE_STATES.has(code) || UNAVAILABLE_CLASSES.test(code);
}

/**
 * The server ended a session it had accepted: the connection closed or was reset under a
 * statement, or an operator terminated the backend (57P01). The database itself may well be
 * up (a new connection is the next thing to try), unlike a refused or timed-out connect.
 */
const LOST_SESSION = new Set(['CONNECTION_CLOSED', 'ECONNRESET', 'EPIPE', '57P01']);

/** Whether `err` (or the driver error a TemError wraps) is a session the server ended. */
export function isLostSession(err: unknown): boolean {
  const inner = isTemError(err) ? err.cause : err;
  return LOST_SESSION.has(codeOf(inner) ?? '');
}

export interface MapHints {
  /** What a foreign-key violation means for this operation (default BAD_REQUEST). */
  foreignKey?: { code: 'NOT_FOUND' | 'BAD_REQUEST'; detail: string; field?: string };
  /** Detail for a unique violation. */
  unique?: string;
}

export function mapDbError(err: unknown, hints: MapHints = {}): TemError {
  if (isTemError(err)) return err;
  const code = codeOf(err);
  if (isUnavailable(err)) return createError('STORE_UNAVAILABLE', 'The database is not reachable', { cause: err, retryAfter: 1 });
  if (code === '23505') return createError('CONFLICT', hints.unique ?? 'Already exists', { cause: err });
  if (code === '23503') {
    const fk = hints.foreignKey;
    return createError(fk?.code ?? 'BAD_REQUEST', fk?.detail ?? 'Refers to something that does not exist', {
      cause: err,
      field: fk?.field,
    });
  }
  if (code === '23514' || code === '23502' || (code !== undefined && code.startsWith('22'))) {
    return createError('BAD_REQUEST', 'Invalid value', { cause: err });
  }
  return createError('INTERNAL', 'An internal error occurred', { cause: err });
}

/** Runs `fn`, rethrowing anything as a mapped TemError. */
export async function mapped<T>(fn: () => Promise<T>, hints?: MapHints): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mapDbError(err, hints);
  }
}

