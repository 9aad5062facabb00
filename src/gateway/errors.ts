/**
 * TemError codes → WebSocket ERROR codes (contract §4 has a smaller table). Unknown throws are
 * INTERNAL with a generic message: a stack or driver message never reaches a client.
 */
import { isTemError, type ErrorCode } from '../core/errors.js';
import type { WsErrorCode } from '../protocol/codes.js';

const MAP: Record<ErrorCode, WsErrorCode> = {
  BAD_REQUEST: 'BAD_REQUEST',
  VALIDATION_FAILED: 'BAD_REQUEST',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  METHOD_NOT_ALLOWED: 'BAD_REQUEST',
  CONFLICT: 'BAD_REQUEST',
  IDEMPOTENCY_CONFLICT: 'BAD_REQUEST',
  INVALID_STATE: 'BAD_REQUEST',
  TOO_LARGE: 'TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'BAD_REQUEST',
  HEADERS_TOO_LARGE: 'TOO_LARGE',
  UPGRADE_REQUIRED: 'BAD_REQUEST',
  REQUEST_TIMEOUT: 'BAD_REQUEST',
  RATE_LIMITED: 'RATE_LIMITED',
  INTERNAL: 'INTERNAL',
  STORE_UNAVAILABLE: 'INTERNAL',
  BUS_UNAVAILABLE: 'INTERNAL',
  SHUTTING_DOWN: 'INTERNAL',
};

/**
 * The WebSocket code, and — when the table folds a more precise error into it — that error's own
 * code as `reason` (the one HTTP would answer: `IDEMPOTENCY_CONFLICT`, `STORE_UNAVAILABLE`), so a
 * client can tell a conflict from a malformed frame, or a passing outage from a bug.
 */
export function wsErrorOf(err: unknown): { code: WsErrorCode; message: string; reason?: ErrorCode } {
  if (!isTemError(err)) return { code: 'INTERNAL', message: 'An internal error occurred' };
  const code = MAP[err.code];
  if (code === 'INTERNAL' && err.code === 'INTERNAL') return { code, message: 'An internal error occurred' };
  const message = err.field ? `${err.message} (${err.field})` : err.message;
  return err.code === code ? { code, message } : { code, message, reason: err.code };
}
