/**
 * One suite, every Bus: memory (nodes on one MemoryHub) and Redis (nodes on one Redis, isolated
 * by a key prefix per test). A "node" is what one gateway process holds.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import { ManualClock, type Clock } from '../../src/core/clock.js';
import { randomBase62 } from '../../src/core/ids.js';
import type { NamespaceOptions } from '../../src/config/index.js';
import { MemoryHub, PartialPublishError, RedisBus, type Bus, type BusMessage, type ControlMessage, type NamespaceResolver, type Publication } from '../../src/bus/index.js';
import { EMPTY_POSITION_TTL_MS } from '../../src/bus/history.js';
import { services, REDIS_CLUSTER_URL, REDIS_URL } from '../helpers/services.js';
import { createServer, type AddressInfo } from 'node:net';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { closeRedis, openRedis } from '../../src/bus/connection.js';
import { deleteClusterKeys, disruptableCluster, readyCluster } from '../helpers/redis-cluster.js';
import calculateSlot from 'cluster-key-slot';

interface NodeOptions {
  namespaces?: NamespaceResolver;
  clock?: Clock;
  positionTtlMs?: number;
}

interface Harness {
  kind: 'memory' | 'redis';
  /** A new node on the same backend as every other node of this test. */
  node(options?: NodeOptions): Bus;
  /** Loses all stored streams (Redis flushed/restarted, memory hub recreated). */
  loseData(): Promise<void>;
}

const ns = (over: Partial<NamespaceOptions> = {}): NamespaceResolver => {
  const opts: NamespaceOptions = { historySize: 100, historyTtlMs: 300_000, presence: true, joinLeave: true, clientPublish: false, ...over };
  return () => opts;
};

