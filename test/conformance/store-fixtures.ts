/**
 * Shared by the store conformance suites: the implementations to run against and a builder of
 * ingest items on a ManualClock (ids are UUIDv7 of the clock, so advancing it orders them).
 */
import { ManualClock } from '../../src/core/clock.js';
import { uuidv7 } from '../../src/core/ids.js';
import type { IngestItem, JobRef, ClaimedJob } from '../../src/store/types.js';
import { services } from '../helpers/services.js';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { createTestStore, type StoreKind, type TestStore } from '../helpers/db.js';
import type { Store } from '../../src/store/types.js';

export const KINDS: { kind: StoreKind; skip: boolean }[] = [
  { kind: 'pglite', skip: false },
  { kind: 'postgres', skip: !services.postgres },
];

export function itemFactory(clock: ManualClock) {
  return (over: Partial<IngestItem> = {}): IngestItem => {
    clock.advance(1);
    return {
      id: uuidv7(clock.nowMs()),
      type: 'payment.success',
      payload: { amount: 42, currency: 'EUR' },
      producerId: 'payments',
      userId: 'u_1',
      channel: null,
      idempotencyKey: null,
      requestHash: null,
      occurredAt: clock.now(),
      maxAttempts: 3,
      ...over,
    };
  };
}

export function ref(job: ClaimedJob): JobRef {
  return { eventId: job.event.id, leaseToken: job.leaseToken };
}

/**
 * The suite hooks every store suite needs: one store for the suite (`onReady` receives it),
 * emptied back to the migrated state before each test (then `onReset`), dropped at the end.
 */
/** onReady also gets the database URL on PostgreSQL (for a second connection, as another process would open). */
export function useSuiteStore(kind: StoreKind, skip: boolean, onReady: (store: Store, url?: string, suite?: TestStore) => void, onReset?: () => void): void {
  let t: TestStore | undefined;
  beforeAll(async () => {
    if (skip) return;
    t = await createTestStore(kind);
    onReady(t.store, t.url, t);
  });
  afterAll(async () => {
    await t?.cleanup();
  });
  beforeEach(async () => {
    if (skip) return;
    await t!.reset();
    onReset?.();
  });
}

export { ManualClock };
