/**
 * Isolation and multi-node fan-out on one MemoryHub: 50 users × 3 devices spread over two
 * gateway nodes. Every user's events reach all of that user's devices, on whichever node, and
 * nobody else's; a shared channel reaches its subscribers on both nodes exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublication, startGatewayHarness, WsTestClient, type GatewayHarness, type GatewayNode } from '../helpers/ws.js';
import { namespaceResolver } from '../../src/bus/namespaces.js';
import type { Bus, Publication } from '../../src/bus/types.js';

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

const ownBuses: Bus[] = [];

afterAll(async () => {
  await h?.close();
  for (const b of ownBuses) await b.close();
});

/**
 * A node's bus whose deliveries to one subscription (a channel or a pattern) can be held back:
 * the node gets one copy of a publication per matching bus subscription, one after the other, and
 * over Redis a client frame can be handled between two of them.
 */
function busHolding(): { bus: Bus; hold(topic: string): void; release(): void } {
  const inner = h.hub.node({ namespaces: namespaceResolver(h.api.config), clock: h.api.clock });
  ownBuses.push(inner);
  let held: { topic: string; queue: (() => void)[] } | null = null;
  const bus = new Proxy(inner, {
    get(target, key) {
      if (key === 'subscribe') {
        return (topic: string, handler: (pub: Publication) => void) =>
          target.subscribe(topic, (pub: Publication) => {
            if (held?.topic === topic) held.queue.push(() => handler(pub));
            else handler(pub);
          });
      }
      const value: unknown = Reflect.get(target, key);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    bus,
    hold: (topic) => void (held = { topic, queue: [] }),
    release: () => {
      const queue = held?.queue ?? [];
      held = null;
      for (const deliver of queue) deliver();
    },
  };
}

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

describe('leaving one of two subscriptions that deliver the same channel', () => {
  const offsets = (c: WsTestClient, channel: string) => c.events(channel).map((f) => f.payload.offset as number);

  /** Subscribes `keep` and `leave`, publishes 3 on `channel` while `keep`'s copies are held, leaves `leave`, then lets them through. */
  async function leaveWhileCopiesAreOnTheirWay(keep: string, leave: string, channel: string): Promise<void> {
    const { bus, hold, release } = busHolding();
    const node = await h.addNode({ bus });
    const svc = await h.api.createPrincipal({ kind: 'service' });
    const c = await WsTestClient.ready(node.wsUrl({ token: svc.key }));
    await c.requestMany('SUBSCRIBE', { channels: [keep, leave] }, 2);
    hold(keep);
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await h.bus.publish(channel, 'msg', { i }));
    await c.waitCount((f) => isPublication(f, channel), 3);
    await c.request('UNSUBSCRIBE', { channels: [leave] });
    release();
    sent.push(await h.bus.publish(channel, 'msg', { i: 3 }));
    await c.waitCount((f) => isPublication(f, channel), 4);
    await new Promise((r) => setTimeout(r, 100)); // room for a duplicate to show up
    expect(offsets(c, channel)).toEqual(sent.map((p) => p.offset));
    await c.close();
    await node.close();
  }

  it('a channel left under a pattern: the pattern does not send again what the channel sent', async () => {
    await leaveWhileCopiesAreOnTheirWay('server:5:*', 'server:5:a', 'server:5:a');
  });

  it('a pattern left under a wider one: the wider one does not send again what the left one sent', async () => {
    await leaveWhileCopiesAreOnTheirWay('server:6:*', 'server:6:x:*', 'server:6:x:1');
  });
});
