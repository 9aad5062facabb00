/**
 * Redis connections for the bus, presence and sessions, configured to fail fast.
 *
 * Every caller of the bus must learn at once when Redis is away (the outbox relay keeps its rows
 * and retries; the gateway answers the client), so no command is ever parked:
 * - `enableOfflineQueue: false`: a command issued while disconnected rejects immediately;
 * - `maxRetriesPerRequest: 0`: commands in flight when the socket closes reject at the close
 *   (they may or may not have run; callers treat that like any failed publish);
 * - `commandTimeout`: a connection that is up but silent (network black hole) rejects too;
 * - `autoResubscribe: false`: the bus re-subscribes itself on `ready` from its own list of local
 *   handlers, so a channel unsubscribed while Redis was down is not resurrected.
 * The connection itself keeps reconnecting forever with capped backoff.
 */
import { Redis } from 'ioredis';
import { createError, isTemError, type TemError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';

export interface RedisConnectionOptions {
  url: string;
  /** CLIENT SETNAME value, so operators (and tests) can find this connection in CLIENT LIST. */
  name: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  logger?: Logger;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 2000;

/** A connection plus whether it has ever been ready (start-up waits; outages fail fast). */
export interface RedisConnection {
  readonly redis: Redis;
  readonly connectTimeoutMs: number;
  everReady: boolean;
  /** The first connection attempt, shared by every command issued before it completes. */
  startup?: Promise<void>;
}

export function openRedis(options: RedisConnectionOptions): RedisConnection {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const redis = new Redis(options.url, {
    connectionName: options.name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeout: connectTimeoutMs,
    retryStrategy: (times: number) => Math.min(times * 50, 1000),
  });
  const conn: RedisConnection = { redis, connectTimeoutMs, everReady: false };
  redis.on('ready', () => {
    conn.everReady = true;
  });
  // Without a listener ioredis prints every connection error to stderr.
  redis.on('error', (err: Error) => options.logger?.debug({ err: err.message, conn: options.name }, 'redis connection error'));
  return conn;
}

/** Calls `handler` each time the connection is ready again after it was lost (not at the first connect). */
export function onReconnected(conn: RedisConnection, handler: () => void): void {
  let readyBefore = false;
  conn.redis.on('ready', () => {
    if (readyBefore) handler();
    readyBefore = true;
  });
}

const unreachable = (): TemError => createError('BUS_UNAVAILABLE', 'Redis is unreachable', { retryAfter: 1 });

/**
 * Resolves when the connection can take a command. During the very first connection attempt it
 * waits for it (so a bus used right after construction works); otherwise it never waits.
 */
export function whenReady(conn: RedisConnection): Promise<void> | undefined {
  const { redis } = conn;
  if (redis.status === 'ready') return undefined;
  if (conn.everReady || !['wait', 'connecting', 'connect'].includes(redis.status)) return Promise.reject(unreachable());
  conn.startup ??= new Promise<void>((resolve, reject) => {
    const done = (err?: TemError): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('close', onClose);
      conn.startup = undefined;
      if (err) reject(err);
      else resolve();
    };
    const onReady = (): void => done();
    const onClose = (): void => done(unreachable());
    const timer = setTimeout(onClose, conn.connectTimeoutMs);
    redis.once('ready', onReady);
    redis.once('close', onClose);
  });
  return conn.startup;
}

/** Runs a Redis call once the connection is usable; any failure becomes BUS_UNAVAILABLE. */
export async function withRedis<T>(conn: RedisConnection, run: (redis: Redis) => Promise<T>): Promise<T> {
  try {
    const waiting = whenReady(conn);
    if (waiting) await waiting;
    return await run(conn.redis);
  } catch (err) {
    dropIfTimedOut(conn, err);
    throw toUnavailable(err);
  }
}

/**
 * A command that timed out leaves the socket in doubt (black-holed network, hung server): start
 * over on a fresh connection rather than wait for a reply that may never come.
 */
export function dropIfTimedOut(conn: RedisConnection, err: unknown): void {
  if (err instanceof Error && err.message === 'Command timed out' && conn.redis.status === 'ready') conn.redis.disconnect(true);
}

export function toUnavailable(err: unknown): TemError {
  if (isTemError(err)) return err;
  return createError('BUS_UNAVAILABLE', 'Redis is unreachable', { cause: err, retryAfter: 1 });
}

/** Closes politely when connected, otherwise drops the socket (and stops reconnecting). */
export async function closeRedis(conn: RedisConnection): Promise<void> {
  if (conn.redis.status === 'ready') {
    try {
      await conn.redis.quit();
      return;
    } catch {
      // fall through to disconnect
    }
  }
  conn.redis.disconnect(false);
}

/** Escapes glob metacharacters so a literal string can start a PSUBSCRIBE/SCAN pattern. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Registers a Lua script on a connection and returns a typed caller (EVALSHA, falling back to
 * EVAL once per socket). `numberOfKeys` null: the number of keys varies and goes with each call.
 */
export function defineScript<T>(redis: Redis, name: string, numberOfKeys: number | null, lua: string): (keys: string[], args: (string | number)[]) => Promise<T> {
  redis.defineCommand(name, numberOfKeys === null ? { lua } : { numberOfKeys, lua });
  const commands = redis as unknown as Record<string, (...args: (string | number)[]) => Promise<T>>;
  return numberOfKeys === null ? (keys, args) => commands[name]!(keys.length, ...keys, ...args) : (keys, args) => commands[name]!(...keys, ...args);
}
