/**
 * A status change must stay a heap-only (HOT) update of the event's row: no index of `events` may
 * cover a column the change writes, and pages keep room for the new version (migration 000005).
 * An index on `status` once made every claim and completion write an entry into every index.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { services } from '../helpers/services.js';

/** The columns claim, completion, failure, sweep and retry write on `events`. */
const CHANGED_BY_STATUS_CHANGES = ['status', 'attempts', 'version', 'updated_at', 'processed_at', 'last_error'];

describe.skipIf(!services.postgres)('event status changes are HOT updates (PostgreSQL)', () => {
  let db: TestDatabase;
  let store: Store;
  let sql: postgres.Sql;

  beforeAll(async () => {
    db = await createTestDatabase();
    store = await openStore({ databaseUrl: db.url, poolMax: 2 });
    sql = postgres(db.url, { max: 1, onnotice: () => undefined });
  });

  afterAll(async () => {
    await sql?.end();
    await store?.close();
    await db?.drop();
  });

  it('has no index on events over a column that a status change writes', async () => {
    const rows = await sql<{ def: string }[]>`
      SELECT pg_get_indexdef(x.indexrelid) AS def FROM pg_index x WHERE x.indrelid = 'events'::regclass`;
    expect(rows.length).toBeGreaterThan(0);
    for (const { def } of rows) {
      for (const column of CHANGED_BY_STATUS_CHANGES) expect(def, def).not.toMatch(new RegExp(`\\b${column}\\b`));
    }
  });

  it('leaves room on each page of events for the next version of its rows', async () => {
    const [row] = await sql<{ options: string[] | null }[]>`SELECT reloptions AS options FROM pg_class WHERE oid = 'events'::regclass`;
    const fillfactor = Number((row!.options ?? []).find((o) => o.startsWith('fillfactor='))?.split('=')[1] ?? 100);
    expect(fillfactor).toBeLessThan(100);
  });
});
