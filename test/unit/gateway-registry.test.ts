import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory.js';
import type { Bus, Publication } from '../../src/bus/types.js';
import type { Subscriber } from '../../src/gateway/fanout.js';
import { Registry } from '../../src/gateway/registry.js';
import { UpdateOrder } from '../../src/gateway/update-order.js';
import type { StreamPosition } from '../../src/protocol/frames.js';

/**
 * A bus whose live deliveries can be held back while history already has them: as on Redis,
 * where history is read on one connection and publications arrive on another.
 */
function laggingBus(inner: MemoryBus): { bus: Bus; hold(): void; release(): void } {
  let held: (() => void)[] | null = null;
  const bus = Object.create(inner) as Bus;
  bus.subscribe = (channel, handler) =>
    inner.subscribe(channel, (pub: Publication) => {
      if (held) held.push(() => handler(pub));
      else handler(pub);
    });
  return {
    bus,
    hold: () => void (held ??= []),
    release: () => {
      const queue = held ?? [];
      held = null;
      for (const deliver of queue) deliver();
    },
  };
}

function subscriber(id: string): Subscriber & { offsets: number[]; positions: Map<string, StreamPosition> } {
  const offsets: number[] = [];
  return {
    id,
    userId: id,
    channels: new Set(['live:1:chat']),
    positions: new Map(),
    offsets,
    deliver: (frame: Buffer) => {
      const m = /"offset":(\d+)/.exec(frame.toString('utf8'));
      offsets.push(Number(m![1]));
    },
  };
}

const CH = 'live:1:chat';
let inner: MemoryBus;

/** A subscriber of CH receiving live publications from now on. */
async function liveSubscriber(registry: Registry, id: string): Promise<ReturnType<typeof subscriber>> {
  const sub = subscriber(id);
  await registry.addPending(sub, CH);
  registry.activate(sub, CH, null);
  return sub;
}
afterEach(async () => {
  await inner?.close();
});

describe('registry: a subscriber recovering from history', () => {
  it('is not sent again, live, what its replay already held when the live copies arrive later', async () => {
    inner = new MemoryBus();
    const { bus, hold, release } = laggingBus(inner);
    const registry = new Registry(bus);
    const a = await liveSubscriber(registry, 'a');
    for (let i = 0; i < 3; i++) await bus.publish(CH, 'm', { i });
    expect(a.offsets).toEqual([1, 2, 3]);

    // 4 and 5 are in history, their live copies still on the way.
    hold();
    await bus.publish(CH, 'm', { i: 4 });
    await bus.publish(CH, 'm', { i: 5 });
    const b = subscriber('b');
    await registry.addPending(b, CH);
    const history = await bus.history(CH, { offset: 3, epoch: (await bus.position(CH)).epoch });
    expect(history.publications.map((p) => p.offset)).toEqual([4, 5]);
    for (const p of history.publications) b.offsets.push(p.offset); // the replay
    const tail = history.publications.at(-1)!;
    expect(registry.activate(b, CH, { offset: tail.offset, epoch: tail.epoch })).toEqual([]);

    release();
    await bus.publish(CH, 'm', { i: 6 });
    expect(a.offsets).toEqual([1, 2, 3, 4, 5, 6]);
    expect(b.offsets).toEqual([4, 5, 6]);
    // Caught up: from now on it is an ordinary live subscriber.
    await bus.publish(CH, 'm', { i: 7 });
    expect(b.offsets).toEqual([4, 5, 6, 7]);
  });

  it('a subscriber taken back to pending while still skipping counts its replay as sent', async () => {
    inner = new MemoryBus();
    const { bus, hold } = laggingBus(inner);
    const registry = new Registry(bus);
    const b = subscriber('b');
    await bus.publish(CH, 'm', {});
    hold();
    await bus.publish(CH, 'm', {});
    await registry.addPending(b, CH);
    const at = await bus.position(CH);
    registry.activate(b, CH, at);
    expect(registry.suspend(b, CH)).toEqual({ last: at });
  });
});

