/**
 * The console's DOM-free logic: merging list rows with live updates (never backwards), the
 * throughput counter behind the chart, the Prometheus text parser behind the health view, the
 * feed's polling, and the live link over the client SDK (an in-memory WebSocket).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventStore, newestFirstIndex, type SortKey } from '../../src/console/web/live/events.js';
import { Feed } from '../../src/console/web/live/feed.js';
import { HealthPoller } from '../../src/console/web/live/health.js';
import { HeldRows } from '../../src/console/web/live/held-rows.js';
import type { LinkState } from '../../src/console/web/live/link.js';
import { createSdkLink } from '../../src/console/web/live/sdk-link.js';
import { Throughput } from '../../src/console/web/live/throughput.js';
import { metric, parseProm } from '../../src/console/web/lib/prom.js';
import { FakeSocket, flush } from '../unit/client-fakes.js';

const ID = '0b7c8a0e-1d2f-4a5b-9c6d-7e8f9a0b1c2d';
/** A creation time n seconds after a fixed start. */
const at = (n: number) => new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString();

describe('EventStore', () => {
  it('creates a row from an event.update and moves it forward in place', () => {
    const store = new EventStore();
    const seen: string[] = [];
    store.on((row, kind) => seen.push(`${kind}:${row.status}`));
    store.upsert({ event_id: ID, status: 'queued', type: 'a.b', user_id: 'u1', attempts: 0, updated_at: '2024-01-01T00:00:01Z', version: 2 });
    store.upsert({ event_id: ID, status: 'processing', type: 'a.b', user_id: 'u1', attempts: 1, updated_at: '2024-01-01T00:00:02Z', version: 3 });
    store.upsert({ event_id: ID, status: 'processed', type: 'a.b', user_id: 'u1', attempts: 1, updated_at: '2024-01-01T00:00:03Z', version: 4 });
    expect(seen).toEqual(['new:queued', 'update:processing', 'update:processed']);
    expect(store.list()).toHaveLength(1);
  });

  it('ignores an older version arriving late (a stale list page or a replay)', () => {
    const store = new EventStore();
    store.upsert({ id: ID, status: 'processed', version: 4, updated_at: '2024-01-01T00:00:03Z' });
    expect(store.upsert({ id: ID, status: 'queued', version: 2, updated_at: '2024-01-01T00:00:01Z' })).toBeNull();
    expect(store.get(ID)?.status).toBe('processed');
  });

  it('falls back to updated_at when there is no version', () => {
    const store = new EventStore();
    store.upsert({ id: ID, status: 'processing', updated_at: '2024-01-01T00:00:02Z' });
    expect(store.upsert({ id: ID, status: 'queued', updated_at: '2024-01-01T00:00:01Z' })).toBeNull();
    expect(store.upsert({ id: ID, status: 'failed', updated_at: '2024-01-01T00:00:05Z', last_error: 'boom' })?.last_error).toBe('boom');
  });

  it('lets a retry (failed → queued, higher version) through', () => {
    const store = new EventStore();
    store.upsert({ id: ID, status: 'failed', version: 7 });
    expect(store.upsert({ event_id: ID, status: 'queued', version: 8 })?.status).toBe('queued');
  });

  it('keeps the newest rows when over its cap', () => {
    const store = new EventStore(2);
    for (let i = 0; i < 3; i++) store.upsert({ id: `id-${i}`, status: 'accepted', created_at: `2024-01-01T00:00:0${i}Z` });
    expect(store.list().map((r) => r.id)).toEqual(['id-2', 'id-1']);
    // A larger cap is trimmed back once passed by a twentieth, not on every insert.
    const big = new EventStore(100);
    for (let i = 0; i < 105; i++) big.upsert({ id: `id-${String(i).padStart(3, '0')}`, status: 'accepted', created_at: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString() });
    expect(big.list()).toHaveLength(105);
    big.upsert({ id: 'id-105', status: 'accepted', created_at: new Date(Date.UTC(2024, 0, 1) + 105 * 1000).toISOString() });
    expect(big.list().map((r) => r.id).slice(0, 2)).toEqual(['id-105', 'id-104']);
    expect(big.list()).toHaveLength(100);
  });
});

