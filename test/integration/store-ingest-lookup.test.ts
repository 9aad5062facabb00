/**
 * An ingest batch is one statement; only when an idempotency key was already taken does a
 * second statement, after the commit, read the event that holds it. A failure of that read is
 * the duplicate items' alone: the batch's created events stand and are answered as created
 * (thrown for the whole batch, they were answered 503 — clients without a key then sent them
 * again — or retried item by item, inserting them a second time).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createError } from '../../src/core/errors.js';
import type { Db } from '../../src/store/db.js';
import { ingest } from '../../src/store/ops/ingest.js';
import { createTestStore, type StoreKind, type TestStore } from '../helpers/db.js';
import { services } from '../helpers/services.js';
import { eventItems } from '../fixtures/worker-helpers.js';

const kinds: StoreKind[] = services.postgres ? ['pglite', 'postgres'] : ['pglite'];

/** The store's own executor, with the read-back of existing keys failing as a lost connection. */
function lookupFails(db: Db): Db {
  return new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop !== 'query' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
      return (text: string, params?: readonly unknown[]) =>
        text.includes('LEFT JOIN jobs') ? Promise.reject(createError('STORE_UNAVAILABLE', 'The database is not reachable')) : target.query(text, params);
    },
  });
}

describe.each(kinds)('ingest read-back failure (%s)', (kind) => {
  let t: TestStore | undefined;

  afterEach(async () => {
    await t?.cleanup();
  });

  it('answers the created events as created and fails only the duplicates', async () => {
    t = await createTestStore(kind);
    const now = new Date();
    const [first] = eventItems(1, now).map((it) => ({ ...it, idempotencyKey: 'k1', requestHash: 'h1' }));
    await t.store.ingest([first!], now);

    const [fresh, dup] = eventItems(2, now);
    const batch = [fresh!, { ...dup!, idempotencyKey: 'k1', requestHash: 'h1' }];
    const out = await ingest(lookupFails(t.db), batch, now);
    expect(out.map((o) => o.outcome)).toEqual(['created', 'failed']);
    expect(out[1]).toMatchObject({ outcome: 'failed', error: { code: 'STORE_UNAVAILABLE' } });
    expect((await t.store.getEvent(fresh!.id))?.status).toBe('queued');
    // The duplicate wrote nothing: its retry replays the original.
    expect(await t.store.getEvent(dup!.id)).toBeNull();
    const again = await t.store.ingest([{ ...dup!, idempotencyKey: 'k1', requestHash: 'h1' }], now);
    expect(again[0]).toMatchObject({ outcome: 'replayed', event: { id: first!.id } });
  });
});
