/**
 * Errors the SDK hands to the application. Server ERROR frames keep their protocol code
 * (src/protocol/codes.ts); the client adds a few of its own for things that happen locally.
 */
import type { WsErrorCode } from '../protocol/index.js';

export type LocalErrorCode =
  /** No reply within the request timeout. */
  | 'TIMEOUT'
  /** The connection dropped while the request was in flight; it may or may not have run. */
  | 'DISCONNECTED'
  /** The client was closed (disconnect()), or the subscription was removed. */
  | 'CLOSED'
  /** Bad arguments caught before anything was sent. */
  | 'INVALID_ARGUMENT'
  /** The transport failed (a WebSocket could not be created, a getToken callback threw). */
  | 'TRANSPORT';

export type ClientErrorCode = WsErrorCode | LocalErrorCode;

export class TemClientError extends Error {
  readonly code: ClientErrorCode;
  /** True when the error came from the server in an ERROR frame. */
  readonly fromServer: boolean;
  /**
   * The server's finer cause, when its ERROR gave one (`IDEMPOTENCY_CONFLICT`,
   * `VALIDATION_FAILED`, `STORE_UNAVAILABLE`: a passing outage worth retrying).
   */
  readonly reason?: string;

  constructor(code: ClientErrorCode, message: string, options: { fromServer?: boolean; cause?: unknown; reason?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TemClientError';
    this.code = code;
    this.fromServer = options.fromServer ?? false;
    if (options.reason !== undefined) this.reason = options.reason;
  }
}

/** The TemClientError for a server ERROR frame's payload. */
export function serverError(payload: { code: WsErrorCode; message: string; reason?: unknown }): TemClientError {
  return new TemClientError(payload.code, payload.message, { fromServer: true, reason: typeof payload.reason === 'string' ? payload.reason : undefined });
}

export function isTemClientError(err: unknown): err is TemClientError {
  return err instanceof TemClientError;
}
