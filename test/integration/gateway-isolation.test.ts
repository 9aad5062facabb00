/**
 * Isolation and multi-node fan-out on one MemoryHub: 50 users × 3 devices spread over two
 * gateway nodes. Every user's events reach all of that user's devices, on whichever node, and
 * nobody else's; a shared channel reaches its subscribers on both nodes exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublication, startGatewayHarness, WsTestClient, type GatewayHarness, type GatewayNode } from '../helpers/ws.js';

const USERS = 50;
const DEVICES = 3;
const EVENTS_PER_USER = 4;

let h: GatewayHarness;
let nodeB: GatewayNode;
const devices = new Map<string, WsTestClient[]>();

beforeAll(async () => {
  h = await startGatewayHarness();
  nodeB = await h.addNode();
  const users = await Promise.all(Array.from({ length: USERS }, (_, i) => h.api.createPrincipal({ id: `u${i}` })));
  for (const u of users) {
    const conns = await Promise.all(
      Array.from({ length: DEVICES }, (_, d) => WsTestClient.ready((d % 2 === 0 ? h.node : nodeB).wsUrl({ token: u.key }))),
    );
    devices.set(u.id, conns);
  }
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('isolation', () => {
  it("each user's events reach all of its devices, on both nodes, and no one else's", async () => {
    expect(h.node.gateway.connectionCount() + nodeB.gateway.connectionCount()).toBe(USERS * DEVICES);
    for (let n = 0; n < EVENTS_PER_USER; n++) {
      await Promise.all([...devices.keys()].map((user) => h.bus.publish(`user:${user}`, 'event.update', { user_id: user, n })));
    }
    for (const [user, conns] of devices) {
      for (const c of conns) {
        await c.waitCount((f) => f.type === 'EVENT', EVENTS_PER_USER, 10_000);
      }
      for (const c of conns) {
        const events = c.frames.filter((f) => f.type === 'EVENT');
        expect(events.map((f) => f.payload.channel)).toEqual(Array(EVENTS_PER_USER).fill(`user:${user}`));
        expect(events.map((f) => (f.payload.payload as { user_id: string; n: number }).n)).toEqual([0, 1, 2, 3]);
        expect(events.every((f) => (f.payload.payload as { user_id: string }).user_id === user)).toBe(true);
      }
    }
  });

  it('a shared channel reaches subscribers on both nodes exactly once; a device on both a pattern and the channel gets one copy', async () => {
    const svc = await h.api.createPrincipal({ id: 'svc', kind: 'service' });
    const onA = await WsTestClient.ready(h.wsUrl({ token: svc.key }));
    const onB = await WsTestClient.ready(nodeB.wsUrl({ token: svc.key }));
    await onA.requestMany('SUBSCRIBE', { channels: ['server:1:channel:1', 'server:1:*', 'server:*'] }, 3);
    await onB.request('SUBSCRIBE', { channels: ['server:1:channel:1'] });
    for (let i = 0; i < 5; i++) await h.bus.publish('server:1:channel:1', 'msg', { i });
    await h.bus.publish('server:1:channel:2', 'msg', { other: true });
    await onA.waitCount((f) => isPublication(f), 6);
    await onB.waitCount((f) => isPublication(f), 5);
    await new Promise((r) => setTimeout(r, 100));
    expect(onA.events('server:1:channel:1').map((f) => (f.payload.payload as { i: number }).i)).toEqual([0, 1, 2, 3, 4]);
    expect(onA.events('server:1:channel:2')).toHaveLength(1);
    expect(onB.events('server:1:channel:1')).toHaveLength(5);
    expect(onB.events('server:1:channel:2')).toHaveLength(0);
    await onA.close();
    await onB.close();
  });

  it('a PUBLISH from a client on one node reaches a client on the other', async () => {
    const [a] = devices.get('u1')!;
    const b = devices.get('u2')![1]!; // device 1 is on node B
    await h.api.store.addChannelMember('dm:u1-u2', 'u1');
    await h.api.store.addChannelMember('dm:u1-u2', 'u2');
    await b.request('SUBSCRIBE', { channels: ['dm:u1-u2'] });
    // dm has no client publish by default: the service path publishes instead.
    expect(await a!.request('PUBLISH', { channel: 'dm:u1-u2', event: 'msg', payload: {} })).toMatchObject({ payload: { code: 'FORBIDDEN' } });
    await h.bus.publish('dm:u1-u2', 'msg', { text: 'hi' });
    expect((await b.waitFor((f) => isPublication(f, 'dm:u1-u2'))).payload.payload).toEqual({ text: 'hi' });
  });

  it('the node leaves a bus channel when its last local subscriber does', async () => {
    const [a] = devices.get('u3')!;
    await h.api.store.addChannelMember('live:77:chat', 'u3');
    const before = h.node.metrics.wsSubscriptions;
    const count = async () => (await before.get()).values[0]?.value ?? 0;
    const start = await count();
    await a!.request('SUBSCRIBE', { channels: ['live:77:chat'] });
    expect(await count()).toBe(start + 1);
    await a!.request('UNSUBSCRIBE', { channels: ['live:77:chat'] });
    expect(await count()).toBe(start);
    await h.bus.publish('live:77:chat', 'm', {});
    await new Promise((r) => setTimeout(r, 100));
    expect(a!.events('live:77:chat')).toEqual([]);
  });
});
