/**
 * The cap on connections per remote address still waiting for HELLO (TEM_WS_PENDING_PER_IP), on
 * PostgreSQL with real sockets. Every client here comes from 127.0.0.1, so they share one cap.
 * Each test ends with the node back at zero pending slots: a slot that leaked would show there.
 */
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestPrincipal } from '../helpers/api.js';
import { services } from '../helpers/services.js';
import { closeAllClients, startGatewayHarness, WsTestClient, type GatewayHarness, type GatewayNode } from '../helpers/ws.js';

const CAP = 3;

async function gauge(node: GatewayNode): Promise<number> {
  return (await node.metrics.wsPending.get()).values[0]?.value ?? 0;
}

async function refusals(node: GatewayNode): Promise<number> {
  return (await node.metrics.wsPendingLimitCloses.get()).values[0]?.value ?? 0;
}

/** Waits until the node holds `n` pending slots (closes are seen by the server a moment later). */
async function pendingBecomes(node: GatewayNode, n: number, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await gauge(node)) !== n) {
    if (Date.now() > deadline) throw new Error(`pending connections: expected ${n}, got ${await gauge(node)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Opens `n` sockets without credentials. */
async function unauthenticated(node: GatewayNode, n: number): Promise<WsTestClient[]> {
  const clients: WsTestClient[] = [];
  for (let i = 0; i < n; i++) clients.push(await WsTestClient.connect(node.wsUrl()));
  return clients;
}

/** Accepted (still open after a round trip) or the close code it got. */
async function outcome(c: WsTestClient): Promise<'open' | number> {
  const pong = c.request('PING', {}).then(() => 'open' as const);
  return Promise.race([pong, c.closed.then((x) => x.code)]);
}

describe.skipIf(!services.postgres)('connections waiting for HELLO, per address', () => {
  let h: GatewayHarness;
  let alice: TestPrincipal;
  let node: GatewayNode;

  beforeAll(async () => {
    h = await startGatewayHarness({ kind: 'postgres', config: { wsPendingPerIp: CAP, wsHelloTimeoutMs: 30_000 } });
    node = h.node;
    alice = await h.api.createPrincipal({ id: 'alice' });
  });

  afterEach(async () => {
    await closeAllClients();
    await pendingBecomes(node, 0);
  });

  afterAll(async () => {
    await h?.close();
  });

  it(`keeps ${CAP} unauthenticated sockets open and closes the next one 1013`, async () => {
    const before = await refusals(node);
    const held = await unauthenticated(node, CAP);
    expect(await Promise.all(held.map(outcome))).toEqual(held.map(() => 'open'));
    await pendingBecomes(node, CAP);

    const extra = await WsTestClient.connect(node.wsUrl());
    const closed = await extra.closed;
    expect(closed.code).toBe(1013);
    expect(closed.reason).toMatch(/unauthenticated connections/);
    expect(await refusals(node)).toBe(before + 1);
    // The refusal took no slot, and the others are untouched.
    expect(await gauge(node)).toBe(CAP);
    for (const c of held) expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('gives the slot back when a waiting socket authenticates with HELLO', async () => {
    const held = await unauthenticated(node, CAP);
    expect((await WsTestClient.connect(node.wsUrl()).then((c) => c.closed)).code).toBe(1013);

    const ack = await held[0]!.request('HELLO', { token: alice.key });
    expect(ack.type).toBe('HELLO_ACK');
    await pendingBecomes(node, CAP - 1);
    const next = await WsTestClient.connect(node.wsUrl());
    expect(await outcome(next)).toBe('open');
    // The authenticated one does not count: the address is full again with the new one.
    expect((await WsTestClient.connect(node.wsUrl()).then((c) => c.closed)).code).toBe(1013);
    expect(held[0]!.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('gives the slot back when a waiting socket is closed by the client', async () => {
    const held = await unauthenticated(node, CAP);
    await held[1]!.close();
    await pendingBecomes(node, CAP - 1);
    const next = await WsTestClient.connect(node.wsUrl());
    expect(await outcome(next)).toBe('open');
    await pendingBecomes(node, CAP);
  });

  it('gives the slot back when HELLO carries a bad token (4001) or none', async () => {
    const held = await unauthenticated(node, CAP);
    held[0]!.send('HELLO', { token: 'tem_not_a_key' });
    expect((await held[0]!.closed).code).toBe(4001);
    held[1]!.send('HELLO', {});
    expect((await held[1]!.closed).code).toBe(4001);
    await pendingBecomes(node, CAP - 2);
    const again = await unauthenticated(node, 2);
    expect(await Promise.all(again.map(outcome))).toEqual(['open', 'open']);
  });

  it('does not count connections authenticated at the upgrade, nor refuse them', async () => {
    await unauthenticated(node, CAP);
    const byQuery = await Promise.all([1, 2, 3, 4].map(() => WsTestClient.ready(node.wsUrl({ token: alice.key }))));
    const byHeader = await WsTestClient.ready(node.wsUrl(), { headers: { authorization: `Bearer ${alice.key}` } });
    for (const c of [...byQuery, byHeader]) expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect(await gauge(node)).toBe(CAP);
  });

  it('frees the slot of a socket that never sends HELLO once its timeout closes it', async () => {
    const quick = await h.addNode({ config: { wsPendingPerIp: 2, wsHelloTimeoutMs: 300 } });
    const held = await unauthenticated(quick, 2);
    expect((await WsTestClient.connect(quick.wsUrl()).then((c) => c.closed)).code).toBe(1013);
    for (const c of held) expect((await c.closed).code).toBe(4001);
    await pendingBecomes(quick, 0);
    const again = await unauthenticated(quick, 2);
    expect(await Promise.all(again.map(outcome))).toEqual(['open', 'open']);
    // Shutdown (1012) frees them too.
    await quick.close();
    for (const c of again) expect((await c.closed).code).toBe(1012);
    expect(await gauge(quick)).toBe(0);
  });

  it('applies no cap with 0', async () => {
    const open = await h.addNode({ config: { wsPendingPerIp: 0 } });
    const many = await unauthenticated(open, CAP * 3);
    expect(await Promise.all(many.map(outcome))).toEqual(many.map(() => 'open'));
    await pendingBecomes(open, CAP * 3);
    await closeAllClients();
    await pendingBecomes(open, 0);
  });
});
