/**
 * `tem gateway`: a WebSocket gateway node. Holds no database connection: API keys are checked
 * through the API's internal listener (cached ≤ TEM_INTROSPECT_CACHE_MS, dropped on revocation),
 * channel membership likewise, INGEST frames are forwarded there; JWTs are verified here when
 * the node has the JWT secret or public key. Publications, presence and sessions live in Redis
 * so any client may land on any node.
 */
import { createJwtVerifier, jwtSettingsDigest } from '../auth/jwt.js';
import { ConfigError } from '../config/index.js';
import { createGateway, httpChannelAccess, httpIngestPort, IntrospectionAuthenticator } from '../gateway/index.js';
import { createFastify } from '../ingest/http-common.js';
import { PUBLIC_LISTENER, listen } from './listen.js';
import { serveMetrics } from './metrics-listener.js';
import { serveWebSocketEndpoint } from './ws-endpoint.js';
import { createRuntime, runForever, startBus, startPresence, startSessions } from './runtime.js';

export async function runGateway(): Promise<void> {
  const rt = createRuntime('gateway');
  const { config, logger, metrics, clock, lifecycle } = rt;
  if (!config.redisUrl) {
    throw new ConfigError('REDIS_URL', 'tem gateway needs Redis (unset); use `tem start` for the embedded mode');
  }
  try {
    const bus = startBus(rt);
    const presence = startPresence(rt);
    const sessions = startSessions(rt);
    const auth = new IntrospectionAuthenticator({
      baseUrl: config.apiInternalUrl,
      cacheMs: config.introspectCacheMs,
      clock,
      jwt: createJwtVerifier(config, clock),
      jwtSettings: jwtSettingsDigest(config),
      logger,
    });
    const gateway = createGateway({
      config,
      logger,
      clock,
      metrics,
      bus,
      presence,
      sessions,
      auth,
      access: httpChannelAccess({ baseUrl: config.apiInternalUrl, clock }),
      ingest: httpIngestPort({ baseUrl: config.apiInternalUrl }),
      nodeId: config.nodeId,
    });

    // A small HTTP server for upgrades, liveness and this node's metrics.
    // The API's HTTP setup (problem+json errors, request ids) with no body worth taking.
    const app = createFastify({ logger, bodyLimit: 1024, requestTimeoutMs: config.requestTimeoutMs });
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      const redis = await bus.health();
      // Not ready until it hears revocations and notices too (it keeps trying to subscribe).
      const control = gateway.listeningForControl();
      const ok = redis === 'ok' && control;
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', redis, control: control ? 'listening' : 'not listening' });
    });
    serveMetrics(app, metrics);
    serveWebSocketEndpoint(app, gateway);
    const url = await listen(app, config.httpHost, config.httpPort, PUBLIC_LISTENER);
    lifecycle.add('http', () => app.close());
    lifecycle.add('gateway', () => gateway.close(1012));
    logger.info({ url, ws: `${url.replace(/^http/, 'ws')}/ws`, api: config.apiInternalUrl }, 'listening');
    runForever(rt);
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}
