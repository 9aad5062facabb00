import type { Server } from 'node:http';

/** Any Fastify instance, whatever its logger type. */
interface Listenable {
  listen(options: { host: string; port: number; listenTextResolver?: (address: string) => string }): Promise<string>;
  server: Server;
}

/**
 * Listens and returns the base URL actually bound (port 0 picks a free one). Fastify logs each
 * bound address itself; its wording is changed so that the process's one `listening` line, with
 * every URL it serves, is the only line that says so (what scripts wait for).
 */
export async function listen(app: Listenable, host: string, port: number): Promise<string> {
  await app.listen({ host, port, listenTextResolver: (address) => `bound ${address}` });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${bound}`;
}
