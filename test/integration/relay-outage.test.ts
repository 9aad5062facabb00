/**
 * The outbox relay when the bus fails: rows stay in the outbox, the relay retries with backoff,
 * and once the bus is back every notification arrives, in order, none lost — a client never sees
 * an event's status go backwards. Covered with a bus that fails for a while, one that fails every
 * few publishes (a batch failing part-way), two relays on one PostgreSQL database, and a Redis
 * bus whose connection is cut.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PartialPublishError, RedisBus } from '../../src/bus/index.js';
import { namespaceResolver } from '../../src/bus/namespaces.js';
import type { Bus, BusMessage, Publication, PublishOptions } from '../../src/bus/types.js';
import { createError } from '../../src/core/errors.js';
import { randomBase62 } from '../../src/core/ids.js';
import { OutboxRelay, type OutboxRelayOptions } from '../../src/outbox/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Store } from '../../src/store/types.js';
import { HELD_SCAN_WINDOW } from '../../src/store/ops/outbox.js';
import { createPostgresStore } from '../../src/store/index.js';
import { deleteRedisKeys } from '../helpers/redis-realtime.js';
import type { TestPrincipal } from '../helpers/api.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { ingestEvents } from '../fixtures/worker-helpers.js';
import { services, REDIS_URL } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { isPublication, startGatewayHarness, WsTestClient, type GatewayHarness } from '../helpers/ws.js';

/**
 * Delegates to a real bus; fails publishes while `down`, or every `failEvery`-th one; every
 * `loseReplyEvery`-th one goes out but fails as if the connection dropped before the reply.
 */
class FlakyBus {
  down = false;
  failEvery = 0;
  loseReplyEvery = 0;
  attempts = 0;
  failures = 0;
  constructor(private readonly inner: Bus) {}
  async publishMany(messages: BusMessage[], options?: PublishOptions): Promise<Publication[]> {
    this.attempts++;
    if (this.down || (this.failEvery > 0 && this.attempts % this.failEvery === 0)) {
      this.failures++;
      throw createError('BUS_UNAVAILABLE', 'bus down (test)');
    }
    const pubs = await this.inner.publishMany(messages, options);
    if (this.loseReplyEvery > 0 && this.attempts % this.loseReplyEvery === 0) {
      this.failures++;
      throw createError('BUS_UNAVAILABLE', 'connection closed before the reply (test)');
    }
    return pubs;
  }
  async reachable(channels: readonly string[]): Promise<ReadonlySet<string>> {
    return this.down ? new Set() : this.inner.reachable(channels);
  }
}

/**
 * Delegates to a real bus, except for the channels in `down` (their Redis Cluster node is away):
 * those fail while the others of the same call go out, as publishMany reports it on a cluster.
 */
class NodeDownBus {
  readonly down = new Set<string>();
  /** The failed channels' messages go out all the same: the reply was lost on the way back. */
  ranAnyway = false;
  /** Calls that included each channel. */
  readonly tries = new Map<string, number>();
  /** Questions about each channel (reachable). */
  readonly probes = new Map<string, number>();
  /** The outbox ids of the messages that went out, per channel, in the order they went. */
  readonly sent = new Map<string, number[]>();
  constructor(private readonly inner: Bus) {}
  async publishMany(messages: BusMessage[], options?: PublishOptions): Promise<Publication[]> {
    for (const channel of new Set(messages.map((m) => m.channel))) this.tries.set(channel, (this.tries.get(channel) ?? 0) + 1);
    const failed = new Set(messages.filter((m) => this.down.has(m.channel)).map((m) => m.channel));
    const out = this.ranAnyway ? messages : messages.filter((m) => !failed.has(m.channel));
    for (const m of out) this.sent.set(m.channel, [...(this.sent.get(m.channel) ?? []), Number(m.receiptId)]);
    const pubs = await this.inner.publishMany(out, options);
    if (failed.size > 0) throw new PartialPublishError(pubs, failed, createError('BUS_UNAVAILABLE', 'node away (test)'));
    return pubs;
  }
  async reachable(channels: readonly string[]): Promise<ReadonlySet<string>> {
    for (const channel of channels) this.probes.set(channel, (this.probes.get(channel) ?? 0) + 1);
    return new Set(channels.filter((c) => !this.down.has(c)));
  }
}

