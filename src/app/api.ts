/**
 * `tem api`: the public HTTP API and the internal listener, on PostgreSQL. With REDIS_URL it also
 * serves /api/publish and presence, and forwards key revocations to gateway nodes.
 */
import { Authenticator } from '../auth/authenticator.js';
import { consolePlugin } from '../console/plugin.js';
import { buildApiServer, buildInternalServer, IngestService } from '../ingest/index.js';
import { createPresenceStore } from '../presence/index.js';
import { setUpAdminKey } from './admin-key.js';
import { listen } from './listen.js';
import { createRuntime, runForever, startBus, startStore } from './runtime.js';
import { forwardAuthChanges } from './wiring.js';

export async function runApi(): Promise<void> {
  const rt = createRuntime('api');
  const { config, logger, metrics, clock, lifecycle } = rt;
  try {
    const store = await startStore(rt, { requireDatabaseUrl: true });
    await setUpAdminKey(store, config, { writeFile: false });
    const bus = startBus(rt);
    const presence = createPresenceStore({ redisUrl: config.redisUrl, prefix: config.redisPrefix, name: config.nodeId, logger });
    lifecycle.add('presence', () => presence.close());

    const authenticator = new Authenticator(store, config, clock);
    await authenticator.start();
    lifecycle.add('authenticator', () => authenticator.close());
    forwardAuthChanges(authenticator, bus, logger);

    const ingest = new IngestService({ store, config, clock, metrics });
    lifecycle.add('ingest', () => ingest.close());
    const api = await buildApiServer({ store, config, logger, clock, metrics, authenticator, bus, presence, ingest });
    await api.register(consolePlugin, config.publicWsUrl ? { wsUrl: config.publicWsUrl } : {});
    const internal = await buildInternalServer({ config, logger, authenticator, store, metrics, ingest });

    const url = await listen(api, config.httpHost, config.httpPort);
    lifecycle.add('api', () => api.close());
    const internalUrl = await listen(internal, config.internalHost, config.internalPort);
    lifecycle.add('internal', () => internal.close());
    logger.info({ url, console: `${url}/console`, internal: internalUrl, bus: bus.kind }, 'listening');
    runForever(rt);
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}
