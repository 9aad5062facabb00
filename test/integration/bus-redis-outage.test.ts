/**
 * The Redis bus when Redis goes away: publish must fail at once with BUS_UNAVAILABLE (the outbox
 * relay keeps its rows and retries), and everything must come back by itself, subscriptions
 * included. The shared Redis server is never stopped: nodes under test reach it through a small
 * TCP proxy this file controls (cut, or black-holed), or have their own connections killed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { randomBase62 } from '../../src/core/ids.js';
import { RedisBus, type Publication } from '../../src/bus/index.js';
import { services, REDIS_URL } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const prefix = `temtest:bus-outage:${randomBase62(6)}:`;
const namespaces = () => ({ historySize: 100, historyTtlMs: 300_000, presence: true, joinLeave: true, clientPublish: false });
const nodes: RedisBus[] = [];
let admin: Redis;
let proxy: TcpProxy;

function node(url: string): RedisBus {
  const bus = new RedisBus({ url, prefix, namespaces, commandTimeoutMs: 300, connectTimeoutMs: 500, heartbeatMs: 200 });
  nodes.push(bus);
  return bus;
}

/** Fails the test if the promise is still pending after `ms` — a publish that hangs is the bug. */
function settlesWithin<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, hung]).finally(() => clearTimeout(timer));
}

async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function clientLines(bus: RedisBus): Promise<string[]> {
  const list = (await admin.client('LIST')) as string;
  return list.split('\n').filter((l) => l.includes(` name=${bus.prefix}bus:`) && l.includes(`:${bus.name} `));
}

async function subscriberCounts(bus: RedisBus): Promise<{ sub: number; psub: number } | null> {
  const line = (await clientLines(bus)).find((l) => l.includes(' name=' + `${bus.prefix}bus:sub:`));
  return line ? { sub: Number(/ sub=(\d+)/.exec(line)![1]), psub: Number(/ psub=(\d+)/.exec(line)![1]) } : null;
}

describe.skipIf(!services.redis)('RedisBus during a Redis outage', () => {
  beforeAll(async () => {
    admin = new Redis(REDIS_URL);
    proxy = TcpProxy.forUrl(REDIS_URL, 6379);
    await proxy.start();
  });
  afterEach(async () => {
    proxy.restore();
    await Promise.all(nodes.splice(0).map((n) => n.close()));
  });
  afterAll(async () => {
    await proxy.stop();
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
    await admin.quit();
  });

  it('fails fast while connections are cut and recovers by itself, subscriptions included', async () => {
    const a = node(proxy.url(REDIS_URL));
    const direct = node(REDIS_URL);
    const got: number[] = [];
    await a.subscribe('room:1', (p) => got.push(p.offset));
    const dropWhileDown = await a.subscribe('room:2', () => undefined);
    const first = await a.publish('room:1', 'm', {});
    await eventually(() => got.length === 1, 'first delivery');

    proxy.cut();
    await eventually(async () => (await a.health()) === 'down', 'health down');
    await expect(settlesWithin(a.publish('room:1', 'm', {}))).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', status: 503 });
    await expect(settlesWithin(a.publishControl({ kind: 'revoke_key', keyId: 'k' }))).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
    await expect(settlesWithin(a.history('room:1'))).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
    await expect(settlesWithin(a.subscribe('room:3', () => undefined))).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
    await settlesWithin(dropWhileDown());
    const missed = await direct.publish('room:1', 'm', {});

    proxy.restore();
    await eventually(async () => (await a.health()) === 'ok', 'health ok');
    // Exactly the channels with local handlers come back: room:1, not room:2 (dropped) or room:3 (failed).
    await eventually(async () => (await subscriberCounts(a))?.sub === 1, 're-subscription');
    expect(await subscriberCounts(a)).toEqual({ sub: 1, psub: 0 });
    const after = await direct.publish('room:1', 'm', {});
    await eventually(() => got.includes(after.offset), 'delivery after reconnect');
    expect(got).toEqual([1, after.offset]);
    // The gap is visible from offsets and recoverable from history (Redis kept its data).
    const recovered = await a.history('room:1', { offset: first.offset, epoch: first.epoch });
    expect(recovered.publications.map((p: Publication) => p.offset)).toEqual([missed.offset, after.offset]);
    expect(await a.publish('room:1', 'm', {})).toMatchObject({ offset: after.offset + 1, epoch: first.epoch });
  });

  it('fails fast when Redis stops answering (black hole) and recovers when it answers again', async () => {
    const a = node(proxy.url(REDIS_URL));
    const direct = node(REDIS_URL);
    const got: number[] = [];
    await a.subscribe('room:b', (p) => got.push(p.offset));
    await a.publish('room:b', 'm', {});

    proxy.stall();
    await expect(settlesWithin(a.publish('room:b', 'm', {}))).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
    await eventually(async () => (await a.health()) === 'down', 'health down');

    proxy.restore();
    await eventually(() => a.publish('room:b', 'm', {}).then(() => true, () => false), 'publish to work again');
    await eventually(async () => (await subscriberCounts(a))?.sub === 1, 're-subscription');
    const later = await direct.publish('room:b', 'm', {});
    await eventually(() => got.includes(later.offset), 'delivery after the black hole');
    expect(got).toEqual([...got].sort((x, y) => x - y));
  });

  it('reconnects and re-subscribes after its connections are killed (CLIENT KILL)', async () => {
    const a = node(REDIS_URL);
    const b = node(REDIS_URL);
    const got: string[] = [];
    await a.subscribe('room:k', (p) => got.push(`k${p.offset}`));
    await a.subscribe('room:p:*', (p) => got.push(p.channel));
    await a.publish('room:k', 'm', {});
    await eventually(() => got.length === 1, 'first delivery');
    const before = await clientLines(a);
    expect(before).toHaveLength(2);
    const ids = before.map((l) => /(?:^|\s)id=(\d+)/.exec(l)![1]!);
    for (const id of ids) await admin.client('KILL', 'ID', id);

    // Until it has reconnected, publish either fails with BUS_UNAVAILABLE or (once back) works.
    const failures: unknown[] = [];
    await eventually(
      () =>
        a.publish('room:k', 'm', {}).then(
          () => true,
          (err: unknown) => (failures.push(err), false),
        ),
      'publish after CLIENT KILL',
    );
    for (const err of failures) expect(err).toMatchObject({ code: 'BUS_UNAVAILABLE' });
    await eventually(async () => {
      const counts = await subscriberCounts(a);
      return counts?.sub === 1 && counts.psub === 1;
    }, 're-subscription');
    const now = (await clientLines(a)).map((l) => /(?:^|\s)id=(\d+)/.exec(l)![1]!);
    expect(now.some((id) => ids.includes(id))).toBe(false);
    const exact = await b.publish('room:k', 'm', {});
    await b.publish('room:p:1', 'm', {});
    await eventually(() => got.includes(`k${exact.offset}`) && got.includes('room:p:1'), 'deliveries after reconnect');
  });
});