interface Update {
  event_id: string;
  status: string;
  version: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Ingests `n` events for `owner` and runs each through claim → complete. */
async function produce(h: GatewayHarness, store: Store, owner: TestPrincipal, n: number, type = 'job.run'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await h.api.request<{ event_id: string }>('POST', '/api/events', { key: owner.key, body: { type, payload: { i } } });
    expect(res.status).toBe(202);
    ids.push(res.body.event_id);
  }
  for (;;) {
    const jobs = await store.claim({ queue: 'processing', workerId: 'w', limit: 50, leaseMs: 60_000, now: new Date() });
    if (jobs.length === 0) break;
    for (const j of jobs) await store.complete({ eventId: j.event.id, leaseToken: j.leaseToken }, { processor: 't', result: null }, new Date());
  }
  return ids;
}

/** Every event's updates as the client saw them: complete, once each, versions strictly increasing. */
function checkDelivered(c: WsTestClient, owner: string, ids: string[]): void {
  const byEvent = new Map<string, Update[]>();
  for (const f of c.events(`user:${owner}`, 'event.update')) {
    const u = f.payload.payload as unknown as Update;
    byEvent.set(u.event_id, [...(byEvent.get(u.event_id) ?? []), u]);
  }
  for (const id of ids) {
    const seen = byEvent.get(id) ?? [];
    expect(seen.map((u) => u.status), id).toEqual(['accepted', 'queued', 'processing', 'processed']);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.version).toBeGreaterThan(seen[i - 1]!.version);
  }
}

const updateCount = (c: WsTestClient, owner: string) => c.events(`user:${owner}`, 'event.update').length;

/**
 * A gateway harness and a relay over it publishing through a NodeDownBus, set up before the
 * describe block's tests (the relay started unless `start: false`) and stopped after them.
 */
function useNodeDownRelay(
  tuning: Parameters<typeof relayOver>[2],
  opts: { start?: boolean } = {},
): { h: GatewayHarness; bus: NodeDownBus; relay: OutboxRelay } {
  const s = {} as { h: GatewayHarness; bus: NodeDownBus; relay: OutboxRelay };
  beforeAll(async () => {
    s.h = await startGatewayHarness();
    s.bus = new NodeDownBus(s.h.bus);
    s.relay = relayOver(s.h, s.bus, tuning);
    if (opts.start ?? true) await s.relay.start();
  });
  afterAll(async () => {
    await s.relay?.stop();
    await s.h?.close();
  });
  return s;
}

/** A relay over the harness's store, publishing through `bus`, with the harness's metrics and clock. */
function relayOver(h: GatewayHarness, bus: OutboxRelayOptions['bus'], tuning: Pick<OutboxRelayOptions, 'batchSize' | 'pollIntervalMs' | 'minBackoffMs' | 'maxBackoffMs'> = {}): OutboxRelay {
  return new OutboxRelay({ store: h.api.store, bus, logger: silentLogger(), metrics: h.api.metrics, clock: h.api.clock, ...tuning });
}

describe('relay with a row that names no publishable channel (PGlite, memory bus)', () => {
  let h: GatewayHarness;
  let relay: OutboxRelay;
  let owner: TestPrincipal;
  /** Rows of events of this type reach the relay with an owner channel no bus accepts. */
  const POISON = 'job.poison';

  beforeAll(async () => {
    h = await startGatewayHarness();
    const real = h.api.store;
    // The real store, with the rows of `poisoned` events rewritten as a row written by an older
    // release would read (a JWT sub such as auth0|1 made its owner channel).
    const store: Pick<Store, 'relayOutbox' | 'onOutbox'> = {
      onOutbox: (handler) => real.onOutbox(handler),
      relayOutbox: (limit, publish) => real.relayOutbox(limit, (ms) => publish(ms.map((m) => ((m.payload as { type?: string }).type === POISON ? { ...m, channel: 'user:auth0|1' } : m)))),
    };
    relay = new OutboxRelay({ store, bus: h.bus, logger: silentLogger(), metrics: h.api.metrics, clock: h.api.clock, pollIntervalMs: 100, minBackoffMs: 20, maxBackoffMs: 200 });
    await relay.start();
    owner = await h.api.createPrincipal({ id: 'owner' });
  });

  afterAll(async () => {
    await relay?.stop();
    await h?.close();
  });

  it('drops and counts that row; every other notification, in the same batches, still arrives', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: owner.key }));
    const [bad] = await produce(h, h.api.store, owner, 1, POISON);
    const good = await produce(h, h.api.store, owner, 5);
    await eventually(() => updateCount(c, 'owner') >= 20, '20 updates');
    checkDelivered(c, 'owner', good);
    expect(c.events('user:owner', 'event.update').some((f) => (f.payload.payload as unknown as Update).event_id === bad)).toBe(false);
    expect((await h.api.metrics.relayDropped.get()).values[0]?.value).toBe(4);
    await eventually(async () => (await h.api.store.peekOutbox(10)).length === 0, 'an empty outbox');
    await c.close();
  });
});

