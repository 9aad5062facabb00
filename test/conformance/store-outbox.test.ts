/**
 * Store conformance, outbox and notifications: one suite run against PGlite and PostgreSQL.
 */
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/types.js';
import type { OutboxMessage } from '../../src/core/types.js';
import { KINDS, ManualClock, itemFactory, ref, useSuiteStore } from './store-fixtures.js';
import { eventOf, ingestEvents, sleep } from '../fixtures/worker-helpers.js';
import { HELD_SCAN_WINDOW } from '../../src/store/ops/outbox.js';

function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      if (check()) return resolve();
      if (Date.now() - started > ms) return reject(new Error('timed out waiting'));
      setTimeout(tick, 10);
    };
    tick();
  });
}

describe.each(KINDS)('Store outbox ($kind)', ({ kind, skip }) => {
  let store: Store;
  const clock = new ManualClock();
  const item = itemFactory(clock);

  let url: string | undefined;
  useSuiteStore(kind, skip, (s, u) => {
    store = s;
    url = u;
  });

  describe.skipIf(skip)('relay', () => {
    it('publishes the oldest rows in id order and deletes them', async () => {
      await store.ingest([item(), item(), item()], clock.now());
      const seen: OutboxMessage[][] = [];
      // One row per ingested event, standing for its accepted and its queued update.
      expect(await store.relayOutbox(2, async (m) => void seen.push(m))).toBe(4);
      expect(seen).toHaveLength(1);
      const ids = seen[0]!.map((m) => m.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(await store.peekOutbox(10)).toHaveLength(2);
      expect(await store.relayOutbox(10, async (m) => void seen.push(m))).toBe(2);
      expect(await store.relayOutbox(10, async () => {})).toBe(0);
    });

    it('sends an ingested event\'s accepted update before its queued one, one version apart', async () => {
      const [out] = await store.ingest([item()], clock.now());
      const seen: OutboxMessage[] = [];
      await store.relayOutbox(10, async (m) => void seen.push(...m));
      expect(seen.map((m) => [m.channel, m.event, m.payload.status, m.payload.version])).toEqual([
        [`user:${eventOf(out!).userId}`, 'event.update', 'accepted', 1],
        [`user:${eventOf(out!).userId}`, 'event.update', 'queued', 2],
      ]);
      expect(seen[0]!.payload).toEqual({ ...seen[1]!.payload, status: 'accepted', version: 1 });
      expect(seen[0]!.eventId).toBe(eventOf(out!).id);
    });

    it('leaves the rows of skipped channels where they are and takes the others in id order', async () => {
      await store.ingest([item({ userId: 'u_a' }), item({ userId: 'u_b' }), item({ userId: 'u_a' }), item({ userId: 'u_c' })], clock.now());
      const seen: OutboxMessage[] = [];
      expect(await store.relayOutbox(10, async (m) => void seen.push(...m), ['user:u_a'])).toBe(4);
      expect(seen.map((m) => m.channel)).toEqual(['user:u_b', 'user:u_b', 'user:u_c', 'user:u_c']);
      const ids = seen.map((m) => m.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect((await store.peekOutbox(10)).map((m) => m.channel)).toEqual(Array(4).fill('user:u_a'));
      expect(await store.relayOutbox(10, async () => {}, ['user:u_a', 'user:u_b'])).toBe(0);
      expect(await store.relayOutbox(10, async () => {})).toBe(4);
    });

    it('gets the other channels past any number of a skipped channel\'s rows, which later go out in order', async () => {
      const heldIds = await ingestEvents(store, HELD_SCAN_WINDOW + 904, clock.now(), { userId: 'u_a' });
      const otherIds = (await store.ingest([item({ userId: 'u_b' }), item({ userId: 'u_c' })], clock.now())).map((o) => eventOf(o).id);
      const seen: OutboxMessage[] = [];
      const parked: number[] = [];
      // The first round parks a window of the held rows; the next one reaches the others.
      for (let round = 0; round < 2; round++) {
        await store.relayOutbox(10, async (m) => void seen.push(...m), ['user:u_a'], (n) => parked.push(n));
      }
      expect(parked).toEqual([HELD_SCAN_WINDOW, 904]);
      expect(seen.map((m) => m.eventId)).toEqual(otherIds.flatMap((id) => [id, id]));
      expect((await store.peekOutbox(1))[0]!.eventId).toBe(heldIds[0]);
      // A row of the held channel written now comes behind its parked rows, also for a relay
      // that does not know the channel is held (another process, or this one restarted).
      heldIds.push(eventOf((await store.ingest([item({ userId: 'u_a' })], clock.now()))[0]!).id);
      const later: OutboxMessage[] = [];
      while ((await store.relayOutbox(1000, async (m) => void later.push(...m))) > 0);
      expect(later.map((m) => m.eventId)).toEqual(heldIds.flatMap((id) => [id, id]));
      const ids = later.map((m) => m.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(await store.peekOutbox(10)).toEqual([]);
    });

    it('takes a channel\'s parked rows before its newer ones, a batch at a time', async () => {
      const first = (await store.ingest([item({ userId: 'u_a' }), item({ userId: 'u_a' })], clock.now())).map((o) => eventOf(o).id);
      expect(await store.relayOutbox(10, async () => {}, ['user:u_a'])).toBe(0);
      const next = (await store.ingest([item({ userId: 'u_a' })], clock.now())).map((o) => eventOf(o).id);
      const seen: string[] = [];
      // One row a round: the newest row is at the head of the outbox, the oldest parked.
      while ((await store.relayOutbox(1, async (m) => void seen.push(...m.map((x) => x.eventId)))) > 0);
      expect(seen).toEqual([...first, ...next].flatMap((id) => [id, id]));
    });

    it('puts back, ids and all, the rows of the channels publish says did not go out', async () => {
      await store.ingest([item({ userId: 'u_a' }), item({ userId: 'u_b' }), item({ userId: 'u_a' })], clock.now());
      // A processed event with a channel: a delivery row, payload and all, on channel live:a.
      await store.ingest([item({ userId: 'u_b', channel: 'live:a' })], clock.now());
      const [job] = await store.claim({ queue: 'processing', workerId: 'w', limit: 10, leaseMs: 60_000, now: clock.now() }).then((jobs) => jobs.filter((j) => j.event.channel === 'live:a'));
      await store.complete(ref(job!), { processor: 'p', result: null }, clock.now());
      const before = await store.peekOutbox(20);
      const seen: OutboxMessage[] = [];
      const held = new Set(['user:u_a', 'live:a']);
      const kept = before.filter((m) => held.has(m.channel));
      expect(kept.some((m) => m.channel === 'live:a' && m.event !== 'event.update')).toBe(true);
      expect(await store.relayOutbox(20, async (m) => {
        seen.push(...m);
        return held;
      })).toBe(before.length - kept.length);
      expect(seen).toHaveLength(before.length);
      // Every column as it was: the messages built from the rows put back are the same.
      expect(await store.peekOutbox(20)).toEqual(kept);
      // A row written after them still comes behind them (parked behind them by the first round).
      await store.ingest([item({ userId: 'u_a' })], clock.now());
      const again: OutboxMessage[] = [];
      let sent = 0;
      for (let n = 1; n > 0; sent += n) n = await store.relayOutbox(20, async (m) => void again.push(...m));
      expect(sent).toBe(kept.length + 2);
      const ids = again.map((m) => m.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(again.slice(0, kept.length)).toEqual(kept);
    });

    it('keeps the rows when publish throws, and rethrows the publish error', async () => {
      await store.ingest([item()], clock.now());
      const boom = new Error('bus down');
      await expect(store.relayOutbox(10, async () => Promise.reject(boom))).rejects.toBe(boom);
      expect(await store.peekOutbox(10)).toHaveLength(2);
      expect(await store.relayOutbox(10, async () => {})).toBe(2);
    });

    // PostgreSQL only: PGlite runs in this process, there is no connection to lose.
    if (kind === 'postgres') {
      it('fails the round and keeps the rows when its connection dies before the commit', async () => {
        await store.ingest([item()], clock.now());
        const admin = postgres(url!, { max: 1, onnotice: () => undefined });
        try {
          const round = store.relayOutbox(10, async () => {
            // The relay's connection sits idle in its transaction while it publishes.
            await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND state = 'idle in transaction' AND pid <> pg_backend_pid()`;
          });
          await expect(round).rejects.toBeDefined();
        } finally {
          await admin.end();
        }
        expect(await store.peekOutbox(10)).toHaveLength(2);
        // As the relay does: retry after a pause (the ended backend lets go of the relay lock only
        // once it has exited, and the driver may report the ended connection once more first).
        let relayed = 0;
        for (let attempt = 0; attempt < 40 && relayed === 0; attempt++) {
          await sleep(50);
          relayed = await store.relayOutbox(10, async () => undefined).catch(() => 0);
        }
        expect(relayed).toBe(2);
        expect(await store.peekOutbox(10)).toEqual([]);
      });
    }

    it('lets only one of two concurrent relays publish', async () => {
      await store.ingest([item()], clock.now());
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let entered = false;
      const first = store.relayOutbox(10, async () => {
        entered = true;
        await gate;
      });
      await waitFor(() => entered);
      const second = store.relayOutbox(10, async () => {
        throw new Error('must not publish');
      });
      // PGlite serialises the second behind the first (it then finds nothing); PostgreSQL
      // answers at once because the relay lock is taken. Either way exactly one publishes.
      if (kind === 'postgres') expect(await second).toBe(0);
      release();
      expect(await first).toBe(2);
      expect(await second).toBe(0);
    });
  });

  describe.skipIf(skip)('notifications', () => {
    it('wakes listeners of the jobs queue and of the outbox after commit, until unlistened', async () => {
      let jobs = 0;
      let outbox = 0;
      const stopJobs = await store.onJobsAvailable('processing', () => jobs++);
      const stopOutbox = await store.onOutbox(() => outbox++);
      await store.ingest([item()], clock.now());
      await waitFor(() => jobs > 0 && outbox > 0);
      await stopJobs();
      await stopOutbox();
      const before = { jobs, outbox };
      await store.ingest([item()], clock.now());
      await store.ping();
      await new Promise((r) => setTimeout(r, 100));
      expect({ jobs, outbox }).toEqual(before);
    });

    it('carries auth change details', async () => {
      const got: { principalId?: string; keyId?: string }[] = [];
      const stop = await store.onAuthChanged((d) => got.push(d));
      await store.notifyAuthChanged({ keyId: 'key_1' });
      await store.notifyAuthChanged({ principalId: 'u_1' });
      await waitFor(() => got.length === 2);
      expect(got).toEqual([{ keyId: 'key_1' }, { principalId: 'u_1' }]);
      await stop();
    });
  });
});
