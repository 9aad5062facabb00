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
 *
 * On a Redis Cluster (`cluster: true`) a command connection is an ioredis `Cluster`, which sends
 * each command to the node owning its key's slot (every script's keys share one slot: they carry
 * one hash tag). Subscriber connections stay plain connections to the seed node: classic pub/sub
 * reaches every node of a cluster, and a connection of our own tells us when it came back, which
 * the bus needs to look for what it missed (see RedisBus).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { dropHungNodes, isTimeout, openCluster } from './cluster-connection.js';
import { createError, isTemError, type TemError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';

/** A command connection: one server, or a whole Redis Cluster. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  url: string;
  /** REDIS_URL names one node of a Redis Cluster: route commands by slot (default false). */
  cluster?: boolean;
  /**
   * A plain connection to a cluster node: the cluster's other nodes, tried in turn when the
   * connection's node keeps failing (any node serves classic pub/sub).
   */
  otherNodes?: () => { host: string; port: number }[];
  /** CLIENT SETNAME value, so operators (and tests) can find this connection in CLIENT LIST. */
  name: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  logger?: Logger;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 2000;

/** A connection plus whether it has ever been ready (start-up waits; outages fail fast). */
export interface RedisConnection<C extends RedisClient = RedisClient> {
  readonly redis: C;
  readonly connectTimeoutMs: number;
  everReady: boolean;
  /** The first connection attempt, shared by every command issued before it completes. */
  startup?: Promise<void>;
}

export function openRedis(options: RedisConnectionOptions & { cluster: true }): RedisConnection<Cluster>;
export function openRedis(options: RedisConnectionOptions & { cluster?: false }): RedisConnection<Redis>;
export function openRedis(options: RedisConnectionOptions): RedisConnection;
export function openRedis(options: RedisConnectionOptions): RedisConnection {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const common: RedisOptions = {
    connectionName: options.name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeout: connectTimeoutMs,
  };
  const retry = (times: number): number => Math.min(times * 50, 1000);
  const redis: RedisClient = options.cluster
    ? openCluster(options.url, common, retry)
    : new Redis(options.url, {
        ...common,
        retryStrategy: (times) => {
          // From the second attempt on, each one goes to another known node than the one that
          // just failed (the connector reads host and port from these options at each connect).
          // The list holds every node of the cluster, this one included: picking from it blindly
          // can come back to the node that stays away, a hung one costing seconds per attempt.
          if (times >= 2) {
            const current = (redis as Redis).options;
            const others = (options.otherNodes?.() ?? []).filter((n) => n.host !== current.host || n.port !== current.port);
            if (others.length > 0) Object.assign(current, others[(times - 2) % others.length]);
          }
          return retry(times);
        },
      });
  const conn: RedisConnection = { redis, connectTimeoutMs, everReady: false };
  redis.on('ready', () => {
    conn.everReady = true;
  });
  // Without a listener ioredis prints every connection error to stderr.
  redis.on('error', (err: Error) => options.logger?.debug({ err: err.message, conn: options.name }, 'redis connection error'));
  return conn;
}

/**
 * Calls `handler` each time the connection is ready again after it was lost (not at the first
 * connect). On a cluster the client as a whole stays ready while one node restarts or fails over
 * (its slots may have lost their keys), so a node connection opened anew while the cluster is
 * ready counts too, once it is ready.
 */
export function onReconnected(conn: RedisConnection, handler: () => void): void {
  let readyBefore = false;
  const { redis } = conn;
  redis.on('ready', () => {
    if (readyBefore) handler();
    readyBefore = true;
  });
  if (redis instanceof Cluster) {
    redis.on('+node', (node: Redis) => {
      if (readyBefore && redis.status === 'ready') node.once('ready', handler);
    });
  }
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
export async function withRedis<C extends RedisClient, T>(conn: RedisConnection<C>, run: (redis: C) => Promise<T>): Promise<T> {
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
 * over on a fresh connection rather than wait for a reply that may never come. On a cluster only
 * the node that does not answer is dropped: dropping the whole client would cut every other
 * node's slots off too, for as long as reconnecting keeps running into the hung node.
 */
export function dropIfTimedOut(conn: RedisConnection, err: unknown): void {
  if (!isTimeout(err)) return;
  const { redis } = conn;
  if (redis instanceof Cluster) dropHungNodes(redis);
  else if (redis.status === 'ready') redis.disconnect(true);
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
export function defineScript<T>(redis: RedisClient, name: string, numberOfKeys: number | null, lua: string): (keys: string[], args: (string | number)[]) => Promise<T> {
  redis.defineCommand(name, numberOfKeys === null ? { lua } : { numberOfKeys, lua });
  const commands = redis as unknown as Record<string, (...args: (string | number)[]) => Promise<T>>;
  return numberOfKeys === null ? (keys, args) => commands[name]!(keys.length, ...keys, ...args) : (keys, args) => commands[name]!(...keys, ...args);
}