describe('newestFirstIndex', () => {
  it('places each row of a page applied newest first below the one before it', () => {
    const table: SortKey[] = [{ id: 'b', created_at: '2024-01-01T00:00:05Z' }];
    // A polled page, newest first, with two rows created in the same millisecond (id decides).
    const page: SortKey[] = [
      { id: 'z', created_at: '2024-01-01T00:00:09Z' },
      { id: 'y', created_at: '2024-01-01T00:00:08Z' },
      { id: 'x', created_at: '2024-01-01T00:00:08Z' },
      { id: 'a', created_at: '2024-01-01T00:00:01Z' },
    ];
    for (const row of page) table.splice(newestFirstIndex(table.length, (i) => table[i]!, row), 0, row);
    expect(table.map((r) => r.id)).toEqual(['z', 'y', 'x', 'b', 'a']);
  });
});

describe('HeldRows', () => {
  const ev = (n: number) => ({ id: `id-${String(n).padStart(4, '0')}`, status: 'failed', created_at: at(n) });

  it("keeps a view's older rows in the store however many newer events arrive, until released", () => {
    const store = new EventStore(3);
    const failed = new HeldRows(store);
    for (const n of [0, 1]) {
      failed.add(ev(n));
      store.upsert(ev(n));
    }
    for (let n = 10; n < 20; n++) store.upsert({ ...ev(n), status: 'processed' });
    expect(store.get('id-0000')?.status).toBe('failed');
    expect(store.get('id-0001')?.status).toBe('failed');
    expect(store.list().filter((r) => r.status === 'processed')).toHaveLength(3);
    failed.close();
    store.upsert({ ...ev(20), status: 'processed' });
    expect(store.list().map((r) => r.id)).toEqual(['id-0020', 'id-0019', 'id-0018']);
  });

  it('holds at most its bound, the newest', () => {
    const held = new HeldRows(new EventStore(), 3);
    for (const n of [5, 1, 9, 7, 3]) held.add(ev(n));
    expect(held.size).toBe(3);
    expect(['id-0009', 'id-0007', 'id-0005'].every((id) => held.has(id))).toBe(true);
  });

  it('is what a page loaded with Load older is held in', async () => {
    const store = new EventStore(2);
    for (let n = 10; n < 12; n++) store.upsert(ev(n));
    const older = new HeldRows(store);
    const api = { get: listApi(() => [ev(2), ev(1)]) };
    const feed = new Feed(api as never, idleLink, store, new Throughput());
    await feed.load({}, '0', older);
    expect(store.list().map((r) => r.id)).toEqual(['id-0011', 'id-0010', 'id-0002', 'id-0001']);
  });
});

describe('Throughput', () => {
  it('averages per-status counts over buckets, over a sliding window', () => {
    let now = 1_000_000_000;
    const tp = new Throughput(60, () => now);
    for (let i = 0; i < 10; i++) tp.record('processed');
    tp.record('failed');
    const { series } = tp.series(5);
    const processed = series.find((s) => s.status === 'processed')!;
    expect(processed.points).toHaveLength(12);
    expect(processed.points.at(-1)).toBe(2); // 10 events in a 5 s bucket
    expect(tp.recent('failed', 10)).toBeCloseTo(0.1);
    now += 120_000;
    expect(tp.series(5).series.every((s) => s.points.every((p) => p === 0))).toBe(true);
  });
});

describe('HealthPoller', () => {
  it('reports a server that does not answer as unreachable, its database and Redis too', async () => {
    const api = { request: () => Promise.reject(new Error('cannot reach the server')), metricsText: async () => null };
    const snap = await new HealthPoller(api as never).refresh();
    expect(snap).toMatchObject({ status: 'unreachable', database: 'unreachable', redis: 'unreachable', metricsAvailable: false });
  });
});

