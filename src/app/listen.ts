import type { Server } from 'node:http';

/** Any Fastify instance, whatever its logger type. */
interface Listenable {
  listen(options: { host: string; port: number; listenTextResolver?: (address: string) => string }): Promise<string>;
  server: Server;
}

/** The settings a listener's host and port come from, named in start-up errors. */
export interface ListenSettings {
  host: string;
  port: string;
}

export const PUBLIC_LISTENER: ListenSettings = { host: 'TEM_HTTP_HOST', port: 'TEM_HTTP_PORT' };
export const INTERNAL_LISTENER: ListenSettings = { host: 'TEM_INTERNAL_HOST', port: 'TEM_INTERNAL_PORT' };
/** A worker's metrics listener (src/app/metrics-listener.ts) binds the public host. */
export const METRICS_LISTENER: ListenSettings = { host: 'TEM_HTTP_HOST', port: 'TEM_METRICS_PORT' };

/** The base URL of a listener on `host`:`port`: one on every address is reached on loopback. */
export function httpUrl(host: string, port: number): string {
  const shown = ['0.0.0.0', '::', ''].includes(host) ? '127.0.0.1' : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
}

/**
 * Listens and returns the base URL actually bound (port 0 picks a free one). Fastify logs each
 * bound address itself; its wording is changed so that the process's one `listening` line, with
 * every URL it serves, is the only line that says so (what scripts wait for).
 * A listen that fails because of a setting (a busy port, a host that does not resolve or is not
 * this machine's) stops start-up with a message naming that setting.
 */
export async function listen(app: Listenable, host: string, port: number, settings: ListenSettings, own: OwnListener[] = []): Promise<string> {
  try {
    await app.listen({ host, port, listenTextResolver: (address) => `bound ${address}` });
  } catch (err) {
    throw settingError(err, host, port, settings, own) ?? err;
  }
  const address = app.server.address();
  return httpUrl(host, typeof address === 'object' && address ? address.port : port);
}

/** A listener this process opened already, and the settings it came from. */
export interface OwnListener {
  url: string;
  settings: ListenSettings;
}

function settingError(err: unknown, host: string, port: number, settings: ListenSettings, own: OwnListener[]): Error | null {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host}:${port}`;
  // The port this process's own other listener took: two settings name the same port.
  const mine = own.find((l) => Number(new URL(l.url).port) === port);
  const message =
    code === 'EADDRINUSE' && mine ? `${settings.port}=${port}: the same port as ${mine.settings.port}; each listener needs its own (or 0 for a free one)`
    : code === 'EADDRINUSE' ? `${settings.port}=${port}: ${where} is already in use (another server is listening there; pick another port, or 0 for a free one)`
    : code === 'EACCES' ? `${settings.port}=${port}: not allowed to listen on ${where} (ports below 1024 need privileges)`
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `${settings.host}=${host}: no such host`
    : code === 'EADDRNOTAVAIL' ? `${settings.host}=${host}: not an address of this machine`
    : null;
  // Named like a ConfigError: the CLI prints the message alone and exits 2, as for any bad setting.
  return message === null ? null : Object.assign(new Error(message), { name: 'ConfigError' });
}