describe('relay with a bus whose node for some channels is away (PGlite, memory bus)', () => {
  const s = useNodeDownRelay({ pollIntervalMs: 100, minBackoffMs: 50, maxBackoffMs: 200, batchSize: 16 });
  let h: GatewayHarness;
  let bus: NodeDownBus;
  let away: TestPrincipal;
  let fine: TestPrincipal;

  beforeAll(async () => {
    ({ h, bus } = s);
    away = await h.api.createPrincipal({ id: 'away' });
    fine = await h.api.createPrincipal({ id: 'fine' });
  });

  it('keeps the other channels going, and delivers the held channel in order once its node is back', async () => {
    const a = await WsTestClient.ready(h.wsUrl({ token: away.key }));
    const f = await WsTestClient.ready(h.wsUrl({ token: fine.key }));
    bus.down.add('user:away');
    const heldIds = await produce(h, h.api.store, away, 6);
    const fineIds = await produce(h, h.api.store, fine, 6);
    // Rows of the held channel stand in front of the others, in batches of 16: those go out anyway.
    await eventually(() => updateCount(f, 'fine') >= 24, '24 updates for the other channel');
    checkDelivered(f, 'fine', fineIds);
    expect(updateCount(a, 'away')).toBe(0);
    expect(new Set((await h.api.store.peekOutbox(100)).map((m) => m.channel))).toEqual(new Set(['user:away']));
    // Asked about again with a backoff of its own, and not published to while its node is away.
    await eventually(() => (bus.probes.get('user:away') ?? 0) >= 3, 'questions about the held channel');
    expect(bus.tries.get('user:away')).toBe(1);
    const later = await produce(h, h.api.store, fine, 2);
    await eventually(() => updateCount(f, 'fine') >= 32, 'new updates for the other channel');
    checkDelivered(f, 'fine', later);
    heldIds.push(...(await produce(h, h.api.store, away, 2)));
    bus.down.delete('user:away');
    await eventually(() => updateCount(a, 'away') >= 32, '32 updates for the held channel');
    await sleep(150);
    expect(updateCount(a, 'away')).toBe(32);
    expect(updateCount(f, 'fine')).toBe(32);
    checkDelivered(a, 'away', heldIds);
    // One channel, one sequence: offsets without a gap or a repeat.
    const offsets = a.events('user:away', 'event.update').map((e) => Number(e.payload.offset));
    expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
    expect(await h.api.store.peekOutbox(10)).toEqual([]);
    await a.close();
    await f.close();
  });

  it('sends nothing twice when a held channel\'s call went out but its answer was lost', async () => {
    const a = await WsTestClient.ready(h.wsUrl({ token: away.key }));
    bus.down.add('user:away');
    bus.ranAnyway = true;
    const tried = bus.tries.get('user:away') ?? 0;
    const ids = await produce(h, h.api.store, away, 3);
    // What the call carried reached the channel, yet the relay holds those rows back as failed.
    await eventually(() => (bus.tries.get('user:away') ?? 0) > tried && updateCount(a, 'away') > 0, 'a call that went out');
    expect((await h.api.store.peekOutbox(100)).length).toBeGreaterThan(0);
    bus.ranAnyway = false;
    bus.down.delete('user:away');
    await eventually(async () => (await h.api.store.peekOutbox(10)).length === 0, 'an empty outbox');
    await sleep(150);
    expect(updateCount(a, 'away')).toBe(12);
    checkDelivered(a, 'away', ids);
    await a.close();
  });
});

