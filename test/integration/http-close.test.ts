/**
 * Closing a listener while a keep-alive request is in flight: the request is answered, and close()
 * does not then wait for the client's idle connection (keepAliveTimeout is 72 s); a request that
 * still arrives on that connection gets 503 problem+json and the connection is closed.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config/index.js';
import { createFastify } from '../../src/ingest/http-common.js';
import { silentLogger } from '../../src/observability/logger.js';

// fetch, as gateways call the internal listener: its pool keeps connections alive.
async function get(url: string): Promise<number> {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

/** A listener with /fast and /slow; /slow answers once release() is called. */
function withSlowRoute() {
  const app = createFastify({ logger: silentLogger(), bodyLimit: 1024, requestTimeoutMs: SETTINGS.requestTimeoutMs.default });
  let releaseSlow: (() => void) | undefined;
  const started = new Promise<void>((resolve) => {
    app.get('/slow', async () => {
      resolve();
      await new Promise<void>((r) => (releaseSlow = r));
      return { ok: true };
    });
  });
  app.get('/fast', async () => ({ ok: true }));
  return { app, started, release: () => releaseSlow?.() };
}

describe('closing an HTTP listener', () => {
  it('answers the request in flight, then lets its keep-alive connection go', async () => {
    const { app, started, release } = withSlowRoute();
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      expect(await get(`${url}/fast`)).toBe(200);
      const answer = get(`${url}/slow`);
      await started;
      const closed = app.close();
      // Answer only once the server has stopped listening: the connection turns idle after
      // the server's own sweep of idle connections.
      while (app.server.listening) await new Promise((r) => setTimeout(r, 5));
      release();
      expect(await answer).toBe(200);
      // Without the fix this waits for the idle connection's 72 s keep-alive timeout.
      let done = false;
      await Promise.race([closed.then(() => (done = true)), new Promise((r) => setTimeout(r, 5000))]);
      expect(done).toBe(true);
    } finally {
      release();
    }
  });
});

describe('a request arriving while the listener closes', () => {
  it('gets 503 problem+json with Retry-After, and the connection is closed', async () => {
    const { app, started, release } = withSlowRoute();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    // One raw connection: the first request keeps it busy while close() begins, so the server
    // cannot drop it as idle, and the second arrives on it once the server is closing.
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    try {
      socket.write('GET /slow HTTP/1.1\r\nHost: t\r\n\r\n');
      await started;
      const closed = app.close();
      while (app.server.listening) await new Promise((r) => setTimeout(r, 5));
      socket.write('GET /fast HTTP/1.1\r\nHost: t\r\n\r\n');
      await new Promise((r) => setTimeout(r, 50));
      release();
      await ended;
      await closed;
      const [first, second] = received.split(/(?=HTTP\/1\.1 )/);
      expect(first).toMatch(/^HTTP\/1\.1 200 /);
      expect(second).toMatch(/^HTTP\/1\.1 503 /);
      expect(second).toMatch(/^content-type: application\/problem\+json/im);
      expect(second).toMatch(/^retry-after: \d+/im);
      expect(second).toMatch(/^connection: close/im);
      expect(JSON.parse(second!.slice(second!.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 503, code: 'SHUTTING_DOWN' });
    } finally {
      release();
      socket.destroy();
    }
  });
});
