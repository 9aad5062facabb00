/**
 * WebSocket protocol codes, shared by the gateway and the client SDK. No Node imports here:
 * this file ships in the browser bundle.
 */
export const WS_ERROR_CODES = [
  'UNAUTHORIZED',
  'FORBIDDEN',
  'BAD_REQUEST',
  'UNKNOWN_TYPE',
  'NOT_FOUND',
  'RATE_LIMITED',
  'TOO_LARGE',
  'INTERNAL',
] as const;
export type WsErrorCode = (typeof WS_ERROR_CODES)[number];

export const CLOSE_CODES = {
  NORMAL: 1000,
  POLICY: 1008,
  TOO_BIG: 1009,
  SERVER_ERROR: 1011,
  SERVER_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4001,
  HEARTBEAT_TIMEOUT: 4008,
} as const;
export type CloseCode = (typeof CLOSE_CODES)[keyof typeof CLOSE_CODES];

/** Close codes after which a client should not reconnect without something changing (a new token). */
export const TERMINAL_CLOSE_CODES: readonly number[] = [CLOSE_CODES.UNAUTHORIZED];
