/**
 * Group commit: requests that arrive while a commit is in flight share the next one; nobody is
 * answered before the commit holding their item resolves; a failed commit fails its waiters.
 * The first part drives GroupCommitter with a hand-resolved commit function; the second counts
 * real store.ingest calls under concurrent HTTP requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createError } from '../../src/core/errors.js';
import { GroupCommitter } from '../../src/ingest/batcher.js';
import type { Store } from '../../src/store/types.js';
import { createTestApi, type TestApi } from '../helpers/api.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { services } from '../helpers/services.js';

interface Deferred {
  items: number[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A commit function whose calls the test resolves by hand. */
function manualCommit() {
  const calls: Deferred[] = [];
  const commit = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ items, resolve: () => resolve(items.map((i) => `ok:${i}`)), reject });
    });
  return { calls, commit };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const settledNow = async <T>(p: Promise<T>): Promise<boolean> => {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await tick();
  return done;
};

describe('GroupCommitter', () => {
  it('commits the first item at once and groups those arriving while it is in flight', async () => {
    const { calls, commit } = manualCommit();
    const gc = new GroupCommitter<number, string>({ maxBatch: 100, maxInFlight: 1, commit });
    const first = gc.submit(1);
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    const rest = [2, 3, 4, 5].map((i) => gc.submit(i));
    await tick();
    expect(calls).toHaveLength(1);
    expect(await settledNow(first)).toBe(false); // not answered before its commit resolves
    calls[0]!.resolve();
    expect(await first).toBe('ok:1');
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3, 4, 5]]);
    expect(await settledNow(rest[0]!)).toBe(false);
    calls[1]!.resolve();
    expect(await Promise.all(rest)).toEqual(['ok:2', 'ok:3', 'ok:4', 'ok:5']);
  });

  it('puts at most maxBatch items in one commit', async () => {
    const { calls, commit } = manualCommit();
    const gc = new GroupCommitter<number, string>({ maxBatch: 4, maxInFlight: 1, commit });
    const all = gc.submitMany([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let i = 0; i < 3; i++) {
      await tick();
      calls[i]!.resolve();
      await Promise.resolve();
    }
    expect(await Promise.all(all)).toHaveLength(10);
    expect(calls.map((c) => c.items)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  });

  it('runs up to maxInFlight commits at once', async () => {
    const { calls, commit } = manualCommit();
    const gc = new GroupCommitter<number, string>({ maxBatch: 2, maxInFlight: 2, commit });
    const all = gc.submitMany([1, 2, 3, 4, 5]);
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [3, 4]]);
    calls[1]!.resolve();
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [3, 4], [5]]);
    calls[0]!.resolve();
    calls[2]!.resolve();
    expect(await Promise.all(all)).toEqual(['ok:1', 'ok:2', 'ok:3', 'ok:4', 'ok:5']);
  });

  it('rejects every waiter of a commit that fails with a 503, with that error', async () => {
    const { calls, commit } = manualCommit();
    const gc = new GroupCommitter<number, string>({ maxBatch: 10, maxInFlight: 1, commit });
    const all = gc.submitMany([1, 2, 3]);
    await tick();
    const outage = createError('STORE_UNAVAILABLE', 'database unreachable');
    calls[0]!.reject(outage);
    const results = await Promise.allSettled(all);
    expect(results.map((r) => (r.status === 'rejected' ? r.reason : r.value))).toEqual([outage, outage, outage]);
    expect(calls).toHaveLength(1);
  });

  it('retries a batch that failed otherwise one item at a time, so one bad item fails alone', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommitter<number, string>({
      maxBatch: 10,
      commit: async (items) => {
        batches.push(items);
        if (items.includes(2)) throw createError('BAD_REQUEST', 'item 2 is poison');
        return items.map((i) => `ok:${i}`);
      },
    });
    const results = await Promise.allSettled(gc.submitMany([1, 2, 3]));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(batches).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it('drains queued items on close and refuses new ones', async () => {
    const { calls, commit } = manualCommit();
    const gc = new GroupCommitter<number, string>({ maxBatch: 10, maxInFlight: 1, commit });
    const a = gc.submit(1);
    await tick();
    const b = gc.submit(2);
    let closed = false;
    const closing = gc.close().then(() => (closed = true));
    await expect(gc.submit(3)).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    calls[0]!.resolve();
    await a;
    await tick();
    expect(closed).toBe(false);
    calls[1]!.resolve();
    await b;
    await closing;
    expect(closed).toBe(true);
  });
});

const kind = services.postgres ? 'postgres' : 'pglite';

describe(`group commit through the API (${kind})`, () => {
  let db: TestStore;
  let api: TestApi;
  const ingestCalls: number[] = [];

  beforeAll(async () => {
    db = await createTestStore(kind);
    const real = db.store;
    const counted = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'ingest') {
          return (items: Parameters<Store['ingest']>[0], now: Date) => {
            ingestCalls.push(items.length);
            return real.ingest(items, now);
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    api = await createTestApi({ store: counted, config: { rateLimitPoints: 0 } });
  });
  afterAll(async () => {
    await api?.close();
    await db?.cleanup();
  });

  it('writes 64 concurrent requests in fewer commits, each answered with its own event', async () => {
    const svc = await api.createPrincipal({ kind: 'service' });
    ingestCalls.length = 0;
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) => api.request<{ event_id: string }>('POST', '/api/events', { key: svc.key, body: { type: 'gc.test', payload: { i } } })),
    );
    expect(results.every((r) => r.status === 202)).toBe(true);
    expect(new Set(results.map((r) => r.body.event_id)).size).toBe(64);
    expect(ingestCalls.reduce((a, b) => a + b, 0)).toBe(64);
    expect(ingestCalls.length).toBeLessThan(64);
    for (const [i, r] of results.entries()) {
      const got = await api.request<{ payload: { i: number } }>('GET', `/api/events/${r.body.event_id}`, { key: svc.key });
      expect(got.body.payload.i).toBe(i);
    }
  });
});
