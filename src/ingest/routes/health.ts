/**
 * GET /api/v1/health (database and bus state, 503 when the database is down), GET /healthz
 * (liveness: the process answers) and GET /readyz (readiness: the database answers and the
 * server is not draining). No credentials needed.
 */
import { createRequire } from 'node:module';
import { isTemError } from '../../core/errors.js';
import type { Store } from '../../store/types.js';
import type { ApiRoutePlugin } from '../types.js';

const require = createRequire(import.meta.url);
/** The package version, read once. */
export const VERSION: string = (() => {
  for (const path of ['../../../package.json', '../../../../package.json']) {
    try {
      const pkg = require(path) as { name?: string; version?: string };
      if (pkg.name === 'telemetry-event-mesh' && pkg.version) return pkg.version;
    } catch {
      /* try the next location (src/ vs dist/src/) */
    }
  }
  return '0.0.0';
})();

const PING_TIMEOUT_MS = 2000;

/** Whether the database answers within a short time. */
export async function databaseUp(store: Store, timeoutMs = PING_TIMEOUT_MS): Promise<boolean> {
  return (await databaseDown(store, timeoutMs)) === null;
}

/**
 * Null when the database answers within a short time; else why not, as the store said it
 * (the embedded disk almost full, the server unreachable) or 'no answer'.
 */
async function databaseDown(store: Store, timeoutMs = PING_TIMEOUT_MS): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      store.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('ping timed out')), timeoutMs);
      }),
    ]);
    return null;
  } catch (err) {
    return isTemError(err) && err.code === 'STORE_UNAVAILABLE' ? err.message : 'no answer';
  } finally {
    clearTimeout(timer);
  }
}

export const healthRoutes: ApiRoutePlugin = async (app, { store, bus, isShuttingDown }) => {
  app.get('/api/v1/health', async (_request, reply) => {
    const [db, redis] = await Promise.all([
      databaseUp(store),
      bus?.kind === 'redis' ? bus.health().catch(() => 'down' as const) : Promise.resolve('disabled' as const),
    ]);
    // Redis down still leaves the API usable: notifications wait in the outbox.
    const status = !db ? 'down' : redis === 'down' ? 'degraded' : 'ok';
    reply.code(db ? 200 : 503);
    if (!db) reply.header('retry-after', '2');
    return { status, database: db ? 'ok' : 'down', redis, version: VERSION };
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    if (isShuttingDown?.()) {
      reply.code(503);
      return { status: 'not_ready', reason: 'shutting down' };
    }
    const down = await databaseDown(store);
    if (down !== null) {
      reply.code(503);
      return { status: 'not_ready', reason: 'database unavailable', detail: down };
    }
    return { status: 'ready' };
  });
};
