/**
 * A client that sends its request body too slowly (a byte now and then, or never the rest) gets
 * 408 problem+json once TEM_REQUEST_TIMEOUT_MS has passed, and its connection is closed: it
 * cannot hold a connection, and the server's slot, for as long as it likes.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../helpers/api.js';

describe('HTTP request timeout', () => {
  let api: TestApi;
  let port: number;
  beforeAll(async () => {
    api = await createTestApi({ listen: true, config: { requestTimeoutMs: 1000 } });
    port = Number(new URL(api.url!).port);
  });
  afterAll(async () => {
    await api?.close();
  });

  it('answers 408 to a body that does not arrive in time, and closes the connection', async () => {
    const { key } = await api.createPrincipal({ id: 'slow', kind: 'service' });
    const started = Date.now();
    const received = await new Promise<string>((resolve, reject) => {
      let data = '';
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST /api/events HTTP/1.1\r\nHost: x\r\nX-API-Key: ${key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type":`);
      });
      socket.on('data', (d) => (data += String(d)));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
      setTimeout(() => reject(new Error(`no answer in 10 s (got ${JSON.stringify(data)})`)), 10_000);
    });
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(received).toMatch(/application\/problem\+json/);
    expect(received).toMatch(/"code":"REQUEST_TIMEOUT"/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});
