/**
 * The WebSocket endpoint on a public listener. Upgrades go to the gateway (the HTTP server's
 * `upgrade` event); a plain request for the same path — `curl`, a browser tab, a proxy that
 * dropped the Upgrade header — gets `426 Upgrade Required` with `Upgrade: websocket`
 * (RFC 9110 §15.5.22) and a problem+json body saying how to connect, instead of a 404 that
 * says the endpoint does not exist.
 */
import type { FastifyInstance } from 'fastify';
import { createError } from '../core/errors.js';
import { WS_PATHS, type Gateway } from '../gateway/index.js';

export function serveWebSocketEndpoint(app: FastifyInstance, gateway: Pick<Gateway, 'attach'>): void {
  for (const path of WS_PATHS) {
    app.get(path, async (_request, reply) => {
      reply.header('upgrade', 'websocket').header('connection', 'Upgrade');
      throw createError('UPGRADE_REQUIRED', `${path} is the WebSocket endpoint: connect with a WebSocket client (GET with Upgrade: websocket)`);
    });
  }
  gateway.attach(app.server);
}
