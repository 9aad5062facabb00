/**
 * The WebSocket endpoint on the embedded server's public listener: upgrades connect, and plain
 * HTTP requests for the same paths are told to upgrade (426) rather than that nothing is there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServer, type TestServer } from './client-server.js';

let s: TestServer;

beforeAll(async () => {
  s = await startServer();
});

afterAll(async () => {
  await s?.close();
  s?.remove();
});

describe('the WebSocket endpoint over plain HTTP', () => {
  it.each(['/ws', '/api/v1/ws', '/ws?token=x'])('GET %s without an upgrade answers 426 with Upgrade: websocket', async (path) => {
    const res = await fetch(`http://127.0.0.1:${s.port}${path}`);
    expect(res.status).toBe(426);
    expect(res.headers.get('upgrade')).toBe('websocket');
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as { status: number; code: string; detail: string };
    expect(body).toMatchObject({ status: 426, code: 'UPGRADE_REQUIRED' });
    expect(body.detail).toContain('WebSocket');
  });

  it('another method on the path answers 405 naming GET', async () => {
    const res = await fetch(`http://127.0.0.1:${s.port}/ws`, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toContain('GET');
  });

  it('a real upgrade on the same path still connects and gets HELLO_ACK', async () => {
    const ws = new WebSocket(`${s.wsUrl}?token=${encodeURIComponent(s.adminKey)}`);
    try {
      const first = await new Promise<{ type: string }>((resolve, reject) => {
        ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()) as { type: string }));
        ws.once('error', reject);
      });
      expect(first.type).toBe('HELLO_ACK');
    } finally {
      ws.terminate();
    }
  });
});