async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const offsets = (pubs: Publication[]): number[] => pubs.map((p) => p.offset);
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function conformance(name: string, makeHarness: () => Harness, extra?: (h: () => Harness) => void): void {
  describe(name, () => {
    let harness: Harness;
    const h = (): Harness => (harness ??= makeHarness());
    afterEach(() => {
      harness = undefined as unknown as Harness;
    });

    it('numbers publications 1, 2, 3… in one epoch and reports the position', async () => {
      const bus = h().node();
      const a = await bus.publish('chat:1', 'msg', { n: 1 });
      const b = await bus.publish('chat:1', 'msg', { n: 2 }, { eventId: 'ev-2' });
      const other = await bus.publish('chat:2', 'msg', null);
      expect(a).toEqual({ channel: 'chat:1', offset: 1, epoch: a.epoch, event: 'msg', payload: { n: 1 } });
      expect(b).toMatchObject({ offset: 2, epoch: a.epoch, eventId: 'ev-2', payload: { n: 2 } });
      expect(other.offset).toBe(1);
      expect(a.epoch).toMatch(/^[A-Za-z0-9]{4,}$/);
      expect(await bus.position('chat:1')).toEqual({ offset: 2, epoch: a.epoch });
    });

    it('gives a quiet channel the epoch its first publication will carry', async () => {
      const bus = h().node();
      const before = await bus.position('quiet:1');
      expect(before.offset).toBe(0);
      const pub = await bus.publish('quiet:1', 'msg', {});
      expect(pub.epoch).toBe(before.epoch);
      const res = await bus.history('quiet:1', before);
      expect(res).toMatchObject({ recovered: true, position: { offset: 1 } });
      expect(offsets(res.publications)).toEqual([1]);
    });

    it('answers history: nothing without since, the missed publications exactly once with since', async () => {
      const bus = h().node();
      for (let i = 1; i <= 10; i++) await bus.publish('chat:h', 'msg', { i });
      const { position } = await bus.history('chat:h');
      expect(await bus.history('chat:h')).toEqual({ publications: [], position, recovered: true });
      const missed = await bus.history('chat:h', { offset: 6, epoch: position.epoch });
      expect(missed.recovered).toBe(true);
      expect(offsets(missed.publications)).toEqual([7, 8, 9, 10]);
      expect(missed.publications.map((p) => p.payload)).toEqual([{ i: 7 }, { i: 8 }, { i: 9 }, { i: 10 }]);
      expect(missed.publications[0]).toEqual({ channel: 'chat:h', offset: 7, epoch: position.epoch, event: 'msg', payload: { i: 7 } });
      expect(await bus.history('chat:h', { offset: 10, epoch: position.epoch })).toEqual({ publications: [], position, recovered: true });
      expect(offsets((await bus.history('chat:h', { offset: 0, epoch: position.epoch })).publications)).toEqual(range(1, 10));
    });

    it('refuses to recover from another epoch, a future offset or a malformed position', async () => {
      const bus = h().node();
      const pub = await bus.publish('chat:e', 'msg', {});
      for (const since of [{ offset: 1, epoch: 'other' }, { offset: 5, epoch: pub.epoch }, { offset: -1, epoch: pub.epoch }, { offset: 0.5, epoch: pub.epoch }]) {
        const res = await bus.history('chat:e', since);
        expect(res, JSON.stringify(since)).toMatchObject({ publications: [], recovered: false, position: { offset: 1, epoch: pub.epoch } });
      }
    });

    it('recovers everything for offset 0 of any epoch: nothing was seen, history from offset 1 is what was missed', async () => {
      const seen = await h().node().position('chat:z');
      await h().loseData(); // the quiet channel's epoch is forgotten, as after its short TTL
      const bus = h().node({ namespaces: ns({ historySize: 3 }) });
      for (let i = 1; i <= 3; i++) await bus.publish('chat:z', 'msg', { i });
      const res = await bus.history('chat:z', seen);
      expect(res.position.epoch).not.toBe(seen.epoch);
      expect(res.recovered).toBe(true);
      expect(offsets(res.publications)).toEqual([1, 2, 3]);
      // Unless history no longer starts at offset 1.
      await bus.publish('chat:z', 'msg', { i: 4 });
      expect(await bus.history('chat:z', seen)).toMatchObject({ recovered: false, publications: [] });
    });

    it('keeps only historySize publications: older positions no longer recover', async () => {
      const bus = h().node({ namespaces: ns({ historySize: 5 }) });
      let epoch = '';
      for (let i = 1; i <= 12; i++) epoch = (await bus.publish('chat:s', 'msg', { i })).epoch;
      expect((await bus.history('chat:s', { offset: 6, epoch })).recovered).toBe(false);
      const kept = await bus.history('chat:s', { offset: 7, epoch });
      expect(kept.recovered).toBe(true);
      expect(offsets(kept.publications)).toEqual(range(8, 12));
    });

    it('forgets publications older than historyTtlMs but keeps the position', async () => {
      const clock = new ManualClock();
      const bus = h().node({ clock, namespaces: ns({ historyTtlMs: 60_000 }) });
      let epoch = '';
      for (let i = 1; i <= 3; i++) epoch = (await bus.publish('chat:t', 'msg', { i })).epoch;
      clock.advance(30_000);
      await bus.publish('chat:t', 'msg', { i: 4 });
      await bus.publish('chat:t', 'msg', { i: 5 });
      clock.advance(30_000); // 1–3 are now exactly 60 s old: gone.
      expect((await bus.history('chat:t', { offset: 0, epoch })).recovered).toBe(false);
      expect((await bus.history('chat:t', { offset: 2, epoch })).recovered).toBe(false);
      expect(offsets((await bus.history('chat:t', { offset: 3, epoch })).publications)).toEqual([4, 5]);
      clock.advance(30_000);
      expect((await bus.history('chat:t', { offset: 3, epoch })).recovered).toBe(false);
      expect(await bus.history('chat:t', { offset: 5, epoch })).toMatchObject({ publications: [], recovered: true });
    });

    it('publishes many messages as one append: per channel consecutive offsets, in order, in history and live', async () => {
      const sender = h().node({ namespaces: ns({ historySize: 4 }) });
      const receiver = h().node({ namespaces: ns({ historySize: 4 }) });
      const got: Publication[] = [];
      await receiver.subscribe('chat:*', (p) => got.push(p));
      const first = await sender.publish('chat:m', 'msg', { i: 0 });
      const pubs = await sender.publishMany([1, 2, 3, 4, 5, 6].map((i) => ({
        channel: i % 3 === 0 ? 'chat:n' : 'chat:m',
        event: 'msg',
        payload: { i },
        ...(i === 4 ? { eventId: 'ev-4' } : {}),
      })));
      // Input order; chat:m continues after `first`, chat:n starts at 1.
      expect(pubs.map((p) => [p.channel, p.offset])).toEqual([['chat:m', 2], ['chat:m', 3], ['chat:n', 1], ['chat:m', 4], ['chat:m', 5], ['chat:n', 2]]);
      expect(pubs.filter((p) => p.channel === 'chat:m').every((p) => p.epoch === first.epoch)).toBe(true);
      expect(pubs[3]).toEqual({ channel: 'chat:m', offset: 4, epoch: first.epoch, event: 'msg', payload: { i: 4 }, eventId: 'ev-4' });
      await waitFor(() => got.length === 7, 'seven live publications');
      const live = (channel: string) => got.filter((p) => p.channel === channel);
      expect(live('chat:m').map((p) => (p.payload as { i: number }).i)).toEqual([0, 1, 2, 4, 5]);
      expect(live('chat:n')).toEqual(pubs.filter((p) => p.channel === 'chat:n'));
      // History keeps the newest four of chat:m, trimmed after the whole append.
      expect((await sender.history('chat:m', { offset: 0, epoch: first.epoch })).recovered).toBe(false);
      const tail = await sender.history('chat:m', { offset: 1, epoch: first.epoch });
      expect(tail.publications).toEqual(pubs.filter((p) => p.channel === 'chat:m'));
      expect(await sender.publishMany([])).toEqual([]);
      await expect(sender.publishMany([{ channel: 'chat:m', event: '', payload: null }])).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(sender.publishMany([{ channel: 'bad channel', event: 'msg', payload: null }])).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    });

    it('keeps no history with historySize 0, while offsets still increase', async () => {
      const bus = h().node({ namespaces: ns({ historySize: 0 }) });
      const first = await bus.publish('chat:z', 'msg', {});
      const second = await bus.publish('chat:z', 'msg', {});
      expect([first.offset, second.offset]).toEqual([1, 2]);
      expect((await bus.history('chat:z', { offset: 1, epoch: first.epoch })).recovered).toBe(false);
      expect((await bus.history('chat:z', { offset: 2, epoch: first.epoch })).recovered).toBe(true);
    });

    it('starts a new epoch when the stored streams are lost, so old positions do not recover', async () => {
      const bus = h().node();
      const old = await bus.publish('chat:l', 'msg', {});
      await bus.publish('chat:l', 'msg', {});
      await h().loseData();
      const fresh = h().node();
      const next = await fresh.publish('chat:l', 'msg', {});
      expect(next.epoch).not.toBe(old.epoch);
      expect(next.offset).toBe(1);
      expect(await fresh.history('chat:l', { offset: 1, epoch: old.epoch })).toMatchObject({ recovered: false, publications: [] });
    });

    it('fans out across nodes: only nodes with a handler for the channel receive', async () => {
      const a = h().node();
      const b = h().node();
      const c = h().node();
      const gotB: Publication[] = [];
      const gotC: Publication[] = [];
      await b.subscribe('room:1', (p) => gotB.push(p));
      await c.subscribe('room:2', (p) => gotC.push(p));
      const sent = await a.publish('room:1', 'hello', { text: 'hi' }, { eventId: 'e1' });
      await waitFor(() => gotB.length === 1, 'node B to receive');
      expect(gotB[0]).toEqual(sent);
      await a.publish('room:2', 'hello', {});
      await waitFor(() => gotC.length === 1, 'node C to receive');
      expect(gotB).toHaveLength(1);
    });

    it('delivers prefix:* patterns every channel under the prefix, next to exact subscriptions', async () => {
      const a = h().node();
      const b = h().node();
      const viaPattern: string[] = [];
      const viaExact: string[] = [];
      await b.subscribe('server:7:*', (p) => viaPattern.push(p.channel));
      await b.subscribe('server:7:channel:1', (p) => viaExact.push(p.channel));
      for (const ch of ['server:7:channel:1', 'server:8:channel:1', 'server:7:x', 'server:70:y', 'server:7:channel:2:deep']) await a.publish(ch, 'm', {});
      await a.publish('done:1', 'm', {});
      await waitFor(() => viaPattern.length === 3, 'pattern deliveries');
      await sleep(50);
      // Order holds within a channel, not across channels (on a cluster each comes from its own node).
      expect([...viaPattern].sort()).toEqual(['server:7:channel:1', 'server:7:channel:2:deep', 'server:7:x']);
      expect(viaExact).toEqual(['server:7:channel:1']);
    });

    it('stops delivering after unsubscribe; a throwing handler does not stop the others', async () => {
      const bus = h().node();
      const first: number[] = [];
      const second: number[] = [];
      const unsubFirst = await bus.subscribe('room:u', (p) => first.push(p.offset));
      await bus.subscribe('room:u', (p) => {
        second.push(p.offset);
        throw new Error('handler bug');
      });
      await bus.publish('room:u', 'm', {});
      await waitFor(() => first.length === 1 && second.length === 1, 'both handlers');
      await unsubFirst();
      await unsubFirst();
      await bus.publish('room:u', 'm', {});
      await waitFor(() => second.length === 2, 'second handler');
      expect(first).toEqual([1]);
    });

    it('sends control messages to every node, including the sender', async () => {
      const a = h().node();
      const b = h().node();
      const atA: ControlMessage[] = [];
      const atB: ControlMessage[] = [];
      await a.onControl((m) => atA.push(m));
      const offB = await b.onControl((m) => atB.push(m));
      const msg: ControlMessage = { kind: 'disconnect_user', userId: 'u1', code: 4001, reason: 'revoked' };
      await a.publishControl(msg);
      await waitFor(() => atA.length === 1 && atB.length === 1, 'control on both nodes');
      expect(atB[0]).toEqual(msg);
      await offB();
      await a.publishControl({ kind: 'revoke_key', keyId: 'k1' });
      await waitFor(() => atA.length === 2, 'second control message');
      await sleep(50);
      expect(atB).toHaveLength(1);
    });

    it('keeps 1,000 concurrent publishes from two nodes gap-free and delivers them in offset order', async () => {
      const a = h().node();
      const b = h().node();
      const c = h().node();
      const seen: number[] = [];
      await c.subscribe('load:1', (p) => seen.push(p.offset));
      const sends = range(1, 1000).map((i) => (i % 2 ? a : b).publish('load:1', 'm', { i }));
      const results = await Promise.all(sends);
      expect(offsets(results).sort((x, y) => x - y)).toEqual(range(1, 1000));
      await waitFor(() => seen.length === 1000, '1,000 deliveries', 15_000);
      expect(seen).toEqual(range(1, 1000));
      const { publications } = await c.history('load:1', { offset: 900, epoch: results[0]!.epoch });
      expect(offsets(publications)).toEqual(range(901, 1000));
    });

    it('lets a subscriber combine live delivery and history into each publication exactly once', async () => {
      const a = h().node();
      const b = h().node();
      const start = await b.position('catch:1');
      for (let i = 0; i < 20; i++) await a.publish('catch:1', 'm', { i });
      const live: Publication[] = [];
      await b.subscribe('catch:1', (p) => live.push(p));
      const burst = Promise.all(range(1, 20).map(() => a.publish('catch:1', 'm', {})));
      const missed = await b.history('catch:1', start);
      await burst;
      await waitFor(() => live.length > 0 && live[live.length - 1]!.offset === 40, 'live tail');
      const merged = new Map<number, Publication>();
      for (const p of [...missed.publications, ...live]) if (!merged.has(p.offset)) merged.set(p.offset, p);
      expect(missed.recovered).toBe(true);
      expect(offsets(missed.publications)).toEqual(range(1, missed.position.offset));
      expect([...merged.keys()].sort((x, y) => x - y)).toEqual(range(1, 40));
    });

    it('with a receipt slot, does not append again what the last call to the slot appended', async () => {
      const a = h().node();
      const b = h().node();
      const msg = (channel: string, n: number, extra: Partial<BusMessage> = {}): BusMessage => ({ channel, event: 'm', payload: n, receiptId: `id${n}`, ...extra });
      const first = await a.publishMany([msg('chat:r1', 1), msg('chat:r2', 2), msg('chat:r1', 3)], { receipt: 'relay' });
      expect(first.map((p) => [p.channel, p.offset, p.payload])).toEqual([['chat:r1', 1, 1], ['chat:r2', 1, 2], ['chat:r1', 2, 3]]);
      // The same batch again, from another node, with one more message: only that one goes out.
      const again = await b.publishMany([msg('chat:r1', 1), msg('chat:r2', 2), msg('chat:r1', 3), msg('chat:r2', 4)], { receipt: 'relay' });
      expect(again.map((p) => [p.channel, p.offset, p.payload])).toEqual([['chat:r2', 2, 4]]);
      // A message the caller knows went out is recorded but not appended, even if the slot forgot it.
      const known = await a.publishMany([msg('chat:r2', 4), msg('chat:r1', 5, { alreadySent: true }), msg('chat:r1', 6)], { receipt: 'relay' });
      expect(known.map((p) => [p.channel, p.offset, p.payload])).toEqual([['chat:r1', 3, 6]]);
      // An id the slot does not hold goes out; without a slot nothing is left out; other slots are apart.
      expect((await a.publishMany([msg('chat:r1', 1)], { receipt: 'relay' })).map((p) => p.offset)).toEqual([4]);
      expect((await a.publishMany([msg('chat:r1', 1)])).map((p) => p.offset)).toEqual([5]);
      expect((await a.publishMany([msg('chat:r1', 1)], { receipt: 'other' })).map((p) => p.offset)).toEqual([6]);
      const r1 = await b.history('chat:r1', { offset: 0, epoch: first[0]!.epoch });
      expect(r1.publications.map((p) => p.payload)).toEqual([1, 3, 6, 1, 1, 1]);
      const r2 = await b.history('chat:r2', { offset: 0, epoch: first[1]!.epoch });
      expect(r2.publications.map((p) => p.payload)).toEqual([2, 4]);
    });

    it('with a receipt slot, still leaves out the tail of a retried call that a lower id pushed into the next one', async () => {
      const a = h().node();
      const b = h().node();
      const msg = (n: number): BusMessage => ({ channel: 'chat:tail', event: 'm', payload: n, receiptId: String(n) });
      const payloads = (pubs: Publication[]) => pubs.map((p) => p.payload);
      // Rows 98–101 went out, but their publisher never heard back.
      const first = await a.publishMany([98, 99, 100, 101].map(msg), { receipt: 'relay' });
      // Row 97 turned up meanwhile (committed late): the retry takes four rows, 97–100, and 101
      // comes in the call after it.
      expect(payloads(await b.publishMany([97, 98, 99, 100].map(msg), { receipt: 'relay' }))).toEqual([97]);
      expect(payloads(await b.publishMany([101, 102].map(msg), { receipt: 'relay' }))).toEqual([102]);
      // Ids a later call has passed are forgotten (ids compare as numbers: 99 is below 100).
      expect(payloads(await b.publishMany([99].map(msg), { receipt: 'relay' }))).toEqual([99]);
      const hist = await b.history('chat:tail', { offset: 0, epoch: first[0]!.epoch });
      expect(hist.publications.map((p) => p.payload)).toEqual([98, 99, 100, 101, 97, 102, 99]);
    });

    it('counts a per-key limit across every node, each key on its own budget', async () => {
      const a = h().node();
      const b = h().node();
      // Both nodes connected: a node still connecting counts on its own.
      expect([await a.health(), await b.health()]).toEqual(['ok', 'ok']);
      const options = { name: 'conf', points: 3, windowS: 60 };
      const verdicts = [await a.limiter(options).consume('k1'), await b.limiter(options).consume('k1'), await a.limiter(options).consume('k1')];
      expect(verdicts.map((v) => [v.allowed, v.remaining])).toEqual([[true, 2], [true, 1], [true, 0]]);
      const refused = await b.limiter(options).consume('k1');
      expect(refused.allowed).toBe(false);
      expect(refused.msBeforeNext).toBeGreaterThan(50_000);
      expect(refused.msBeforeNext).toBeLessThanOrEqual(60_000);
      // Another key, or the same key under another name, has a budget of its own.
      expect((await b.limiter(options).consume('k2')).allowed).toBe(true);
      expect((await a.limiter({ ...options, name: 'other' }).consume('k1')).allowed).toBe(true);
    });

    it('rejects names that are not channels', async () => {
      const bus = h().node();
      await expect(bus.publish('nonamespace', 'm', {})).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(bus.publish('room:*', 'm', {})).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(bus.subscribe('bad channel', () => undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(bus.history('room:*')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      expect(await bus.health()).toBe('ok');
    });

    extra?.(h);
  });
}

// ---- memory -------------------------------------------------------------------------------

const memoryNodes: Bus[] = [];
afterEach(async () => {
  await Promise.all(memoryNodes.splice(0).map((n) => n.close()));
});

conformance('MemoryBus', () => {
  let hub = new MemoryHub();
  return {
    kind: 'memory',
    node: (options = {}) => {
      const node = hub.node(options);
      memoryNodes.push(node);
      return node;
    },
    loseData: async () => {
      hub = new MemoryHub();
    },
  };
}, (h) => {
  it('forgets a position nothing was published at soon after its last read, not after positionTtlMs', async () => {
    const clock = new ManualClock();
    const bus = h().node({ clock, positionTtlMs: 24 * 3600_000 });
    const first = await bus.position('chat:quiet');
    clock.advance(EMPTY_POSITION_TTL_MS - 1000);
    expect(await bus.position('chat:quiet')).toEqual(first); // a read keeps it
    clock.advance(EMPTY_POSITION_TTL_MS + 1);
    expect((await bus.position('chat:quiet')).epoch).not.toBe(first.epoch);
    // Published at, it lives the full TTL.
    const pub = await bus.publish('chat:quiet', 'm', {});
    clock.advance(2 * EMPTY_POSITION_TTL_MS);
    expect(await bus.position('chat:quiet')).toEqual({ offset: 1, epoch: pub.epoch });
  });

  it('forgets expired positions and history on its own while quiet, not only at the next publish or read', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const clock = new ManualClock();
      const hub = new MemoryHub();
      const bus = hub.node({ clock, positionTtlMs: 10_000, namespaces: ns({ historyTtlMs: 1000 }) });
      memoryNodes.push(bus);
      for (let i = 0; i < 50; i++) await bus.publish(`chat:quiet${i}`, 'm', { n: i });
      expect(hub.streamCount).toBe(50);
      // Nothing is published or read any more: the hub's own sweep forgets them.
      clock.advance(60_000);
      vi.advanceTimersByTime(60_000);
      expect(hub.streamCount).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('drops a position after positionTtlMs of silence, then starts a new epoch', async () => {
    const clock = new ManualClock();
    const bus = h().node({ clock, positionTtlMs: 10_000, namespaces: ns({ historyTtlMs: 1000 }) });
    const old = await bus.publish('chat:p', 'm', {});
    clock.advance(10_000);
    const next = await bus.publish('chat:p', 'm', {});
    expect(next).toMatchObject({ offset: 1 });
    expect(next.epoch).not.toBe(old.epoch);
  });
});

// ---- redis --------------------------------------------------------------------------------

const filePrefix = `temtest:bus:${randomBase62(6)}:`;
const redisNodes: RedisBus[] = [];
let admin: Redis | undefined;
const adminClient = (): Redis => (admin ??= new Redis(REDIS_URL));

async function deleteKeys(pattern: string): Promise<void> {
  const r = adminClient();
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    if (keys.length) await r.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** `sub=` and `psub=` of this node's subscriber connection, from CLIENT LIST. */
async function subscriptions(node: RedisBus): Promise<{ sub: number; psub: number }> {
  const line = ((await adminClient().client('LIST')) as string).split('\n').find((l) => l.includes(` name=${node.prefix}bus:sub:${node.name} `));
  if (!line) throw new Error('subscriber connection not found');
  return { sub: Number(/ sub=(\d+)/.exec(line)![1]), psub: Number(/ psub=(\d+)/.exec(line)![1]) };
}

afterEach(async () => {
  await Promise.all(redisNodes.splice(0).map((n) => n.close()));
});
afterAll(async () => {
  if (!admin) return;
  await deleteKeys(`${filePrefix}*`);
  await admin.quit();
});

describe.skipIf(!services.redis)('RedisBus', () => {
  let testNo = 0;
  conformance('conformance', () => {
    const prefix = `${filePrefix}${++testNo}:`;
    return {
      kind: 'redis',
      node: (options = {}) => {
        const node = new RedisBus({ url: REDIS_URL, prefix, namespaces: options.namespaces ?? ns(), ...options });
        redisNodes.push(node);
        return node;
      },
      loseData: () => deleteKeys(`${prefix}*`),
    };
  }, (h) => {
    it('subscribes in Redis only while the node has local handlers', async () => {
      const bus = h().node() as RedisBus;
      await bus.publish('warm:1', 'm', {});
      expect(await subscriptions(bus)).toEqual({ sub: 0, psub: 0 });
      const offA = await bus.subscribe('room:s', () => undefined);
      const offB = await bus.subscribe('room:s', () => undefined);
      const offP = await bus.subscribe('room:*', () => undefined);
      const offC = await bus.onControl(() => undefined);
      expect(await subscriptions(bus)).toEqual({ sub: 2, psub: 1 });
      expect(await adminClient().pubsub('NUMSUB', `${bus.prefix}bus:room:s`)).toEqual([`${bus.prefix}bus:room:s`, 1]);
      await offA();
      expect((await subscriptions(bus)).sub).toBe(2);
      await offB();
      await offP();
      await offC();
      expect(await subscriptions(bus)).toEqual({ sub: 0, psub: 0 });
    });

    it('gives a position nothing was published at the short TTL in Redis, a published one the full TTL', async () => {
      const bus = h().node({ positionTtlMs: 24 * 3600_000 }) as RedisBus;
      await bus.position('chat:quiet');
      const ttl = await adminClient().pttl(`${bus.prefix}bus:{chat:quiet}:pos`);
      expect(ttl).toBeGreaterThan(EMPTY_POSITION_TTL_MS - 60_000);
      expect(ttl).toBeLessThanOrEqual(EMPTY_POSITION_TTL_MS);
      await bus.publish('chat:quiet', 'm', {});
      await bus.position('chat:quiet');
      expect(await adminClient().pttl(`${bus.prefix}bus:{chat:quiet}:pos`)).toBeGreaterThan(23 * 3600_000);
    });

    it('starts a new epoch when the position was written by another primary (a replica promoted after a failover)', async () => {
      const bus = h().node() as RedisBus;
      const old = await bus.publish('chat:fo', 'm', {});
      await bus.publish('chat:fo', 'm', {});
      const pos = `${bus.prefix}bus:{chat:fo}:pos`;
      expect(await adminClient().hget(pos, 'replid')).toMatch(/^[0-9a-f]{40}$/);
      // As a promoted replica sees it: the old primary's id, and the last write never replicated.
      await adminClient().hset(pos, 'replid', 'f'.repeat(40), 'offset', 1);
      expect(await bus.history('chat:fo', { offset: 2, epoch: old.epoch })).toMatchObject({ recovered: false, publications: [] });
      const next = await bus.publish('chat:fo', 'm', {});
      expect(next.epoch).not.toBe(old.epoch);
      expect(next.offset).toBe(1);
      // Positions written before the id was recorded take the current primary's, same epoch.
      await adminClient().hdel(pos, 'replid');
      expect((await bus.publish('chat:fo', 'm', {})).epoch).toBe(next.epoch);
      expect(await adminClient().hget(pos, 'replid')).not.toBe('f'.repeat(40));
    });

    it('expires the position in Redis after positionTtlMs, then starts a new epoch', async () => {
      const bus = h().node({ positionTtlMs: 200, namespaces: ns({ historyTtlMs: 100 }) });
      const old = await bus.publish('chat:x', 'm', {});
      await sleep(400);
      const next = await bus.publish('chat:x', 'm', {});
      expect(next.offset).toBe(1);
      expect(next.epoch).not.toBe(old.epoch);
      expect((await bus.history('chat:x', { offset: 1, epoch: old.epoch })).recovered).toBe(false);
    });

    it('counts a limit on each node alone while Redis is unreachable, without waiting for it', async () => {
      const down = new RedisBus({ url: 'redis://127.0.0.1:1', prefix: `${filePrefix}down:`, namespaces: ns(), connectTimeoutMs: 200 });
      redisNodes.push(down);
      const limiter = down.limiter({ name: 'down', points: 2, windowS: 60 });
      const started = Date.now();
      const allowed = [];
      for (let i = 0; i < 3; i++) allowed.push((await limiter.consume('k')).allowed);
      expect(allowed).toEqual([true, true, false]);
      expect(Date.now() - started).toBeLessThan(1500);
    });

    it('counts a limit on each node alone, once per request, while Redis is connected but silent', async () => {
      const proxy = TcpProxy.forUrl(REDIS_URL, 6379);
      await proxy.start();
      try {
        const bus = new RedisBus({ url: proxy.url(REDIS_URL), prefix: `${filePrefix}stall:`, namespaces: ns(), commandTimeoutMs: 600 });
        redisNodes.push(bus);
        expect(await bus.health()).toBe('ok');
        const limiter = bus.limiter({ name: 'stall', points: 2, windowS: 60 });
        proxy.stall();
        const verdicts = [];
        for (let i = 0; i < 3; i++) {
          const started = Date.now();
          verdicts.push((await limiter.consume('k')).allowed);
          expect(Date.now() - started).toBeLessThan(450);
        }
        expect(verdicts).toEqual([true, true, false]);
        // The commands that timed out meanwhile dropped the connection: no more waiting at all.
        await sleep(700);
        const started = Date.now();
        expect((await limiter.consume('k2')).allowed).toBe(true);
        expect(Date.now() - started).toBeLessThan(100);
      } finally {
        await proxy.stop();
      }
    });

    it('keeps limit counters in Redis under the prefix, expiring with the window', async () => {
      const bus = h().node() as RedisBus;
      expect(await bus.health()).toBe('ok');
      await bus.limiter({ name: 'ttl', points: 5, windowS: 30 }).consume('key-1');
      const key = `${bus.prefix}rl:ttl:5:30:key-1`;
      expect(await adminClient().get(key)).toBe('1');
      const ttl = await adminClient().pttl(key);
      expect(ttl).toBeGreaterThan(25_000);
      expect(ttl).toBeLessThanOrEqual(30_000);
    });

    it('escapes glob characters of the prefix in pattern subscriptions', async () => {
      const prefix = `${filePrefix}glob[a]?:`;
      const mk = (): RedisBus => {
        const node = new RedisBus({ url: REDIS_URL, prefix, namespaces: ns() });
        redisNodes.push(node);
        return node;
      };
      const a = mk();
      const got: string[] = [];
      await a.subscribe('g:*', (p) => got.push(p.channel));
      await a.publish('g:1', 'm', {});
      await waitFor(() => got.length === 1, 'pattern delivery with odd prefix');
      expect(got).toEqual(['g:1']);
    });
  });
});

// ---- redis cluster ------------------------------------------------------------------------

/** Base port of the cluster the disruptive cluster tests start for themselves. */
const OWN_CLUSTER_PORT = 21389;

describe.skipIf(!services.redisCluster)('RedisBus on a Redis Cluster', () => {
  const clusterPrefix = `temtest:cbus:${randomBase62(6)}:`;
  let cluster: Cluster | undefined;
  const clusterClient = async (): Promise<Cluster> => (cluster ??= await readyCluster(REDIS_CLUSTER_URL));
  const deleteKeysOnCluster = async (pattern: string): Promise<void> => deleteClusterKeys(await clusterClient(), pattern);
  afterAll(async () => {
    if (!cluster) return;
    await deleteKeysOnCluster(`${clusterPrefix}*`);
    await cluster.quit();
  });

  let testNo = 0;
  conformance('conformance', () => {
    const prefix = `${clusterPrefix}${++testNo}:`;
    return {
      kind: 'redis',
      node: (options = {}) => {
        const node = new RedisBus({ url: REDIS_CLUSTER_URL, cluster: true, prefix, namespaces: options.namespaces ?? ns(), ...options });
        redisNodes.push(node);
        return node;
      },
      loseData: () => deleteKeysOnCluster(`${prefix}*`),
    };
  });

  it('keeps each channel on the node owning its slot, and a batch over many channels in order on each', async () => {
    const prefix = `${clusterPrefix}spread:`;
    const a = new RedisBus({ url: REDIS_CLUSTER_URL, cluster: true, prefix, namespaces: ns() });
    const b = new RedisBus({ url: REDIS_CLUSTER_URL, cluster: true, prefix, namespaces: ns() });
    redisNodes.push(a, b);
    const channels = Array.from({ length: 24 }, (_, i) => `chat:c${i}`);
    const got = new Map<string, number[]>();
    await b.subscribe('chat:*', (p) => got.set(p.channel, [...(got.get(p.channel) ?? []), p.offset]));
    const batch = channels.flatMap((channel) => [1, 2, 3].map((n) => ({ channel, event: 'm', payload: n, receiptId: `${channel}-${n}` })));
    const pubs = await a.publishMany(batch, { receipt: 'relay' });
    expect(pubs).toHaveLength(72);
    await waitFor(() => [...got.values()].reduce((n, o) => n + o.length, 0) === 72, 'every publication');
    for (const channel of channels) expect(got.get(channel)).toEqual([1, 2, 3]);
    // The streams are spread over the masters: each holds some.
    const perNode = await Promise.all(
      (await clusterClient()).nodes('master').map(async (node) => (await node.scan('0', 'MATCH', `${prefix}bus:*:hist`, 'COUNT', 1000))[1].length),
    );
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThan(1);
    // A retried batch sends nothing again; one more row goes out alone.
    const again = await b.publishMany([...batch, { channel: 'chat:c0', event: 'm', payload: 4, receiptId: 'chat:c0-4' }], { receipt: 'relay' });
    expect(again.map((p) => [p.channel, p.offset])).toEqual([['chat:c0', 4]]);
  });

  // Tests that pause a node or move a slot get a cluster of their own: the other suites run in
  // parallel on the shared one and would time out meanwhile.
  describe('on a cluster of its own', () => {
    let ownUrl = '';
    let own: Cluster | undefined;
    let stopOwn: (() => Promise<void>) | null = null;
    const ownClient = async (): Promise<Cluster> => (own ??= await readyCluster(ownUrl));
    beforeAll(async () => {
      ({ url: ownUrl, stop: stopOwn } = await disruptableCluster(OWN_CLUSTER_PORT));
    }, 60_000);
    afterAll(async () => {
      if (own) {
        await deleteClusterKeys(own, `${clusterPrefix}*`);
        await own.quit();
      }
      await stopOwn?.();
    });

    it('retries a batch that failed on one node without appending again what went out on the others', async () => {
      const prefix = `${clusterPrefix}partial:`;
      const bus = new RedisBus({ url: ownUrl, cluster: true, prefix, namespaces: ns(), commandTimeoutMs: 300 });
      redisNodes.push(bus);
      const cluster = await ownClient();
      const channels = Array.from({ length: 12 }, (_, i) => `chat:p${i}`);
      const nodeOf = (channel: string): string => cluster.slots[calculateSlot(`${prefix}bus:{${channel}}:pos`)]![0]!;
      // One node stops taking writes for longer than the command timeout: its channels fail.
      const paused = nodeOf(channels[0]!);
      expect(new Set(channels.map(nodeOf)).size).toBeGreaterThan(1);
      const batch = channels.flatMap((channel) => [1, 2, 3].map((n) => ({ channel, event: 'm', payload: n, receiptId: `${channel}-${n}` })));
      const [host, port] = paused.split(':');
      const admin = new Redis({ host, port: Number(port) });
      try {
        await admin.client('PAUSE', 1000, 'WRITE');
        // The call says which channels failed; the others' messages went out.
        const err = await bus.publishMany(batch, { receipt: 'relay' }).then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(PartialPublishError);
        const { failedChannels, published } = err as PartialPublishError;
        // Every channel of the paused node; now and then another as well, whose call ran past
        // the short timeout used here (its retry below then finds it done or does it).
        for (const c of channels.filter((c) => nodeOf(c) === paused)) expect(failedChannels.has(c), c).toBe(true);
        expect(failedChannels.size).toBeLessThan(channels.length);
        expect(published.map((p) => [p.channel, p.payload])).toEqual(batch.filter((m) => !failedChannels.has(m.channel)).map((m) => [m.channel, m.payload]));
        // The relay's next call fails the paused node's channels at once, not after the timeout.
        const started = Date.now();
        const again = await bus.publishMany(batch, { receipt: 'relay' }).then(() => undefined, (e: unknown) => e);
        expect(Date.now() - started).toBeLessThan(250);
        for (const c of channels.filter((c) => nodeOf(c) === paused)) expect((again as PartialPublishError).failedChannels.has(c), c).toBe(true);
        // One channel alone (another of that node) fails with its own error, as on one Redis.
        const alone = Array.from({ length: 64 }, (_, i) => `chat:alone${i}`).find((c) => nodeOf(c) === paused)!;
        await expect(bus.publish(alone, 'm', 0)).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
      } finally {
        admin.disconnect();
      }
      // The relay's retry, once the node answers its probe again: whatever went out is skipped.
      let retried: Publication[] | undefined;
      const until = Date.now() + 10_000;
      while (!retried) {
        await bus.reachable(channels);
        retried = await bus.publishMany(batch, { receipt: 'relay' }).catch(async (err: unknown) => {
          if (Date.now() > until) throw err;
          await sleep(100);
          return undefined;
        });
      }
      // Whether the paused node ran its calls late (then its receipts skip them now) or not (then
      // they go out now), every channel holds each message exactly once.
      expect(retried.every((p) => nodeOf(p.channel) === paused)).toBe(true);
      for (const channel of channels) {
        const hist = await bus.history(channel, { offset: 0, epoch: 'any' });
        expect(hist.publications.map((p) => [p.offset, p.payload]), channel).toEqual([[1, 1], [2, 2], [3, 3]]);
      }
    });

    it('keeps a channel\'s epoch when its slot migrates to another primary, and starts a new one after a failover or a restart', async () => {
      const prefix = `${clusterPrefix}migrate:`;
      const bus = new RedisBus({ url: ownUrl, cluster: true, prefix, namespaces: ns() });
      redisNodes.push(bus);
      const cluster = await ownClient();
      const channel = 'chat:mig';
      const pos = `${prefix}bus:{${channel}}:pos`;
      const slot = calculateSlot(pos);
      const first = await bus.publishMany([1, 2, 3].map((n) => ({ channel, event: 'm', payload: n })));
      const epoch = first[0]!.epoch;
      const masters = cluster.nodes('master');
      const hostPort = (r: Redis): string => `${r.options.host}:${r.options.port}`;
      const owner = (): Redis => masters.find((m) => hostPort(m) === cluster.slots[slot]![0])!;
      const idOf = async (r: Redis): Promise<string> => String(await r.cluster('MYID'));
      /** Moves the slot, keys and all, as redis-cli --cluster reshard does. */
      const migrate = async (from: Redis, to: Redis): Promise<void> => {
        const [fromId, toId] = [await idOf(from), await idOf(to)];
        await to.cluster('SETSLOT', slot, 'IMPORTING', fromId);
        await from.cluster('SETSLOT', slot, 'MIGRATING', toId);
        const keys = (await from.cluster('GETKEYSINSLOT', slot, 1000)) as string[];
        if (keys.length > 0) await from.migrate(to.options.host!, to.options.port!, '', 0, 5000, 'KEYS', ...keys);
        for (const m of masters) await m.cluster('SETSLOT', slot, 'NODE', toId);
        await new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()));
      };
      const source = owner();
      const target = masters.find((m) => m !== source)!;
      await migrate(source, target);
      try {
        // Publish until the client has followed the slot (MOVED): the epoch carries on.
        const next = await bus.publish(channel, 'm', 4);
        expect(next).toMatchObject({ epoch, offset: 4 });
        const hist = await bus.history(channel, { offset: 0, epoch });
        expect(hist.publications.map((p) => p.offset)).toEqual([1, 2, 3, 4]);
        expect(await target.hget(pos, 'node')).toBe(await idOf(target));
        // A position carrying this node's previous replication id came through a failover: new epoch.
        const replid2 = /master_replid2:(\w+)/.exec(await target.info('replication'))![1]!;
        await target.hset(pos, 'replid', replid2, 'node', await idOf(source));
        const afterFailover = await bus.publish(channel, 'm', 5);
        expect(afterFailover.epoch).not.toBe(epoch);
        expect(afterFailover.offset).toBe(1);
        // One this node wrote under another replication id (before a restart): new epoch too.
        await target.hset(pos, 'replid', 'f'.repeat(40));
        const afterRestart = await bus.publish(channel, 'm', 6);
        expect(afterRestart.epoch).not.toBe(afterFailover.epoch);
      } finally {
        await migrate(target, source);
      }
    });

    it('reports Redis down while any primary stops answering, every time, and up once it answers', async () => {
      const bus = new RedisBus({ url: ownUrl, cluster: true, prefix: `${clusterPrefix}health:`, namespaces: ns(), commandTimeoutMs: 300 });
      redisNodes.push(bus);
      expect(await bus.health()).toBe('ok');
      const cluster = await ownClient();
      // Not the URL's node: the subscriber connection stays up, only a command node is away.
      const other = cluster.nodes('master').find((m) => `redis://${m.options.host}:${m.options.port}` !== ownUrl)!;
      const admin = new Redis({ host: other.options.host, port: other.options.port });
      try {
        await admin.client('PAUSE', 1500, 'ALL');
        const during = await Promise.all([bus.health(), bus.health(), bus.health()]);
        expect(during).toEqual(['down', 'down', 'down']);
      } finally {
        admin.disconnect();
      }
      await sleep(1600);
      const until = Date.now() + 5000;
      while ((await bus.health()) !== 'ok' && Date.now() < until) await sleep(100);
      expect(await bus.health()).toBe('ok');
    });

    it('keeps publishing on the other nodes while one node stops answering', async () => {
      const prefix = `${clusterPrefix}hung:`;
      const bus = new RedisBus({ url: ownUrl, cluster: true, prefix, namespaces: ns(), commandTimeoutMs: 300 });
      redisNodes.push(bus);
      const cluster = await ownClient();
      const nodeOf = (channel: string): string => cluster.slots[calculateSlot(`${prefix}bus:{${channel}}:pos`)]![0]!;
      const channels = Array.from({ length: 12 }, (_, i) => `chat:h${i}`);
      const paused = nodeOf(channels[0]!);
      const elsewhere = channels.filter((c) => nodeOf(c) !== paused);
      expect(elsewhere.length).toBeGreaterThan(0);
      await bus.publish(elsewhere[0]!, 'm', 0);
      const [host, port] = paused.split(':');
      const admin = new Redis({ host, port: Number(port) });
      try {
        await admin.client('PAUSE', 1500, 'WRITE');
        // The paused node's channel times out...
        await expect(bus.publish(channels[0]!, 'm', 1)).rejects.toThrow();
        // ...and that costs the channels of the nodes that answer nothing, at once and after.
        for (let i = 1; i <= 5; i++) {
          await expect(bus.publish(elsewhere[i % elsewhere.length]!, 'm', i)).resolves.toMatchObject({ event: 'm' });
          await sleep(50);
        }
      } finally {
        admin.disconnect();
      }
    });
  });

  it('delivers one node\'s control messages in the order it sent them', async () => {
    const prefix = `${clusterPrefix}control:`;
    const a = new RedisBus({ url: REDIS_CLUSTER_URL, cluster: true, prefix, namespaces: ns() });
    const b = new RedisBus({ url: REDIS_CLUSTER_URL, cluster: true, prefix, namespaces: ns() });
    redisNodes.push(a, b);
    const got: string[] = [];
    await b.onControl((m) => {
      if (m.kind === 'revoke_key') got.push(m.keyId);
    });
    // Sent one after another: a keyless PUBLISH would go to any node, and one published on the
    // subscriber's own node overtakes one still crossing the cluster bus.
    const sent = Array.from({ length: 60 }, (_, i) => `k${i}`);
    for (const keyId of sent) await a.publishControl({ kind: 'revoke_key', keyId });
    await waitFor(() => got.length === sent.length, 'every control message');
    expect(got).toEqual(sent);
  });

  it("connects to the URL's host by its name, not an address looked up first (a TLS certificate names the host)", async () => {
    const url = new URL(REDIS_CLUSTER_URL);
    url.hostname = 'localhost';
    const conn = openRedis({ url: url.toString(), cluster: true, name: `${clusterPrefix}hostname` });
    try {
      const first = await new Promise<string | undefined>((resolve) => conn.redis.once('+node', (node: Redis) => resolve(node.options.host)));
      expect(first).toBe('localhost');
    } finally {
      await closeRedis(conn);
    }
  });

  it('reconnects through the other nodes when the one it was given is gone', async () => {
    // The seed node is reached through a proxy, cut for good: once the client has to start over,
    // the nodes the cluster reported are its way back in.
    const proxy = TcpProxy.forUrl(REDIS_CLUSTER_URL, 6379);
    await proxy.start();
    const conn = openRedis({ url: proxy.url(REDIS_CLUSTER_URL), cluster: true, name: `${clusterPrefix}reseed` });
    try {
      await waitFor(() => conn.redis.status === 'ready', 'the cluster client ready');
      await conn.redis.set(`${clusterPrefix}reseed:{a}`, '1');
      proxy.cut();
      // Every connection lost at once (a network blip): the client starts over.
      const back = new Promise<void>((resolve) => conn.redis.once('ready', () => resolve()));
      conn.redis.disconnect(true);
      await Promise.race([back, sleep(5000).then(() => Promise.reject(new Error('the cluster client did not come back')))]);
      expect(await conn.redis.get(`${clusterPrefix}reseed:{a}`)).toBe('1');
    } finally {
      await closeRedis(conn);
      await proxy.stop();
    }
  }, 15_000);

  it("moves a subscriber connection off its node at the second attempt, never back to the node that failed", async () => {
    // A node that takes connections and drops them at once; listed among the cluster's nodes
    // (first, as the URL's node is when it serves slot 0), as the cluster client lists every node.
    let dropped = 0;
    const server = createServer((socket) => {
      dropped++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dead = { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
    const cluster = await clusterClient();
    const live = cluster.nodes('all').map((n) => ({ host: n.options.host!, port: n.options.port! }));
    const conn = openRedis({ url: `redis://${dead.host}:${dead.port}`, otherNodes: () => [dead, ...live], name: `${clusterPrefix}rotate` });
    try {
      await waitFor(() => conn.redis.status === 'ready', 'a live node', 10_000);
      // The first connect and the first retry; the second retry goes elsewhere.
      expect(dropped).toBe(2);
      expect(live).toContainEqual({ host: conn.redis.options.host, port: conn.redis.options.port });
    } finally {
      await closeRedis(conn);
      server.close();
    }
  });

  it('moves its subscriber to another node when the one it was given stays away, and looks for what it missed', async () => {
    // The seed node is reached through a proxy; once the proxy is cut for good, the subscriber
    // must go to a node it learned from the cluster (commands already do).
    const proxy = TcpProxy.forUrl(REDIS_CLUSTER_URL, 6379);
    await proxy.start();
    const prefix = `${clusterPrefix}seed:`;
    const a = new RedisBus({ url: proxy.url(REDIS_CLUSTER_URL), cluster: true, prefix, namespaces: ns() });
    const b = new RedisBus({ url: REDIS_CLUSTER_URL, cluster: true, prefix, namespaces: ns() });
    redisNodes.push(a, b);
    try {
      const got: number[] = [];
      const resubscribed = vi.fn();
      a.onResubscribed(resubscribed);
      await a.subscribe('chat:seed', (p) => got.push(p.offset));
      await b.publish('chat:seed', 'm', 1);
      await waitFor(() => got.length === 1, 'delivery through the seed');
      proxy.cut();
      // Back on another node: subscribed again (the bus's cue to read what it missed from
      // history), and live delivery resumes.
      await waitFor(() => resubscribed.mock.calls.length > 0, 'the subscriber on another node', 15_000);
      await b.publish('chat:seed', 'm', 2);
      await waitFor(() => got.includes(2), 'live delivery after the move');
      expect(await a.health()).toBe('ok');
    } finally {
      await proxy.stop();
    }
  }, 30_000);
});