/** A bus whose live deliveries can be lost (a dropped connection) or held back one by one. */
function lossyBus(inner: MemoryBus): { bus: Bus; mode(m: 'pass' | 'drop' | 'hold'): void; releaseOne(): void } {
  let mode: 'pass' | 'drop' | 'hold' = 'pass';
  const held: (() => void)[] = [];
  const bus = Object.create(inner) as Bus;
  bus.subscribe = (channel, handler) =>
    inner.subscribe(channel, (pub: Publication) => {
      if (mode === 'drop') return;
      if (mode === 'hold') held.push(() => handler(pub));
      else handler(pub);
    });
  return { bus, mode: (m) => void (mode = m), releaseOne: () => held.shift()?.() };
}

describe('registry: a node filling a gap from history', () => {
  it('does not send again a publication whose live copy arrives after the fill already sent it', async () => {
    inner = new MemoryBus();
    const { bus, mode, releaseOne } = lossyBus(inner);
    const registry = new Registry(bus);
    const a = await liveSubscriber(registry, 'a');
    await bus.publish(CH, 'm', {});
    // 2 and 3 never reach this node; 4 and 5 arrive late, 5 after the fill has read it.
    mode('drop');
    await bus.publish(CH, 'm', {});
    await bus.publish(CH, 'm', {});
    mode('hold');
    await bus.publish(CH, 'm', {});
    await bus.publish(CH, 'm', {});
    mode('pass');
    releaseOne(); // 4: an offset jump, the fill reads 2..5 from history
    await new Promise((r) => setTimeout(r, 20));
    expect(a.offsets).toEqual([1, 2, 3, 4, 5]);
    releaseOne(); // 5, live, late
    await bus.publish(CH, 'm', {});
    expect(a.offsets).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads history again when the read fails, instead of sending every subscriber to resync', async () => {
    inner = new MemoryBus();
    const { bus, mode } = lossyBus(inner);
    let failures = 2;
    const history = bus.history.bind(bus);
    bus.history = (channel, since) => (failures-- > 0 ? Promise.reject(new Error('reading connection down')) : history(channel, since));
    const gaps: string[] = [];
    const registry = new Registry(bus, { onUnrecoverableGap: (channel) => gaps.push(channel) });
    const a = await liveSubscriber(registry, 'a');
    await bus.publish(CH, 'm', {});
    mode('drop');
    await bus.publish(CH, 'm', {});
    mode('pass');
    await bus.publish(CH, 'm', {}); // 3: a jump; the first two reads fail
    await bus.publish(CH, 'm', {}); // 4 queues behind the fill
    await new Promise((r) => setTimeout(r, 1500));
    expect(gaps).toEqual([]);
    expect(a.offsets).toEqual([1, 2, 3, 4]);
  });
});

describe('registry: a failed bus subscription', () => {
  it('counts its subscriber out again', async () => {
    inner = new MemoryBus();
    const bus = Object.create(inner) as Bus;
    bus.subscribe = () => Promise.reject(new Error('bus down'));
    let count = 0;
    const registry = new Registry(bus, { onSubscriptionCount: (delta) => (count += delta), onBusError: () => undefined });
    await expect(registry.addPending(subscriber('a'), CH)).rejects.toThrow('bus down');
    await expect(registry.addPending(subscriber('b'), CH)).rejects.toThrow('bus down');
    expect(count).toBe(0);
  });
});

/**
 * A bus standing for one Redis that can restart empty (every channel then starts a new epoch),
 * whose live deliveries to the node can be cut (its subscriber connection not back yet), and
 * whose reconnect the test announces (the bus's `resubscribed`), as RedisBus does.
 */
