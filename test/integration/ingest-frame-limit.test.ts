/**
 * INGEST frames follow the same rules as POST /api/events, the per-key request budget included:
 * on the embedded server, and through the internal listener that gateway nodes ingest through
 * in a distributed deployment. One budget for both paths.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WsTestClient } from '../helpers/ws.js';
import { startServer, type TestServer } from './client-server.js';

let s: TestServer;

beforeAll(async () => {
  s = await startServer({ config: { rateLimitPoints: 6, rateLimitWindowS: 60 } });
});

afterAll(async () => {
  await s?.close();
  s?.remove();
});

describe('the request budget for INGEST frames', () => {
  it('refuses INGEST frames past the key’s budget with RATE_LIMITED, and HTTP shares that budget', async () => {
    const key = await s.createUser('u_frames');
    const c = await WsTestClient.ready(`${s.wsUrl}?token=${encodeURIComponent(key)}`);
    const replies = [];
    for (let i = 0; i < 7; i++) replies.push(await c.request('INGEST', { type: 'order.created', payload: { i } }));
    expect(replies.map((r) => r.type)).toEqual([...Array(6).fill('INGESTED'), 'ERROR']);
    expect(replies[6]!.payload).toMatchObject({ code: 'RATE_LIMITED' });
    expect(c.ws.readyState).toBe(1);
    const http = await s.api('POST', '/api/events', { type: 'order.created', payload: {} }, key);
    expect(http.status).toBe(429);
    await c.close();
  });

  it('counts ingest through the internal listener (distributed gateways) against the same budget', async () => {
    const key = await s.createUser('u_internal');
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`${s.server.internalUrl}/internal/realtime/ingest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: key, event: { type: 'order.created', payload: { i } } }),
      });
      statuses.push(res.status);
      if (res.status === 429) expect(await res.json()).toMatchObject({ code: 'RATE_LIMITED' });
    }
    expect(statuses).toEqual([...Array(6).fill(202), 429]);
  });
});
