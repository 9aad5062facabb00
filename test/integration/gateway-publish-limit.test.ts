/**
 * A client PUBLISH is held to the payload limit POST /api/publish applies (TEM_MAX_PAYLOAD_BYTES),
 * also when the frame limit would let a larger payload through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, WsTestClient, type GatewayHarness } from '../helpers/ws.js';
import type { TestPrincipal } from '../helpers/api.js';

let h: GatewayHarness;
let alice: TestPrincipal;

beforeAll(async () => {
  h = await startGatewayHarness({ config: { maxPayloadBytes: 1024, namespaces: { live: { clientPublish: true } } } });
  alice = await h.api.createPrincipal({ id: 'alice' });
  await h.api.store.addChannelMember('live:1:chat', 'alice');
});

afterAll(async () => {
  await h?.close();
});

describe('PUBLISH payload limit', () => {
  it('refuses a payload over maxPayloadBytes with TOO_LARGE and keeps the connection; one within it is published', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: alice.key }));
    expect((await c.request('SUBSCRIBE', { channels: ['live:1:chat'] })).type).toBe('SUBSCRIBED');
    const big = await c.request('PUBLISH', { channel: 'live:1:chat', event: 'message', payload: { text: 'x'.repeat(2000) } });
    expect(big).toMatchObject({ type: 'ERROR', payload: { code: 'TOO_LARGE', channel: 'live:1:chat' } });
    const small = await c.request('PUBLISH', { channel: 'live:1:chat', event: 'message', payload: { text: 'hi' } });
    expect(small).toMatchObject({ type: 'PUBLISHED', payload: { offset: 1 } });
    const event = await c.waitFor((f) => f.type === 'EVENT' && (f.payload as { event: string }).event === 'message');
    expect(event.payload).toMatchObject({ offset: 1, payload: { text: 'hi' } });
    await c.close();
  });
});
