/**
 * Opening the PostgreSQL store migrates (every role does at start-up). A session the database
 * ends while that runs (pg_terminate_backend, a pooler recycling it) is not the database being
 * down: the start-up goes on, on a new connection, instead of exiting non-zero. A database that
 * refuses connections still fails the start at once. A read whose session is ended runs again on
 * a new connection.
 */
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { services } from '../helpers/services.js';

/** The migrations' advisory lock ("tem-migr" as hex, src/store/migrate.ts). */
const MIGRATION_LOCK = '8387229922923997042';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ends, on the server, the sessions of database `name` waiting on a lock of kind `waitEvent`, once one waits; how many. */
async function terminateWaiting(admin: postgres.Sql, name: string, waitEvent: 'advisory' | 'relation'): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const rows = await admin.unsafe<{ n: number }[]>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE datname = $1 AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND wait_event = $2`,
      [name, waitEvent],
    );
    if (rows[0]!.n > 0) return rows[0]!.n;
    await sleep(25);
  }
  return 0;
}

describe.skipIf(!services.postgres)('opening and reading the store while its session is terminated', () => {
  let db: TestDatabase | undefined;
  let admin: postgres.Sql | undefined;

  afterEach(async () => {
    await admin?.end({ timeout: 5 });
    admin = undefined;
    await db?.drop();
    db = undefined;
  });

  it('migrates on a new connection and opens', async () => {
    db = await createTestDatabase();
    admin = postgres(db.url, { max: 2, onnotice: () => {} });
    const name = new URL(db.url).pathname.slice(1);
    // Another process is migrating: the start-up waits for the lock, in a session of its own.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = admin.begin(async (tx) => {
      await tx.unsafe(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      locked();
      await released;
    });
    holder.catch(() => undefined);
    await isLocked;
    const opening = openStore({ databaseUrl: db.url });
    opening.catch(() => undefined);
    // Its session, waiting on the lock, is ended by the server.
    expect(await terminateWaiting(admin, name, 'advisory')).toBe(1);
    release();
    await holder;
    const store = await opening;
    try {
      await store.ping();
    } finally {
      await store.close();
    }
  });

  it('answers a read whose session the server ended while it ran, on another connection', async () => {
    db = await createTestDatabase();
    admin = postgres(db.url, { max: 2, onnotice: () => {} });
    const name = new URL(db.url).pathname.slice(1);
    const store = await openStore({ databaseUrl: db.url });
    try {
      // The read waits behind a lock held elsewhere; meanwhile the server ends its session.
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = admin.begin(async (tx) => {
        await tx.unsafe('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
        locked();
        await released;
      });
      holder.catch(() => undefined);
      await isLocked;
      const reading = store.listEvents({ limit: 10 });
      reading.catch(() => undefined);
      expect(await terminateWaiting(admin, name, 'relation')).toBe(1);
      // Read again on a new connection, which waits for the lock like the first did.
      await sleep(100);
      release();
      await holder;
      expect((await reading).events).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('still fails at once when the database refuses connections', async () => {
    const start = Date.now();
    await expect(openStore({ databaseUrl: 'postgres://postgres@127.0.0.1:1/nothing', connectTimeout: 2 })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(Date.now() - start).toBeLessThan(5_000);
  });
});
