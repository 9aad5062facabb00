import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory.js';
import type { Bus, Publication } from '../../src/bus/types.js';
import type { Subscriber } from '../../src/gateway/fanout.js';
import { Registry } from '../../src/gateway/registry.js';
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

describe('registry: a subscriber recovering from history', () => {
  const CH = 'live:1:chat';
  let inner: MemoryBus;
  afterEach(async () => {
    await inner?.close();
  });

  it('is not sent again, live, what its replay already held when the live copies arrive later', async () => {
    inner = new MemoryBus();
    const { bus, hold, release } = laggingBus(inner);
    const registry = new Registry(bus);
    const a = subscriber('a');
    await registry.addPending(a, CH);
    registry.activate(a, CH, null);
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