describe('parseProm', () => {
  const text = [
    '# HELP tem_queue_depth Jobs ready to run',
    '# TYPE tem_queue_depth gauge',
    'tem_queue_depth 12',
    'tem_queue_oldest_age_seconds 3.5',
    'tem_events{status="failed"} 2',
    'tem_events{status="processed"} 40',
    'tem_http_requests_total{method="GET",route="/a \\"b\\"",status="200"} 7 1700000000000',
  ].join('\n');

  it('reads plain and labelled samples', () => {
    const s = parseProm(text);
    expect(metric(s, 'tem_queue_depth')).toBe(12);
    expect(metric(s, 'tem_queue_oldest_age_seconds')).toBe(3.5);
    expect(metric(s, 'tem_events', { status: 'failed' })).toBe(2);
    expect(metric(s, 'tem_events')).toBe(42);
    expect(metric(s, 'tem_jobs_leased')).toBeNull();
    expect(s.find((x) => x.name === 'tem_http_requests_total')?.labels.route).toBe('/a "b"');
  });

  it('reads an unknown figure (the database did not answer) as none', () => {
    expect(metric(parseProm('tem_database_up 0\ntem_queue_depth Nan\n'), 'tem_queue_depth')).toBeNull();
  });
});

/** GET /api/events over a list (newest first), 100 a page with a cursor, as the server does. */
function listApi(rows: () => Record<string, unknown>[]) {
  return vi.fn(async (_path: string, opts: { query: { limit: number; cursor?: string } }) => {
    const all = rows();
    const from = Number(opts.query.cursor ?? 0);
    const data = all.slice(from, from + opts.query.limit);
    return { data, next_cursor: from + opts.query.limit < all.length ? String(from + opts.query.limit) : null };
  });
}
const idleLink = { onEvent: () => () => undefined, onState: () => () => undefined } as never;

