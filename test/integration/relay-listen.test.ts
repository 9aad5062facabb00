/**
 * The outbox relay's subscription to notifications: one that fails at start (the database
 * blipped) is tried again every round, so the relay is woken by notifications once the database
 * answers, instead of waiting for its backstop poll for the rest of its life.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/types.js';
import { systemClock } from '../../src/core/clock.js';
import { createError } from '../../src/core/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { silentLogger } from '../../src/observability/logger.js';
import { OutboxRelay } from '../../src/outbox/index.js';
import type { Store } from '../../src/store/types.js';
import { createTestStore, type StoreKind, type TestStore } from '../helpers/db.js';
import { services } from '../helpers/services.js';
import { ingestEvents, waitFor } from '../fixtures/worker-helpers.js';

const kinds: StoreKind[] = services.postgres ? ['pglite', 'postgres'] : ['pglite'];

describe.each(kinds)('outbox relay subscription (%s)', (kind) => {
  let t: TestStore | undefined;
  let relay: OutboxRelay | undefined;

  afterEach(async () => {
    await relay?.stop();
    await t?.cleanup();
  });

  it('subscribes again after a failed first attempt and is woken by notifications, not the poll', async () => {
    t = await createTestStore(kind);
    const real = t.store;
    let refusals = 1;
    const store: Pick<Store, 'relayOutbox' | 'onOutbox'> = {
      relayOutbox: (limit, publish) => real.relayOutbox(limit, publish),
      onOutbox: (cb) => (refusals-- > 0 ? Promise.reject(createError('STORE_UNAVAILABLE', 'The database is not reachable')) : real.onOutbox(cb)),
    };
    const published: BusMessage[] = [];
    const bus: Pick<Bus, 'publishMany' | 'reachable'> = {
      publishMany: async (messages) => {
        published.push(...messages);
        return [];
      },
      reachable: async (channels) => new Set(channels),
    };
    // A backstop poll far beyond the test: only a notification can deliver in time.
    relay = new OutboxRelay({ store, bus, logger: silentLogger(), metrics: createMetrics(), clock: systemClock, pollIntervalMs: 60_000 });
    await relay.start();
    await new Promise((r) => setTimeout(r, 200));
    const [id] = await ingestEvents(real, 1, new Date());
    await waitFor('the update published', () => published.some((m) => m.eventId === id), 5000);
    expect(refusals).toBeLessThan(0);
  });
});
