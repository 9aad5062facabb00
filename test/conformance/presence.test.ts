/**
 * One suite, every PresenceStore and SessionStore: memory and Redis. Time is the `nowMs`
 * argument (presence) or an injected clock (memory sessions); Redis session TTLs are real.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { ManualClock } from '../../src/core/clock.js';
import { randomBase62 } from '../../src/core/ids.js';
import {
  MemoryPresenceStore,
  MemorySessionStore,
  PresenceKeys,
  RedisPresenceStore,
  RedisSessionStore,
  type PresenceChange,
  type PresenceStore,
  type SessionState,
  type SessionStore,
} from '../../src/presence/index.js';
import { services, REDIS_CLUSTER_URL, REDIS_URL } from '../helpers/services.js';
import { deleteClusterKeys, readyCluster } from '../helpers/redis-cluster.js';

const T0 = Date.UTC(2030, 0, 1);
const TTL = 60_000;
const entry = (userId: string, connectionId: string, status: 'online' | 'idle' | 'dnd' = 'online', channel = 'room:1') => ({ channel, userId, connectionId, status });
const sortChanges = (c: PresenceChange[]): PresenceChange[] => [...c].sort((a, b) => `${a.channel}/${a.userId}`.localeCompare(`${b.channel}/${b.userId}`));

interface PresenceHarness {
  kind: 'memory' | 'redis';
  /** A store on the same backend as the others of this test (another gateway node, for Redis). */
  store(): PresenceStore;
}

/**
 * The store as the tests below see it: every change's version checked (a positive number) and
 * left out, so the tests compare what others are told. Its order is tested on its own below
 * (calls made at once may answer in any order).
 */
function unversioned(store: PresenceStore): PresenceStore {
  const check = (c: PresenceChange): Omit<PresenceChange, 'version'> => {
    const { version, ...rest } = c;
    expect(version).toBeGreaterThan(0);
    return rest;
  };
  const one = async (p: Promise<PresenceChange | null>) => {
    const c = await p;
    return c && (check(c) as PresenceChange);
  };
  return {
    upsert: (...a) => one(store.upsert(...a)),
    linger: (...a) => one(store.linger(...a)),
    remove: (...a) => one(store.remove(...a)),
    members: (...a) => store.members(...a),
    expire: async (...a) => (await store.expire(...a)).map((c) => check(c) as PresenceChange),
    close: () => store.close(),
  };
}