describe('Feed polling', () => {
  // Event ids numbered in creation order.
  const id = (n: number) => `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`;
  // A processed event, created n seconds after the start.
  const row = (n: number) => ({ id: id(n), status: 'processed', version: 4, created_at: at(n) });
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('pages on after a burst until it reaches rows it knows, so no event is left out', async () => {
    // 250 events, newest first, served 100 per page with a cursor, as GET /api/events does.
    let all = Array.from({ length: 9 }, (_, i) => ({ id: id(i), status: 'processed', version: 4 }));
    const api = { get: listApi(() => all) };
    const store = new EventStore();
    const feed = new Feed(api as never, idleLink, store, new Throughput());
    await feed.start();
    expect(store.list()).toHaveLength(9);
    // A burst of 300 between two polls.
    const burst = Array.from({ length: 300 }, (_, i) => ({ id: `00000000-0000-7000-9000-${String(i).padStart(12, '0')}`, status: 'queued', version: 2 }));
    all = [...burst.reverse(), ...all];
    await vi.advanceTimersByTimeAsync(2000);
    expect(store.list()).toHaveLength(309);
    feed.stop();
  });

  it("pages on past the key's own events, known from their live updates, to the others' below them", async () => {
    let all = Array.from({ length: 5 }, (_, n) => row(n)).reverse();
    let live: (ev: { event: string; payload: unknown }) => void = () => undefined;
    const link = { onEvent: (fn: typeof live) => ((live = fn), () => undefined), onState: () => () => undefined };
    const store = new EventStore();
    const feed = new Feed({ get: listApi(() => all) } as never, link as never, store, new Throughput());
    await feed.start();
    // 150 events of other users, then one of the key's own, whose update arrives live first.
    all = [row(200), ...Array.from({ length: 150 }, (_, n) => row(n + 5)).reverse(), ...all];
    live({ event: 'event.update', payload: { event_id: id(200), status: 'processed', version: 4, created_at: at(200) } });
    await vi.advanceTimersByTimeAsync(2000);
    expect(store.list()).toHaveLength(156);
    feed.stop();
  });

  it('goes on after a burst longer than one poll may page through, from where it stopped', async () => {
    let all = Array.from({ length: 5 }, (_, n) => row(n)).reverse();
    const api = { get: listApi(() => all) };
    const store = new EventStore(5000);
    const feed = new Feed(api as never, idleLink, store, new Throughput());
    await feed.start();
    // 2,500 events between two polls: more than the 1,000 one poll reads.
    all = [...Array.from({ length: 2500 }, (_, n) => row(n + 5)).reverse(), ...all];
    await vi.advanceTimersByTimeAsync(2000);
    expect(store.list().length).toBeLessThan(2505);
    await vi.advanceTimersByTimeAsync(6000);
    expect(store.list()).toHaveLength(2505);
    // Caught up: later polls read the newest page only.
    const reads = api.get.mock.calls.length;
    await vi.advanceTimersByTimeAsync(4000);
    expect(api.get.mock.calls.length - reads).toBe(2);
    feed.stop();
  });

  it('keeps refreshing unfinished rows while a filtered poll is refused', async () => {
    const events = new Map([[id(0), { id: id(0), status: 'processing', version: 3 }]]);
    const byIds: string[] = [];
    const api = {
      get: async (_path: string, opts: { query: { limit: number; cursor?: string; ids?: string; type?: string } }) => {
        if (opts.query.type) throw new Error('400 bad type');
        if (opts.query.ids) {
          byIds.push(opts.query.ids);
          return { data: [...events.values()], next_cursor: null };
        }
        // The newest page no longer holds event 0.
        return { data: [], next_cursor: null };
      },
    };
    const store = new EventStore();
    const feed = new Feed(api as never, idleLink, store, new Throughput());
    store.upsert({ id: id(0), status: 'processing', version: 3 });
    await feed.start();
    feed.pollQuery = { type: 'not valid' };
    events.set(id(0), { id: id(0), status: 'processed', version: 4 });
    await vi.advanceTimersByTimeAsync(2000);
    expect(byIds).toEqual([id(0)]);
    expect(store.get(id(0))?.status).toBe('processed');
    feed.stop();
  });

  it('reads again by id the unfinished rows that dropped off the newest page, until they finish', async () => {
    // Event 0 is processing; then 150 newer events push it off the newest page of 100.
    const events = new Map<string, { id: string; status: string; version: number }>();
    events.set(id(0), { id: id(0), status: 'processing', version: 3 });
    const newestFirst = () => [...events.values()].reverse();
    const byIds: string[][] = [];
    const api = {
      get: async (_path: string, opts: { query: { limit: number; cursor?: string; ids?: string } }) => {
        if (opts.query.ids) {
          const wanted = opts.query.ids.split(',');
          byIds.push(wanted);
          return { data: wanted.flatMap((w) => (events.has(w) ? [events.get(w)!] : [])), next_cursor: null };
        }
        const from = Number(opts.query.cursor ?? 0);
        const all = newestFirst();
        return { data: all.slice(from, from + opts.query.limit), next_cursor: from + opts.query.limit < all.length ? String(from + opts.query.limit) : null };
      },
    };
    const link = { onEvent: () => () => undefined, onState: () => () => undefined };
    const store = new EventStore();
    const feed = new Feed(api as never, link as never, store, new Throughput());
    await feed.start();
    for (let i = 1; i <= 150; i++) events.set(id(i), { id: id(i), status: 'processed', version: 4 });
    await vi.advanceTimersByTimeAsync(2000);
    expect(store.list()).toHaveLength(151);
    // This poll paged back to event 0 (the first row it knew): nothing to read again yet.
    expect(byIds).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2000);
    // The next one read the newest page only: event 0, still processing, is read again by id.
    expect(byIds.at(-1)).toEqual([id(0)]);
    expect(store.get(id(0))?.status).toBe('processing');

    events.set(id(0), { id: id(0), status: 'processed', version: 4 });
    await vi.advanceTimersByTimeAsync(2000);
    expect(store.get(id(0))?.status).toBe('processed');
    // Finished: no longer read again.
    const requests = byIds.length;
    await vi.advanceTimersByTimeAsync(4000);
    expect(byIds).toHaveLength(requests);
    feed.stop();
  });
});

describe('SDK link', () => {
  const connected = async () => {
    FakeSocket.reset();
    vi.stubGlobal('WebSocket', FakeSocket);
    const link = createSdkLink('ws://gateway.test/ws', 'tem_key');
    const states: LinkState[] = [];
    link.onState((s) => states.push(s));
    await flush();
    FakeSocket.last().handshake();
    await flush();
    return { link, states };
  };

  it('says unauthorized when the gateway closes with 4001 (a revoked key), so the console signs out', async () => {
    try {
      const { link, states } = await connected();
      expect(link.state).toBe('connected');
      FakeSocket.last().serverClose(4001, 'key revoked');
      await flush();
      expect(link.state).toBe('unauthorized');
      expect(states).not.toContain('closed');
      link.close();
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('says closed, not unauthorized, when the console closes it', async () => {
    try {
      const { link } = await connected();
      link.close();
      expect(link.state).toBe('closed');
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