function restartingBus(): {
  bus: Bus;
  restart(): void;
  receiving(on: boolean): void;
  reconnected(): void;
  overrides: Partial<Record<keyof Bus, unknown>>;
  close(): Promise<void>;
} {
  let current = new MemoryBus();
  const retired: MemoryBus[] = [];
  let receiving = true;
  const subscriptions: { channel: string; handler: (pub: Publication) => void }[] = [];
  const onReconnect: (() => void)[] = [];
  const deliver = (handler: (pub: Publication) => void) => (pub: Publication) => {
    if (receiving) handler(pub);
  };
  const overrides: Partial<Record<keyof Bus, unknown>> = {
    subscribe: async (channel: string, handler: (pub: Publication) => void) => {
      subscriptions.push({ channel, handler });
      await current.subscribe(channel, deliver(handler));
      return async () => undefined;
    },
    onResubscribed: (handler: () => void) => {
      onReconnect.push(handler);
      return async () => undefined;
    },
  };
  const bus = new Proxy({} as Bus, {
    get: (_target, prop: string) => {
      if (prop in overrides) return overrides[prop as keyof Bus];
      const value = (current as unknown as Record<string, unknown>)[prop];
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(current) : value;
    },
  });
  return {
    bus,
    overrides,
    restart: () => {
      retired.push(current);
      current = new MemoryBus();
      for (const { channel, handler } of subscriptions) void current.subscribe(channel, deliver(handler));
    },
    receiving: (on) => void (receiving = on),
    reconnected: () => onReconnect.forEach((handler) => handler()),
    close: async () => {
      await Promise.all([current, ...retired].map((b) => b.close()));
    },
  };
}

describe('registry: the bus restarted empty (a new epoch on every channel)', () => {
  it('does not pass a new epoch on to live subscribers as if nothing was missed: they are sent to resync', async () => {
    const r = restartingBus();
    try {
      const gaps: string[] = [];
      const registry: Registry = new Registry(r.bus, {
        // As the gateway does (fellBehind): the subscription ends, the client subscribes again.
        onUnrecoverableGap: (channel, subs) => {
          gaps.push(channel);
          for (const sub of subs) registry.remove(sub, channel);
        },
      });
      const a = await liveSubscriber(registry, 'a');
      await r.bus.publish(CH, 'm', {});
      await r.bus.publish(CH, 'm', {});
      expect(a.offsets).toEqual([1, 2]);
      const oldEpoch = (await r.bus.position(CH)).epoch;

      // Redis is back empty; the node's subscriber connection is not yet.
      r.restart();
      r.receiving(false);
      await r.bus.publish(CH, 'm', {}); // offset 1 of the new epoch: never reaches the node
      expect((await r.bus.position(CH)).epoch).not.toBe(oldEpoch);
      r.receiving(true);
      // Offset 2 reaches the node live before its gap check after the reconnect has read the
      // channel's new position.
      await r.bus.publish(CH, 'm', {});
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(gaps).toEqual([CH]);
      expect(a.offsets).toEqual([1, 2]);
    } finally {
      await r.close();
    }
  });

  it('the gap check after a reconnect does not send again what arrived live while it read the position', async () => {
    const r = restartingBus();
    try {
      const registry = new Registry(r.bus);
      const a = await liveSubscriber(registry, 'a');
      await r.bus.publish(CH, 'm', {});
      await r.bus.publish(CH, 'm', {});
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const position = r.bus.position.bind(r.bus);
      r.overrides.position = async (channel: string) => {
        await gate;
        return position(channel);
      };
      r.reconnected(); // the gap check starts reading positions
      await r.bus.publish(CH, 'm', {}); // 3, live, meanwhile
      release();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(a.offsets).toEqual([1, 2, 3]);
    } finally {
      await r.close();
    }
  });
});

