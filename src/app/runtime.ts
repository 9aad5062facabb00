/**
 * What every process role starts with: frozen config, a logger naming the role and node, the
 * metrics registry, the clock and the ordered shutdown list.
 */
import { ConfigError, loadConfig, namespaceOptions, unknownEnvSettings, withoutPassword, type TemConfig } from '../config/index.js';
import { isTemError } from '../core/errors.js';
import { systemClock, type Clock } from '../core/clock.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { createBus } from '../bus/index.js';
import type { Bus } from '../bus/types.js';
import { openStore } from '../store/index.js';
import { createPresenceStore, createSessionStore } from '../presence/index.js';
import type { PresenceStore, SessionStore } from '../presence/types.js';
import type { Store } from '../store/types.js';
import { Lifecycle } from './lifecycle.js';
import { lockDataDir } from './data-dir-lock.js';
import { ensureDataDir } from './data-dir.js';

export type ConfigOverrides = Parameters<typeof loadConfig>[0];

export interface Runtime {
  role: string;
  config: TemConfig;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  lifecycle: Lifecycle;
}

export function createRuntime(role: string, overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Runtime {
  const config = loadConfig(overrides, env);
  const logger = createLogger({ level: config.logLevel, role, nodeId: config.nodeId });
  for (const { variable, didYouMean } of unknownEnvSettings(env)) {
    logger.warn({ variable, did_you_mean: didYouMean }, `${variable} is not a setting and is ignored${didYouMean ? ` (did you mean ${didYouMean}?)` : ''}; see docs/configuration.md`);
  }
  // The shutdown may use the whole drain time (workers finishing jobs), plus a margin for the
  // rest (listeners, the store): all closers together, not each of them.
  const lifecycle = new Lifecycle(logger, config.shutdownTimeoutMs + 5000);
  return { role, config, logger, metrics: createMetrics({ node: config.nodeId, role }), clock: systemClock, lifecycle };
}

/** Opens (and migrates) the store: PostgreSQL when DATABASE_URL is set, else PGlite in dataDir. */
export async function startStore(rt: Runtime, options: { requireDatabaseUrl?: boolean; poolMax?: number } = {}): Promise<Store> {
  const { config } = rt;
  if (options.requireDatabaseUrl && !config.databaseUrl) {
    throw new ConfigError('DATABASE_URL', `tem ${rt.role} needs PostgreSQL (unset); use \`tem start\` for the embedded mode`);
  }
  // The data dir holds the embedded database and admin.key; create it on first start.
  if (!config.databaseUrl) {
    ensureDataDir(config.dataDir);
    const release = lockDataDir(config.dataDir);
    rt.lifecycle.add('data dir lock', release);
  }
  const store = await openStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.databaseUrl ? undefined : config.dataDir,
    poolMax: options.poolMax,
    minFreeDiskBytes: config.minFreeDiskMb * 1024 * 1024,
    onDiskSpace: (low, freeBytes) => {
      const fields = { data_dir: config.dataDir, free_mib: Math.floor(freeBytes / 1048576), min_free_mib: config.minFreeDiskMb };
      if (low) rt.logger.error(fields, 'disk almost full: the embedded database takes no statements until space is freed');
      else rt.logger.info(fields, 'disk space freed: the embedded database takes statements again');
    },
  }).catch((err: unknown) => {
    // A server that cannot reach its database at start says which setting named it, as a
    // listener that cannot bind does (the cause, e.g. the refused connect, follows it).
    if (config.databaseUrl && isTemError(err) && err.code === 'STORE_UNAVAILABLE') {
      throw new Error(`DATABASE_URL=${withoutPassword(config.databaseUrl)}: the database is not reachable`, { cause: err.cause });
    }
    throw err;
  });
  rt.lifecycle.add('store', () => store.close());
  return store;
}

export function startBus(rt: Runtime): Bus {
  const bus = createBus({
    redisUrl: rt.config.redisUrl,
    cluster: rt.config.redisCluster,
    prefix: rt.config.redisPrefix,
    namespaces: (channel) => namespaceOptions(rt.config, channel),
    name: rt.config.nodeId,
    logger: rt.logger,
    onPublishFailure: () => rt.metrics.busPublishFailures.inc(),
    positionTtlMs: rt.config.positionTtlMs,
  });
  rt.lifecycle.add('bus', () => bus.close());
  return bus;
}

/** Presence (Redis when configured, else memory), closed on shutdown. */
export function startPresence(rt: Runtime): PresenceStore {
  const { config, logger } = rt;
  const presence = createPresenceStore({ redisUrl: config.redisUrl, cluster: config.redisCluster, prefix: config.redisPrefix, name: config.nodeId, logger });
  rt.lifecycle.add('presence', () => presence.close());
  return presence;
}

/** Resumable sessions (Redis when configured, else memory), closed on shutdown. */
export function startSessions(rt: Runtime): SessionStore {
  const { config, logger } = rt;
  const sessions = createSessionStore({ redisUrl: config.redisUrl, cluster: config.redisCluster, prefix: config.redisPrefix, name: config.nodeId, logger });
  rt.lifecycle.add('sessions', () => sessions.close());
  return sessions;
}

/** Runs a role in the foreground: graceful exit 0 on a stop signal (STOP_SIGNALS in lifecycle.ts). */
export function runForever(rt: Runtime): void {
  rt.lifecycle.handleSignals();
}
