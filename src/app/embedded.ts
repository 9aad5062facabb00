/**
 * Composition root of the embedded mode (`tem start`, `npm start`): API, worker, maintenance,
 * outbox relay, gateway and console in one process, on PGlite and the in-memory bus by default
 * (DATABASE_URL / REDIS_URL switch either to the real thing).
 */
import { createGateway, serviceIngestPort, storeChannelAccess } from '../gateway/index.js';
import { OutboxRelay } from '../outbox/index.js';
import { MaintenanceWorker, Worker, loadProcessors } from '../worker/index.js';
import { setUpAdminKey } from './admin-key.js';
import { createRuntime, runForever, startBus, startPresence, startSessions, startStore, type ConfigOverrides, type Runtime } from './runtime.js';
import { buildApiCore } from './api-core.js';
import { INTERNAL_LISTENER, PUBLIC_LISTENER, listen } from './listen.js';
import { writeServerFile } from './server-file.js';
import { serveWebSocketEndpoint } from './ws-endpoint.js';
import type { Store } from '../store/types.js';

export interface EmbeddedServer {
  runtime: Runtime;
  store: Store;
  /** Public base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  internalUrl: string;
  wsUrl: string;
  adminKeyPath: string | null;
  close(): Promise<void>;
}

export async function startEmbedded(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Promise<EmbeddedServer> {
  const rt = createRuntime('embedded', overrides, env);
  const { config, logger, metrics, clock, lifecycle } = rt;
  try {
    const store = await startStore(rt);
    const adminKey = await setUpAdminKey(store, config, { writeFile: true, logger });
    if (adminKey.path) logger.info({ path: adminKey.path, created: adminKey.created }, 'admin key file');

    const bus = startBus(rt);
    const presence = startPresence(rt);
    const sessions = startSessions(rt);
    const { authenticator, ingest, limiter, api, internal } = await buildApiCore(rt, { store, bus, presence });
    const gateway = createGateway({
      config,
      logger,
      clock,
      metrics,
      bus,
      presence,
      sessions,
      auth: authenticator,
      access: storeChannelAccess(store),
      ingest: serviceIngestPort(ingest, (auth) => limiter.count(auth)),
      nodeId: config.nodeId,
    });
    serveWebSocketEndpoint(api, gateway);

    // Closers run in reverse: the listeners stop taking events (and readiness turns 503) first,
    // then the worker finishes or releases what it holds, then maintenance and the relay.
    const processors = await loadProcessors(config.processors);
    const worker = new Worker({ store, config, logger, clock, metrics, processors, workerId: `${config.nodeId}/processing` });
    const relay = new OutboxRelay({ store, bus, logger, metrics, clock });
    const maintenance = new MaintenanceWorker({ store, config, logger, clock, metrics, workerId: `${config.nodeId}/maintenance` });
    await relay.start();
    lifecycle.add('relay', () => relay.stop());
    await maintenance.start();
    lifecycle.add('maintenance', () => maintenance.stop());
    await worker.start();
    lifecycle.add('worker', () => worker.stop());

    const url = await listen(api, config.httpHost, config.httpPort, PUBLIC_LISTENER);
    lifecycle.add('api', () => api.close());
    lifecycle.add('gateway', () => gateway.close(1012));
    const internalUrl = await listen(internal, config.internalHost, config.internalPort, INTERNAL_LISTENER, [{ url, settings: PUBLIC_LISTENER }]);
    lifecycle.add('internal', () => internal.close());

    const wsUrl = `${url.replace(/^http/, 'ws')}/ws`;
    // Admin commands run without --url find this server through it (src/app/server-file.ts).
    try {
      const removeServerFile = writeServerFile(config.dataDir, { url, internal: internalUrl, ws: wsUrl });
      lifecycle.add('server file', async () => removeServerFile());
    } catch (err) {
      // Only the CLI's default target depends on it: --url still works.
      logger.warn({ err, data_dir: config.dataDir }, 'cannot write server.json; admin commands need --url');
    }
    logger.info({ url, console: `${url}/console`, ws: wsUrl, internal: internalUrl, admin_key_path: adminKey.path, database: store.kind, bus: bus.kind }, 'listening');
    return { runtime: rt, store, url, internalUrl, wsUrl, adminKeyPath: adminKey.path, close: () => lifecycle.close() };
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}

export async function runEmbedded(): Promise<void> {
  const server = await startEmbedded();
  runForever(server.runtime);
}
