/**
 * A maintenance process started without REDIS_URL must not relay the outbox into its own
 * in-process bus, where no gateway would ever see the notifications: it runs its sweeps, says
 * the relay is off, and leaves the outbox rows for a process that can deliver them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { eventItems, sleep } from '../fixtures/worker-helpers.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { killAll, spawnTem, type TemProcess } from '../helpers/processes.js';
import { services } from '../helpers/services.js';

describe.skipIf(!services.postgres)('maintenance without Redis', () => {
  let db: TestDatabase;
  let store: Store;
  let maintenance: TemProcess | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    store = await openStore({ databaseUrl: db.url, poolMax: 2 });
  });

  afterAll(async () => {
    await maintenance?.stop();
    killAll();
    await store?.close();
    await db?.drop();
  });

  it('keeps the outbox instead of relaying it to nowhere, and says so', async () => {
    const now = new Date();
    await store.ingest(eventItems(3, now), now);
    expect(await store.peekOutbox(100)).toHaveLength(6);
    maintenance = spawnTem(['worker', '--queue', 'maintenance'], { DATABASE_URL: db.url, REDIS_URL: undefined, TEM_ADMIN_KEY: undefined });
    await maintenance.waitForLog('listening', 90_000);
    const warning = await maintenance.waitForLog('REDIS_URL is not set: the outbox relay does not run here; notifications wait in the outbox', 10_000);
    expect(warning.level).toBe(40);
    // Longer than the relay's backstop poll (1 s) and a notification would take.
    await sleep(2500);
    expect(await store.peekOutbox(100)).toHaveLength(6);
  }, 120_000);
});
