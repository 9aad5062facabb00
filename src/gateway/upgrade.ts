/**
 * HTTP upgrade → WebSocket. A token in the query (`?token=`), `Authorization: Bearer` or `X-API-Key` is
 * checked before the handshake, so a connection that is ready gets HELLO_ACK at once; otherwise the
 * client has config.wsHelloTimeoutMs to send HELLO {token}.
 *
 * Refusals happen after the handshake, as close frames with a code and a reason (4001 bad token
 * or malformed query; 1013 too many attempts, or too many connections from one address still
 * waiting for HELLO): a browser cannot read the status of a failed
 * upgrade, but it can read a close code. Only requests for other paths get an HTTP 404 (and a
 * node shutting down a 503), as problem+json.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createError } from '../core/errors.js';
import { rawProblemResponse } from '../core/raw-problem.js';

export const WS_PATHS: readonly string[] = ['/ws', '/api/v1/ws'];

export interface UpgradeInfo {
  path: string;
  token: string | null;
  /** Why the credentials could not be read (the connection will be closed 4001 with it). */
  problem: string | null;
}

function decode(value: string): string | null {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/**
 * An absolute-form request target (`GET http://host/ws HTTP/1.1`, RFC 9112 §3.2.2, which a
 * server must accept; some proxies send it) as the origin form the rest reads (`/ws`).
 */
function originForm(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url);
  if (!m) return url;
  const rest = url.slice(m[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** `token[]`, `token[0]`: a token sent the way some form encoders send arrays. */
const TOKEN_ARRAY = /^token\[[^\]]*\]$/;

/** Reads path and token leniently: nothing here throws, whatever the client sent. */
export function readUpgrade(req: Pick<IncomingMessage, 'url' | 'headers'>): UpgradeInfo {
  const url = originForm(req.url ?? '/');
  const q = url.indexOf('?');
  let path = q === -1 ? url : url.slice(0, q);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const query = q === -1 ? '' : url.slice(q + 1);
  const tokens = new Set<string>();
  let problem: string | null = null;
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decode(eq === -1 ? part : part.slice(0, eq));
    if (key !== null && TOKEN_ARRAY.test(key)) problem = 'malformed query string: give the token once, as token=<key or JWT>';
    if (key !== 'token') continue;
    const value = decode(eq === -1 ? '' : part.slice(eq + 1));
    if (value === null) problem = 'malformed query string: token is not valid percent-encoding';
    else if (value.trim() === '') problem = 'empty token in query string';
    else tokens.add(value.trim());
  }
  const header = req.headers.authorization;
  if (typeof header === 'string' && header.trim() !== '') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header.trim());
    if (m) tokens.add(m[1]!);
    else problem ??= 'Authorization header must be "Bearer <token>"';
  }
  // X-API-Key as on the HTTP API (server-side clients can set headers).
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim() !== '') tokens.add(apiKey.trim());
  if (tokens.size > 1) problem ??= 'more than one token given';
  const token = problem === null && tokens.size === 1 ? [...tokens][0]! : null;
  return { path, token, problem };
}

export function isGatewayPath(path: string): boolean {
  return WS_PATHS.includes(path);
}

/** Answers a non-WebSocket path on an upgrade request and drops the socket. */
export function rejectUpgrade(socket: Duplex, status: 404 | 503): void {
  const error =
    status === 404
      ? createError('NOT_FOUND', `No WebSocket endpoint here; connect to ${WS_PATHS.join(' or ')}`)
      : createError('SHUTTING_DOWN', 'The server is shutting down; connect to another node', { retryAfter: 1 });
  try {
    socket.end(rawProblemResponse(error));
  } catch {
    socket.destroy();
  }
}

export interface EarlyClose {
  code: number;
  reason: string;
}