describe('relay holding back a channel with more rows than a round looks at (PGlite, memory bus)', () => {
  // Nothing polls within the test; the held channel is asked about again every half second.
  const s = useNodeDownRelay({ pollIntervalMs: 60_000, minBackoffMs: 500, maxBackoffMs: 500 }, { start: false });

  it('gets the other channels\' rows past the backlog at once, and the backlog out in order once its node is back', async () => {
    const { h, bus, relay } = s;
    const fine = await h.api.createPrincipal({ id: 'fine' });
    const f = await WsTestClient.ready(h.wsUrl({ token: fine.key }));
    bus.down.add('user:away');
    // Three scan windows of the held channel's rows in front of the other channel's (each row is
    // two updates: accepted and queued).
    const backlog = 3 * HELD_SCAN_WINDOW;
    await ingestEvents(h.api.store, backlog, new Date(), { userId: 'away' });
    await ingestEvents(h.api.store, 2, new Date(), { userId: 'fine' });
    const started = Date.now();
    await relay.start();
    await eventually(() => updateCount(f, 'fine') >= 4, 'the other channel\'s updates', 10_000);
    // Rounds follow each other while they move the held rows aside; no poll was needed.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(bus.sent.get('user:away') ?? []).toEqual([]);
    expect((await h.api.store.peekOutbox(1))[0]!.channel).toBe('user:away');
    bus.down.delete('user:away');
    await eventually(() => (bus.sent.get('user:away')?.length ?? 0) >= 2 * backlog, 'the held channel\'s backlog', 30_000);
    const ids = bus.sent.get('user:away')!;
    expect(ids).toHaveLength(2 * backlog);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(await h.api.store.peekOutbox(1)).toEqual([]);
    await f.close();
  });
});

describe('relay holding a channel back, with no poll and no retry due (PGlite, memory bus)', () => {
  // Only notifications can wake it within the test: the poll and the held channel's next try are a minute away.
  const s = useNodeDownRelay({ pollIntervalMs: 60_000, minBackoffMs: 60_000, maxBackoffMs: 60_000 });

  it('is still woken by new rows of the other channels while the held rows give it nothing to send', async () => {
    const { h, bus } = s;
    const away = await h.api.createPrincipal({ id: 'away' });
    const fine = await h.api.createPrincipal({ id: 'fine' });
    const f = await WsTestClient.ready(h.wsUrl({ token: fine.key }));
    bus.down.add('user:away');
    await produce(h, h.api.store, away, 2);
    await eventually(() => (bus.tries.get('user:away') ?? 0) > 0, 'the held channel tried');
    await sleep(200);
    expect((await h.api.metrics.relayHeldChannels.get()).values[0]?.value).toBe(1);
    const ids = await produce(h, h.api.store, fine, 2);
    await eventually(() => updateCount(f, 'fine') >= 8, '8 updates for the other channel', 5000);
    checkDelivered(f, 'fine', ids);
    await f.close();
  });
});

describe('relay with a failing bus (PGlite, memory bus)', () => {
  let h: GatewayHarness;
  let flaky: FlakyBus;
  let relay: OutboxRelay;
  let owner: TestPrincipal;

  beforeAll(async () => {
    h = await startGatewayHarness();
    flaky = new FlakyBus(h.bus);
    relay = relayOver(h, flaky, { pollIntervalMs: 100, minBackoffMs: 20, maxBackoffMs: 200, batchSize: 16 });
    await relay.start();
    owner = await h.api.createPrincipal({ id: 'owner' });
  });

  afterAll(async () => {
    await relay?.stop();
    await h?.close();
  });

  it('holds every notification while the bus is down and delivers them all, in order, once it is back', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: owner.key }));
    flaky.down = true;
    const ids = await produce(h, h.api.store, owner, 10);
    await eventually(() => flaky.failures >= 3, 'relay retrying');
    expect((await h.api.store.peekOutbox(100)).length).toBe(40);
    expect(updateCount(c, 'owner')).toBe(0);
    flaky.down = false;
    await eventually(() => updateCount(c, 'owner') >= 40, '40 updates');
    await sleep(100);
    expect(updateCount(c, 'owner')).toBe(40);
    checkDelivered(c, 'owner', ids);
    expect(await h.api.store.peekOutbox(10)).toEqual([]);
    await c.close();
  });

  it('a batch that fails part-way is retried without repeating what went out', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: owner.key }));
    flaky.failEvery = 5;
    const ids = await produce(h, h.api.store, owner, 12);
    await eventually(() => updateCount(c, 'owner') >= 48, '48 updates');
    flaky.failEvery = 0;
    await sleep(150);
    expect(updateCount(c, 'owner')).toBe(48);
    checkDelivered(c, 'owner', ids);
    await c.close();
  });

  it('a relay that takes over from one that died between its publish and its commit sends nothing twice', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: owner.key }));
    await relay.stop();
    try {
      const ids = await produce(h, h.api.store, owner, 5);
      // The first relay's publish goes out, but it hears nothing back and its transaction ends.
      const dying = new FlakyBus(h.bus);
      dying.loseReplyEvery = 1;
      const first = relayOver(h, dying, { batchSize: 64 });
      await expect(first.drain()).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
      await eventually(() => updateCount(c, 'owner') >= 20, '20 updates from the first relay');
      expect((await h.api.store.peekOutbox(100)).length).toBe(20);
      // Another relay (a new process, knowing nothing of the first) takes the rows over.
      const next = relayOver(h, h.bus, { batchSize: 64 });
      expect(await next.drain()).toBe(20);
      await sleep(150);
      expect(updateCount(c, 'owner')).toBe(20);
      checkDelivered(c, 'owner', ids);
      expect(await h.api.store.peekOutbox(10)).toEqual([]);
    } finally {
      await relay.start();
      await c.close();
    }
  });

  it('a batch that went out but lost its reply is not sent again', async () => {
    const c = await WsTestClient.ready(h.wsUrl({ token: owner.key }));
    const failuresBefore = flaky.failures;
    flaky.loseReplyEvery = 2;
    const ids = await produce(h, h.api.store, owner, 12);
    await eventually(() => updateCount(c, 'owner') >= 48, '48 updates');
    flaky.loseReplyEvery = 0;
    await sleep(150);
    expect(flaky.failures).toBeGreaterThan(failuresBefore);
    expect(updateCount(c, 'owner')).toBe(48);
    checkDelivered(c, 'owner', ids);
    expect(await h.api.store.peekOutbox(10)).toEqual([]);
    await c.close();
  });
});