function presenceConformance(name: string, makeRaw: () => PresenceHarness): void {
  const make = (): PresenceHarness => {
    const raw = makeRaw();
    return { ...raw, store: () => unversioned(raw.store()) };
  };
  describe(`${name} versions`, () => {
    it('numbers a user\'s changes in the order they were made, whichever node made them', async () => {
      const raw = makeRaw();
      const [a, b] = [raw.store(), raw.store()];
      const versions: number[] = [];
      const note = (c: PresenceChange | null) => {
        if (c) versions.push(c.version);
      };
      note(await a.upsert(entry('v1', 'c1', 'online'), 1000, T0)); // join
      note(await b.upsert(entry('v1', 'c2', 'dnd'), 1000, T0 + 1)); // no news: online still shows
      note(await a.remove('room:1', 'v1', 'c1', T0 + 2)); // update: dnd
      note(await b.remove('room:1', 'v1', 'c2', T0 + 3)); // leave
      expect(versions).toHaveLength(3);
      expect(versions.every((v, i) => i === 0 || v > versions[i - 1]!)).toBe(true);
    });
  });
  describe(name, () => {
    let harness: PresenceHarness | undefined;
    const h = (): PresenceHarness => (harness ??= make());
    afterEach(() => {
      harness = undefined;
    });

    it('reports join, update and leave as the visible status changes', async () => {
      const s = h().store();
      expect(await s.upsert(entry('u1', 'c1', 'idle'), TTL, T0)).toEqual({ channel: 'room:1', userId: 'u1', kind: 'join', status: 'idle' });
      expect(await s.upsert(entry('u1', 'c1', 'idle'), TTL, T0 + 1000)).toBeNull();
      expect(await s.upsert(entry('u1', 'c1', 'online'), TTL, T0 + 2000)).toEqual({ channel: 'room:1', userId: 'u1', kind: 'update', status: 'online' });
      expect(await s.members('room:1', T0 + 2000)).toEqual([{ user_id: 'u1', status: 'online' }]);
      expect(await s.remove('room:1', 'u1', 'c1', T0 + 3000)).toEqual({ channel: 'room:1', userId: 'u1', kind: 'leave', status: 'offline' });
      expect(await s.remove('room:1', 'u1', 'c1', T0 + 3000)).toBeNull();
      expect(await s.remove('room:1', 'nobody', 'c9', T0 + 3000)).toBeNull();
      expect(await s.members('room:1', T0 + 3000)).toEqual([]);
    });

    it('shows a user with several connections at its best status: online, then dnd, then idle', async () => {
      const s = h().store();
      expect(await s.upsert(entry('u1', 'phone', 'idle'), TTL, T0)).toMatchObject({ kind: 'join', status: 'idle' });
      expect(await s.upsert(entry('u1', 'tablet', 'dnd'), TTL, T0)).toMatchObject({ kind: 'update', status: 'dnd' });
      expect(await s.upsert(entry('u1', 'desk', 'online'), TTL, T0)).toMatchObject({ kind: 'update', status: 'online' });
      expect(await s.upsert(entry('u1', 'phone', 'dnd'), TTL, T0)).toBeNull();
      expect(await s.remove('room:1', 'u1', 'desk', T0)).toMatchObject({ kind: 'update', status: 'dnd' });
      expect(await s.remove('room:1', 'u1', 'tablet', T0)).toBeNull();
      expect(await s.members('room:1', T0)).toEqual([{ user_id: 'u1', status: 'dnd' }]);
      expect(await s.remove('room:1', 'u1', 'phone', T0)).toMatchObject({ kind: 'leave', status: 'offline' });
    });

    it('keeps channels and users apart and lists only live members, sorted', async () => {
      const s = h().store();
      await s.upsert(entry('bob', 'b1', 'idle'), TTL, T0);
      await s.upsert(entry('alice', 'a1'), TTL, T0);
      await s.upsert(entry('carol', 'c1'), 1000, T0);
      await s.upsert(entry('alice', 'a2', 'dnd', 'room:2'), TTL, T0);
      expect(await s.members('room:1', T0 + 999)).toEqual([
        { user_id: 'alice', status: 'online' },
        { user_id: 'bob', status: 'idle' },
        { user_id: 'carol', status: 'online' },
      ]);
      // carol's entry has run out: no longer listed, even before expire() reports her leave.
      expect((await s.members('room:1', T0 + 1000)).map((m) => m.user_id)).toEqual(['alice', 'bob']);
      expect(await s.members('room:2', T0)).toEqual([{ user_id: 'alice', status: 'dnd' }]);
      expect(await s.members('room:3', T0)).toEqual([]);
    });

    it('expires entries whose TTL ran out and reports each leave once; heartbeats keep entries alive', async () => {
      const s = h().store();
      await s.upsert(entry('gone', 'g1'), 1000, T0);
      await s.upsert(entry('kept', 'k1'), 1000, T0);
      await s.upsert(entry('multi', 'm1', 'online'), 1000, T0);
      await s.upsert(entry('multi', 'm2', 'idle'), 5000, T0);
      await s.upsert(entry('gone', 'g2', 'online', 'room:2'), 1000, T0);
      expect(await s.expire(T0 + 999)).toEqual([]);
      expect(await s.upsert(entry('kept', 'k1'), 1000, T0 + 900)).toBeNull(); // heartbeat
      const changes = await s.expire(T0 + 1000);
      expect(sortChanges(changes)).toEqual([
        { channel: 'room:1', userId: 'gone', kind: 'leave', status: 'offline' },
        { channel: 'room:1', userId: 'multi', kind: 'update', status: 'idle' },
        { channel: 'room:2', userId: 'gone', kind: 'leave', status: 'offline' },
      ]);
      expect(await s.expire(T0 + 1000)).toEqual([]);
      expect((await s.members('room:1', T0 + 1000)).map((m) => m.user_id)).toEqual(['kept', 'multi']);
      expect(sortChanges(await s.expire(T0 + 5000))).toEqual([
        { channel: 'room:1', userId: 'kept', kind: 'leave', status: 'offline' },
        { channel: 'room:1', userId: 'multi', kind: 'leave', status: 'offline' },
      ]);
      expect(await s.members('room:1', T0 + 5000)).toEqual([]);
    });

    it('treats a refresh after the TTL but before the sweep as continuous presence', async () => {
      const s = h().store();
      await s.upsert(entry('u1', 'c1'), 1000, T0);
      // Nobody swept yet: others still see u1, so coming back is no news…
      expect(await s.upsert(entry('u1', 'c1'), 1000, T0 + 1500)).toBeNull();
      // …and the sweep has nothing to report for the refreshed entry.
      expect(await s.expire(T0 + 2000)).toEqual([]);
      // A different connection replacing an unswept one changes only what differs.
      await s.upsert(entry('u2', 'old', 'online'), 1000, T0);
      expect(await s.upsert(entry('u2', 'new', 'idle'), 1000, T0 + 1500)).toMatchObject({ kind: 'update', status: 'idle' });
      expect(await s.expire(T0 + 2499)).toEqual([]);
    });

    it('turns the users of a node that died offline once their TTL runs out', async () => {
      const nodeA = h().store();
      const nodeB = h().store();
      await nodeA.upsert(entry('onA', 'a'), TTL, T0);
      await nodeB.upsert(entry('onB', 'b'), TTL, T0);
      // Node A dies; node B keeps refreshing its own entries and sweeping.
      for (let t = T0 + 20_000; t <= T0 + 80_000; t += 20_000) {
        await nodeB.upsert(entry('onB', 'b'), TTL, t);
        const changes = await nodeB.expire(t);
        if (t < T0 + TTL) expect(changes).toEqual([]);
        else expect(changes).toEqual([{ channel: 'room:1', userId: 'onA', kind: 'leave', status: 'offline' }]);
        if (t >= T0 + TTL) break;
      }
      expect(await nodeB.members('room:1', T0 + TTL)).toEqual([{ user_id: 'onB', status: 'online' }]);
    });

    it('a connection that leaves takes the user\'s closed connections there with it, not the open ones', async () => {
      const s = h().store();
      const ref = (userId: string, connectionId: string) => ({ channel: 'room:1', userId, connectionId });
      // u1 reloaded: the old tab lingers, the new one subscribed again.
      await s.upsert(entry('u1', 'old'), TTL, T0);
      await s.linger(ref('u1', 'old'), TTL, T0 + 1);
      await s.upsert(entry('u1', 'new'), TTL, T0 + 2);
      // Another user's closed connection is none of u1's business.
      await s.upsert(entry('u2', 'gone'), TTL, T0);
      await s.linger(ref('u2', 'gone'), TTL, T0 + 1);
      // The new tab unsubscribes: u1 left on purpose, so the lingering old tab must not keep them online.
      expect(await s.remove('room:1', 'u1', 'new', T0 + 3)).toEqual({ channel: 'room:1', userId: 'u1', kind: 'leave', status: 'offline' });
      expect(await s.members('room:1', T0 + 4)).toEqual([{ user_id: 'u2', status: 'online' }]);
      expect(await s.expire(T0 + TTL + 10)).toEqual([{ channel: 'room:1', userId: 'u2', kind: 'leave', status: 'offline' }]);
      // With another device still open, the user stays, at that device's status.
      await s.upsert(entry('u3', 'phone', 'dnd'), TTL, T0);
      await s.upsert(entry('u3', 'desk'), TTL, T0);
      await s.linger(ref('u3', 'desk'), TTL, T0 + 1);
      await s.upsert(entry('u3', 'tab'), TTL, T0 + 2);
      expect(await s.remove('room:1', 'u3', 'tab', T0 + 3)).toEqual({ channel: 'room:1', userId: 'u3', kind: 'update', status: 'dnd' });
      expect(await s.members('room:1', T0 + 4)).toEqual([{ user_id: 'u3', status: 'dnd' }]);
    });

    it('linger re-stamps a live entry, but never brings back one that expired or left', async () => {
      const s = h().store();
      const { status: _status, ...ref } = entry('u1', 'c1');
      await s.upsert(entry('u1', 'c1'), 1000, T0);
      expect(await s.linger(ref, 1000, T0 + 900)).toBeNull();
      // Live past its first expiry (T0 + 1000), gone after the new one (T0 + 1900).
      expect(await s.members('room:1', T0 + 1500)).toEqual([{ user_id: 'u1', status: 'online' }]);
      expect(await s.expire(T0 + 1500)).toEqual([]);
      expect(await s.members('room:1', T0 + 1900)).toEqual([]);
      // Expired, not swept yet: stays expired.
      expect(await s.linger(ref, 1000, T0 + 1950)).toBeNull();
      expect(await s.members('room:1', T0 + 1950)).toEqual([]);
      expect(await s.expire(T0 + 2000)).toEqual([{ channel: 'room:1', userId: 'u1', kind: 'leave', status: 'offline' }]);
      // Swept, or never there: nothing to stamp, nothing comes back.
      expect(await s.linger(ref, 1000, T0 + 2100)).toBeNull();
      expect(await s.linger({ ...ref, connectionId: 'c9' }, 1000, T0 + 2100)).toBeNull();
      expect(await s.members('room:1', T0 + 2100)).toEqual([]);
      expect(await s.expire(T0 + 10_000)).toEqual([]);
    });

    it("a closed connection's lingering entry keeps the user present but never hides an open one's status", async () => {
      const s = h().store();
      const ref = (conn: string) => ({ channel: 'room:1', userId: 'u1', connectionId: conn });
      // Two tabs: one online, one dnd. Closing the online one shows the dnd one at once.
      await s.upsert(entry('u1', 'tabA', 'online'), 1000, T0);
      await s.upsert(entry('u1', 'tabB', 'dnd'), 1000, T0);
      expect(await s.linger(ref('tabA'), 1000, T0 + 100)).toEqual({ channel: 'room:1', userId: 'u1', kind: 'update', status: 'dnd' });
      expect(await s.members('room:1', T0 + 200)).toEqual([{ user_id: 'u1', status: 'dnd' }]);
      // A reload: the only tab closes as online, the new one opens as dnd — dnd shows, no leave.
      await s.upsert(entry('u2', 'old', 'online'), 1000, T0);
      expect(await s.linger({ channel: 'room:1', userId: 'u2', connectionId: 'old' }, 1000, T0 + 100)).toBeNull();
      expect(await s.members('room:1', T0 + 150)).toEqual([
        { user_id: 'u1', status: 'dnd' },
        { user_id: 'u2', status: 'online' },
      ]);
      expect(await s.upsert(entry('u2', 'new', 'dnd'), 1000, T0 + 200)).toEqual({ channel: 'room:1', userId: 'u2', kind: 'update', status: 'dnd' });
      // The lingering entries expire without news while an open one remains.
      await s.upsert(entry('u1', 'tabB', 'dnd'), 1000, T0 + 900);
      await s.upsert(entry('u2', 'new', 'dnd'), 1000, T0 + 900);
      expect(await s.expire(T0 + 1500)).toEqual([]);
      expect(await s.members('room:1', T0 + 1500)).toEqual([
        { user_id: 'u1', status: 'dnd' },
        { user_id: 'u2', status: 'dnd' },
      ]);
      // Alone, a lingering entry still counts, with the status it had.
      await s.upsert(entry('u3', 'only', 'idle'), 1000, T0 + 1500);
      await s.linger({ channel: 'room:1', userId: 'u3', connectionId: 'only' }, 1000, T0 + 1600);
      expect(await s.members('room:1', T0 + 2000)).toContainEqual({ user_id: 'u3', status: 'idle' });
      expect(await s.expire(T0 + 2600)).toContainEqual({ channel: 'room:1', userId: 'u3', kind: 'leave', status: 'offline' });
    });

    it('rejects an unknown status or a TTL that is not positive', async () => {
      const s = h().store();
      await expect(s.upsert({ ...entry('u', 'c'), status: 'away' as 'idle' }, TTL, T0)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(s.upsert(entry('u', 'c'), 0, T0)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    });

    it('reports each expired user exactly once when several nodes sweep at the same time', async () => {
      const nodes = [h().store(), h().store(), h().store()];
      const ups: Promise<unknown>[] = [];
      for (let c = 0; c < 130; c++) ups.push(nodes[c % 3]!.upsert(entry(`u${c}`, 'x', 'online', `ch:${c}`), 1000, T0));
      for (let u = 0; u < 1100; u++) ups.push(nodes[u % 3]!.upsert(entry(`big${u}`, `conn${u}`, 'idle', 'ch:big'), 1000, T0));
      await Promise.all(ups);
      const rounds = await Promise.all(nodes.flatMap((n) => [n.expire(T0 + 1000), n.expire(T0 + 1000)]));
      const all = rounds.flat();
      expect(all.every((c) => c.kind === 'leave')).toBe(true);
      const keys = all.map((c) => `${c.channel}/${c.userId}`);
      expect(new Set(keys).size).toBe(keys.length);
      expect(keys).toHaveLength(1230);
      expect(await nodes[0]!.members('ch:big', T0)).toEqual([]);
    });
  });
}

function sessionConformance(name: string, make: () => { store: SessionStore; pass(ms: number): Promise<void> }): void {
  describe(name, () => {
    const state = (sessionId: string): SessionState => ({
      sessionId,
      userId: 'u1',
      channels: { 'room:1': { offset: 4, epoch: 'abc' }, 'user:u1': { offset: 0, epoch: 'xyz' } },
    });

    it('saves, loads, overwrites and deletes a session', async () => {
      const { store } = make();
      expect(await store.load('s-missing')).toBeNull();
      const s = state('s1');
      await store.save(s, 60_000);
      s.channels['room:1']!.offset = 99; // stored by value
      expect(await store.load('s1')).toEqual(state('s1'));
      await store.save({ ...state('s1'), channels: {} }, 60_000);
      expect(await store.load('s1')).toEqual({ ...state('s1'), channels: {} });
      await store.delete('s1');
      await store.delete('s1');
      expect(await store.load('s1')).toBeNull();
    });

    it('once another connection took a session over, the old one neither writes nor deletes it', async () => {
      const { store } = make();
      await store.save({ ...state('s4'), owner: 'conn-old' }, 60_000);
      await store.save({ ...state('s4'), owner: 'conn-old', channels: { 'room:2': { offset: 1, epoch: 'e' } } }, 60_000);
      expect((await store.load('s4'))?.channels).toEqual({ 'room:2': { offset: 1, epoch: 'e' } });
      // A resume on another connection (maybe another node) takes it over.
      await store.save({ ...state('s4'), owner: 'conn-new' }, 60_000, { takeOver: true });
      // The old connection, still open, saves on its timer and on close: nothing changes.
      await store.save({ ...state('s4'), owner: 'conn-old', channels: {} }, 60_000);
      await store.delete('s4', 'conn-old');
      expect(await store.load('s4')).toEqual({ ...state('s4'), owner: 'conn-new' });
      // The new owner writes and deletes it.
      await store.save({ ...state('s4'), owner: 'conn-new', channels: {} }, 60_000);
      expect((await store.load('s4'))?.channels).toEqual({});
      await store.delete('s4', 'conn-new');
      expect(await store.load('s4')).toBeNull();
    });

    it('forgets a session once its TTL has run out', async () => {
      const { store, pass } = make();
      await store.save(state('s2'), 150);
      await store.save(state('s3'), 60_000);
      expect(await store.load('s2')).not.toBeNull();
      await pass(300);
      expect(await store.load('s2')).toBeNull();
      expect(await store.load('s3')).toEqual(state('s3'));
    });
  });
}

// ---- memory -------------------------------------------------------------------------------

presenceConformance('MemoryPresenceStore', () => {
  const store = new MemoryPresenceStore(); // one process: every "node" shares it
  return { kind: 'memory', store: () => store };
});

sessionConformance('MemorySessionStore', () => {
  const clock = new ManualClock();
  return { store: new MemorySessionStore({ clock }), pass: async (ms) => clock.advance(ms) };
});

describe('MemorySessionStore in a quiet server', () => {
  it('forgets expired sessions on its own timer, not only after more sessions are saved', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = new ManualClock();
    const store = new MemorySessionStore({ clock });
    try {
      for (let i = 0; i < 100; i++) await store.save({ sessionId: `s${i}`, userId: 'u', channels: { 'room:1': { offset: 1, epoch: 'e' } } }, 1000);
      expect(store.size).toBe(100);
      clock.advance(1000);
      vi.advanceTimersByTime(60_000);
      expect(store.size).toBe(0);
    } finally {
      await store.close();
      vi.useRealTimers();
    }
  });
});

// ---- redis --------------------------------------------------------------------------------

const filePrefix = `temtest:presence:${randomBase62(6)}:`;
const opened: { close(): Promise<void> }[] = [];
let admin: Redis | undefined;

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  if (!admin) return;
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${filePrefix}*`, 'COUNT', 1000);
    if (keys.length) await admin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await admin.quit();
});

describe.skipIf(!services.redis)('Redis', () => {
  let testNo = 0;
  // One bucket (a single Redis's default), and several: channels spread over buckets, each swept
  // on its own by expire() (what a Redis Cluster needs, see src/presence/redis-keys.ts).
  for (const buckets of [1, 8]) {
    presenceConformance(`RedisPresenceStore (${buckets} bucket${buckets > 1 ? 's' : ''})`, () => {
      admin ??= new Redis(REDIS_URL);
      const prefix = `${filePrefix}${++testNo}:`;
      return {
        kind: 'redis',
        store: () => {
          const s = new RedisPresenceStore({ url: REDIS_URL, prefix, buckets });
          opened.push(s);
          return s;
        },
      };
    });
  }

  sessionConformance('RedisSessionStore', () => {
    admin ??= new Redis(REDIS_URL);
    const store = new RedisSessionStore({ url: REDIS_URL, prefix: `${filePrefix}${++testNo}:` });
    opened.push(store);
    return { store, pass: (ms) => new Promise((r) => setTimeout(r, ms)) };
  });

  it('leaves no presence keys without a TTL behind', async () => {
    admin ??= new Redis(REDIS_URL);
    const prefix = `${filePrefix}ttl:`;
    const s = new RedisPresenceStore({ url: REDIS_URL, prefix });
    opened.push(s);
    await s.upsert(entry('u1', 'c1'), 1000, T0);
    const keys = (await admin.keys(`${prefix}*`)).filter((k) => k !== `${prefix}pr:{p0}:idx`);
    expect(keys.sort()).toEqual([`${prefix}pr:{p0}:c:room:1/exp`, `${prefix}pr:{p0}:c:room:1/u:u1`]);
    for (const k of keys) expect(await admin.pttl(k)).toBeGreaterThan(1000);
  });

  it("keeps a channel's keys, and its index entry, in the channel's bucket", async () => {
    admin ??= new Redis(REDIS_URL);
    const prefix = `${filePrefix}buckets:`;
    const keys = new PresenceKeys(prefix, 8);
    const s = new RedisPresenceStore({ url: REDIS_URL, prefix, buckets: 8 });
    opened.push(s);
    const channels = Array.from({ length: 40 }, (_, i) => `room:${i}`);
    for (const channel of channels) await s.upsert(entry('u1', 'c1', 'online', channel), TTL, T0);
    const stored = new Set(await admin.keys(`${prefix}*`));
    expect(stored.size).toBe(channels.length * 2 + 8); // every bucket holds some of the 40
    for (const channel of channels) {
      const [exp, user, index] = keys.entry(channel, 'u1');
      expect(stored.has(exp) && stored.has(user)).toBe(true);
      expect(await admin.zscore(index, channel)).toBe(String(T0 + TTL));
    }
    // Nothing is left in another bucket's index, and the sweep empties every bucket.
    for (let b = 0; b < 8; b++) {
      const listed = await admin.zrange(keys.index(b), 0, -1);
      expect(listed.every((c) => keys.bucketOf(c) === b)).toBe(true);
    }
    expect(await s.expire(T0 + TTL)).toHaveLength(channels.length);
    expect(await admin.keys(`${prefix}*`)).toEqual([]);
  });
});

// ---- redis cluster ------------------------------------------------------------------------

describe.skipIf(!services.redisCluster)('Redis Cluster', () => {
  const clusterPrefix = `temtest:cpresence:${randomBase62(6)}:`;
  afterAll(async () => {
    const cluster = await readyCluster(REDIS_CLUSTER_URL);
    await deleteClusterKeys(cluster, `${clusterPrefix}*`);
    await cluster.quit();
  });

  let testNo = 0;
  presenceConformance('RedisPresenceStore (16 buckets)', () => {
    const prefix = `${clusterPrefix}${++testNo}:`;
    return {
      kind: 'redis',
      store: () => {
        const s = new RedisPresenceStore({ url: REDIS_CLUSTER_URL, cluster: true, prefix, buckets: 16 });
        opened.push(s);
        return s;
      },
    };
  });

  it('tells its reconnect handlers when one node of the cluster is back (restarted or failed over: its entries may be gone)', async () => {
    const prefix = `${clusterPrefix}reconnect:`;
    const name = `n${randomBase62(6)}`;
    const s = new RedisPresenceStore({ url: REDIS_CLUSTER_URL, cluster: true, prefix, buckets: 16, name });
    opened.push(s);
    const reconnected = vi.fn();
    s.onReconnect(reconnected);
    // Channels in every bucket, so every node is in use.
    const channels = Array.from({ length: 48 }, (_, i) => `room:${i}`);
    const touchAll = (): Promise<unknown> => Promise.all(channels.map((c) => s.members(c, T0)));
    await touchAll();
    // One node loses the store's connection, as when it restarts; the others keep theirs.
    const cluster = await readyCluster(REDIS_CLUSTER_URL);
    try {
      const node = cluster.nodes('master')[0]!;
      const list = String(await node.client('LIST'));
      const id = list.split('\n').find((line) => line.includes(` name=${prefix}presence:${name} `))?.match(/^id=(\d+)/)?.[1];
      expect(id).toBeDefined();
      await node.client('KILL', 'ID', id!);
    } finally {
      await cluster.quit();
    }
    const until = Date.now() + 5000;
    while (reconnected.mock.calls.length === 0 && Date.now() < until) {
      await touchAll().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(reconnected).toHaveBeenCalled();
  });

  sessionConformance('RedisSessionStore', () => {
    const store = new RedisSessionStore({ url: REDIS_CLUSTER_URL, cluster: true, prefix: `${clusterPrefix}${++testNo}:` });
    opened.push(store);
    return { store, pass: (ms) => new Promise((r) => setTimeout(r, ms)) };
  });
});
