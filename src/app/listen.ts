import type { Server } from 'node:http';

/** Any Fastify instance, whatever its logger type. */
interface Listenable {
  listen(options: { host: string; port: number }): Promise<string>;
  server: Server;
}

/** Listens and returns the base URL actually bound (port 0 picks a free one). */
export async function listen(app: Listenable, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${bound}`;
}