describe.skipIf(!services.postgres)('two relays on one PostgreSQL database', () => {
  let db: TestStore;
  let h: GatewayHarness;
  const relays: OutboxRelay[] = [];
  const stores: Store[] = [];

  beforeAll(async () => {
    db = await createTestStore('postgres');
    h = await startGatewayHarness({ store: db.store });
  });

  afterAll(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await Promise.all(stores.map((s) => s.close()));
    await h?.close();
    await db?.cleanup();
  });

  it('one is active at a time; every update arrives once and in order', async () => {
    const owner = await h.api.createPrincipal({ id: 'owner' });
    const c = await WsTestClient.ready(h.wsUrl({ token: owner.key }));
    for (let i = 0; i < 2; i++) {
      const store = createPostgresStore(db.url!, { poolMax: 2 });
      stores.push(store);
      const relay = new OutboxRelay({ store, bus: h.bus, logger: silentLogger(), metrics: h.api.metrics, clock: h.api.clock, pollIntervalMs: 50, batchSize: 8 });
      relays.push(relay);
      await relay.start();
    }
    const ids = await produce(h, h.api.store, owner, 25);
    await eventually(() => updateCount(c, 'owner') >= 100, '100 updates');
    await sleep(150);
    expect(updateCount(c, 'owner')).toBe(100);
    checkDelivered(c, 'owner', ids);
    await c.close();
  });
});

describe.skipIf(!services.redis || !services.postgres)('relay on Redis while its connection is cut', () => {
  const prefix = `temtest:relay-outage:${randomBase62(6)}:`;
  let h: GatewayHarness;
  let proxy: TcpProxy;
  let relayBus: RedisBus;
  let gatewayBus: RedisBus;
  let relay: OutboxRelay;
  /** What the relay's bus counted as failed publishes (tem_bus_publish_failures_total in a process). */
  let busFailures = 0;

  beforeAll(async () => {
    proxy = TcpProxy.forUrl(REDIS_URL, 6379);
    await proxy.start();
    const { loadConfig } = await import('../../src/config/index.js');
    const namespaces = namespaceResolver(loadConfig({ configFile: '/nonexistent/tem.config.json' }, {}));
    gatewayBus = new RedisBus({ url: REDIS_URL, prefix, namespaces });
    relayBus = new RedisBus({ url: proxy.url(REDIS_URL), prefix, namespaces, commandTimeoutMs: 300, connectTimeoutMs: 500, heartbeatMs: 200, onPublishFailure: () => busFailures++ });
    h = await startGatewayHarness({ kind: 'postgres', bus: gatewayBus });
    relay = relayOver(h, relayBus, { pollIntervalMs: 100, minBackoffMs: 50, maxBackoffMs: 300 });
    await relay.start();
  });

  afterAll(async () => {
    await relay?.stop();
    await h?.close();
    await relayBus?.close();
    await gatewayBus?.close();
    await proxy?.stop();
    await deleteRedisKeys(prefix);
  });

  it('nothing is lost: updates made while Redis was unreachable arrive in order once it is back', async () => {
    const owner = await h.api.createPrincipal({ id: 'owner' });
    const c = await WsTestClient.ready(h.wsUrl({ token: owner.key }));
    const before = await produce(h, h.api.store, owner, 3);
    await eventually(() => updateCount(c, 'owner') >= 12, 'first updates');
    expect(busFailures).toBe(0);
    proxy.cut();
    const during = await produce(h, h.api.store, owner, 5);
    await sleep(600);
    expect((await h.api.store.peekOutbox(100)).length).toBe(20);
    // The relay's attempts failed, and the bus counted them; a control message too.
    expect(busFailures).toBeGreaterThan(0);
    const counted = busFailures;
    await expect(relayBus.publishControl({ kind: 'roles_changed' })).rejects.toBeDefined();
    expect(busFailures).toBe(counted + 1);
    proxy.restore();
    await eventually(() => updateCount(c, 'owner') >= 32, 'updates after the outage', 20_000);
    await sleep(200);
    expect(updateCount(c, 'owner')).toBe(32);
    checkDelivered(c, 'owner', [...before, ...during]);
    expect(c.frames.filter((f) => isPublication(f)).length).toBe(32);
    await c.close();
  });
});