describe('registry: an event never goes back to an earlier status', () => {
  /** A subscriber that records each EVENT it is sent as `status@version` (or the event name). */
  function recorder(id: string, channels: string[]): Subscriber & { seen: string[] } {
    const seen: string[] = [];
    return {
      id,
      userId: id,
      channels: new Set(channels),
      positions: new Map(),
      seen,
      deliver: (frame: Buffer) => {
        const text = frame.toString('utf8');
        const { payload } = JSON.parse(text.slice(text.indexOf('{'))) as { payload: { event: string; payload: { status?: string; version?: number } } };
        seen.push(payload.event === 'event.update' ? `${payload.payload.status}@${payload.payload.version}` : payload.event);
      },
    };
  }
  const USER = 'user:u1';
  const update = (bus: Bus, eventId: string, status: string, version: number) =>
    bus.publishMany([{ channel: USER, event: 'event.update', eventId, payload: { event_id: eventId, status, version } }]);

  it('drops the updates a new epoch repeats after a failover lost them, on exact and pattern subscriptions alike', async () => {
    const r = restartingBus();
    try {
      const stale: string[] = [];
      const registry = new Registry(r.bus, { onStaleUpdate: (channel, eventId) => stale.push(`${channel} ${eventId}`) });
      const exact = recorder('exact', [USER]);
      const pattern = recorder('pattern', ['user:*']);
      await registry.addPending(exact, USER);
      registry.activate(exact, USER, null);
      await registry.addPending(pattern, 'user:*');
      registry.activate(pattern, 'user:*', null);

      // The old primary sent `accepted` and `queued` out before the replica took over without them.
      await update(r.bus, 'e1', 'accepted', 1);
      await update(r.bus, 'e1', 'queued', 2);
      r.restart();
      // The relay publishes the held rows again, from offset 1 of the new epoch, then the rest.
      await update(r.bus, 'e1', 'accepted', 1);
      await update(r.bus, 'e1', 'queued', 2);
      await update(r.bus, 'e1', 'processing', 3);
      await update(r.bus, 'e2', 'accepted', 1); // another event's first version still passes
      await update(r.bus, 'e1', 'processed', 4);
      await r.bus.publish(USER, 'note', {}); // not an update: never held back
      await new Promise((resolve) => setTimeout(resolve, 20));

      const expected = ['accepted@1', 'queued@2', 'processing@3', 'accepted@1', 'processed@4', 'note'];
      expect(exact.seen).toEqual(expected);
      expect(pattern.seen).toEqual(expected);
      expect(stale).toEqual([`${USER} e1`, `${USER} e1`, `${USER} e1`, `${USER} e1`]);
    } finally {
      await r.close();
    }
  });
});

describe('UpdateOrder', () => {
  const pub = (eventId: string, version: number, channel = 'user:u1'): Publication => ({
    channel,
    offset: 1,
    epoch: 'e',
    event: 'event.update',
    eventId,
    payload: { event_id: eventId, version },
  });

  it('passes newer versions, holds back repeats and older ones, per subscription and channel', () => {
    const order = new UpdateOrder();
    expect(order.stale('user:u1', pub('a', 2))).toBe(false);
    expect(order.stale('user:u1', pub('a', 2))).toBe(true);
    expect(order.stale('user:u1', pub('a', 1))).toBe(true);
    expect(order.stale('user:u1', pub('a', 3))).toBe(false);
    expect(order.stale('user:*', pub('a', 2))).toBe(false); // another subscription
    expect(order.stale('user:*', pub('a', 2, 'user:u2'))).toBe(false); // another channel
    expect(order.stale('user:u1', { ...pub('a', 1), event: 'payment.success' })).toBe(false);
    expect(order.stale('user:u1', { ...pub('a', 1), payload: { event_id: 'a' } })).toBe(false);
  });

  it('forgets an event not updated for a while', () => {
    let now = 0;
    const order = new UpdateOrder(() => now, 1_000);
    expect(order.stale('user:u1', pub('a', 2))).toBe(false);
    now = 999;
    expect(order.stale('user:u1', pub('b', 1))).toBe(false);
    expect(order.size).toBe(2);
    now = 1_000;
    expect(order.stale('user:u1', pub('a', 1))).toBe(false);
    expect(order.size).toBe(2); // `a` forgotten and remembered again; `b` still young
  });
});
