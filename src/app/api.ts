/**
 * `tem api`: the public HTTP API and the internal listener, on PostgreSQL. With REDIS_URL it also
 * serves /api/publish and presence, and forwards key revocations to gateway nodes.
 */
import { setUpAdminKey } from './admin-key.js';
import { INTERNAL_LISTENER, PUBLIC_LISTENER, listen } from './listen.js';
import { createRuntime, runForever, startBus, startPresence, startStore } from './runtime.js';
import { buildApiCore } from './api-core.js';

export async function runApi(): Promise<void> {
  const rt = createRuntime('api');
  const { config, logger, lifecycle } = rt;
  try {
    const store = await startStore(rt, { requireDatabaseUrl: true });
    await setUpAdminKey(store, config, { writeFile: false, logger });
    const bus = startBus(rt);
    const presence = startPresence(rt);
    if (bus.kind === 'memory') {
      // Legitimate for an API without real-time delivery, but no gateway will hear from this
      // process: say so once instead of letting publishes and revocations vanish silently.
      logger.warn('REDIS_URL is not set: /api/publish, presence and key revocations reach no gateway from this process');
    }
    const { api, internal } = await buildApiCore(rt, { store, bus, presence });

    const url = await listen(api, config.httpHost, config.httpPort, PUBLIC_LISTENER);
    lifecycle.add('api', () => api.close());
    const internalUrl = await listen(internal, config.internalHost, config.internalPort, INTERNAL_LISTENER, [{ url, settings: PUBLIC_LISTENER }]);
    lifecycle.add('internal', () => internal.close());
    logger.info({ url, console: `${url}/console`, internal: internalUrl, bus: bus.kind }, 'listening');
    runForever(rt);
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}