describe('relay retrying a batch that another row has since joined (PGlite, memory bus)', () => {
  let store: TestStore;
  let h: GatewayHarness;

  // Each case on a database and bus of its own: the relays' receipt slot starts empty.
  beforeEach(async () => {
    store = await createTestStore('pglite');
    h = await startGatewayHarness({ store: store.store });
  });

  afterEach(async () => {
    await h?.close();
    await store?.cleanup();
  });

  /**
   * Outbox ids are taken when a row is written, not when it commits: a transaction that took a
   * lower id can commit after a relay read the rows above it. The batch that relay published
   * (reply lost, or its commit failed) then comes back with that row in front and its own last
   * rows pushed past the batch size: they are still to be skipped when their turn comes.
   */
  async function lateRowScenario(name: string, retry: (first: OutboxRelay) => Promise<void>): Promise<void> {
    const owner = await h.api.createPrincipal({ id: name });
    const c = await WsTestClient.ready(h.wsUrl({ token: owner.key }));
    const ids = await produce(h, h.api.store, owner, 3);
    const res = await h.api.request<{ event_id: string }>('POST', '/api/events', { key: owner.key, body: { type: 'job.late', payload: {} } });
    expect(res.status).toBe(202);
    // That event's row took an id below every other row but has not committed yet, as far as
    // the first relay can tell.
    const [late] = await store.db.query<Record<string, unknown>>('DELETE FROM outbox WHERE id = (SELECT max(id) FROM outbox) RETURNING *');
    const dying = new FlakyBus(h.bus);
    dying.loseReplyEvery = 1;
    const first = relayOver(h, dying, { batchSize: 4 });
    await expect(first.drain()).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
    // Its four rows went out; now the row with the lower id commits.
    const columns = Object.keys(late!);
    await store.db.query(
      `INSERT INTO outbox (${columns.join(', ')}) SELECT ${columns.map((k) => (k === 'id' ? '0' : `r.${k}`)).join(', ')} FROM jsonb_populate_record(NULL::outbox, $1::jsonb) r`,
      [JSON.stringify(late)],
    );
    await retry(first);
    await eventually(async () => (await h.api.store.peekOutbox(10)).length === 0, 'the outbox drained');
    await sleep(150);
    checkDelivered(c, name, ids);
    const lateUpdates = c.events(`user:${name}`, 'event.update').filter((f) => (f.payload.payload as unknown as Update).event_id === res.body.event_id);
    expect(lateUpdates.map((f) => (f.payload.payload as unknown as Update).status)).toEqual(['accepted', 'queued']);
    expect(updateCount(c, name)).toBe(14);
    await c.close();
  }

  it('another relay taking the rows over sends none of the first batch twice', async () => {
    await lateRowScenario('taken-over', async () => {
      const next = relayOver(h, h.bus, { batchSize: 4 });
      await next.drain();
    });
  });

  it('the same relay retrying sends none of its first batch twice', async () => {
    await lateRowScenario('retried', async (first) => {
      // Its bus answers again.
      (first as unknown as { o: { bus: Bus } }).o.bus = h.bus;
      await first.drain();
    });
  });
});
