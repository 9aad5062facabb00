/**
 * A problem+json answer written straight to a socket, for requests no framework handles: those
 * Node's HTTP parser refuses, and WebSocket upgrades that are refused before the handshake.
 */
import { STATUS_CODES } from 'node:http';
import { toProblem, type TemError } from './errors.js';

/** The whole HTTP/1.1 response (with Retry-After when the error has one); the connection is closed after it. */
export function rawProblemResponse(error: TemError): string {
  const body = JSON.stringify(toProblem(error));
  const extra = error.retryAfter !== undefined ? `Retry-After: ${error.retryAfter}\r\n` : '';
  return (
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n` +
    `Content-Type: application/problem+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`
  );
}
