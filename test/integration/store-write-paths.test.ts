/**
 * What the hot write paths cost PostgreSQL, checked on the schema and the plans.
 *
 * The claim must not cost more the longer the queue: PostgreSQL has to read the next ready jobs
 * straight from the index in claim order, never sort the whole backlog. Checked on the plan a
 * prepared statement settles on (the generic one), with a backlog of jobs sharing one run_at,
 * as a bulk ingest makes them.
 *
 * A status change must stay a heap-only (HOT) update of the event's row: no index of `events` may
 * cover a column the change writes, and pages keep room for the new version (migration 000005).
 * An index on `status` once made every claim and completion write an entry into every index.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { CLAIM_SQL } from '../../src/store/ops/claim.js';
import type { Store } from '../../src/store/types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { services } from '../helpers/services.js';
import { eventItems } from '../fixtures/worker-helpers.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Subplan Name'?: string;
  Plans?: PlanNode[];
}

function nodes(n: PlanNode): PlanNode[] {
  return [n, ...(n.Plans ?? []).flatMap(nodes)];
}

/** The columns claim, completion, failure, sweep and retry write on `events`. */
const CHANGED_BY_STATUS_CHANGES = ['status', 'attempts', 'version', 'updated_at', 'processed_at', 'last_error'];

describe.skipIf(!services.postgres)('write paths (PostgreSQL)', () => {
  let db: TestDatabase;
  let store: Store;
  let sql: postgres.Sql;

  beforeAll(async () => {
    db = await createTestDatabase();
    store = await openStore({ databaseUrl: db.url, poolMax: 2 });
    const now = new Date();
    for (let i = 0; i < 3; i++) await store.ingest(eventItems(1000, now), now);
    sql = postgres(db.url, { max: 1, onnotice: () => undefined });
  });

  afterAll(async () => {
    await sql?.end();
    await store?.close();
    await db?.drop();
  });

  it('reads only the batch from the ready index, without sorting the backlog', async () => {
    const plan = await sql.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL plan_cache_mode = force_generic_plan`);
      await tx.unsafe(`PREPARE claim_plan(text, timestamptz, int, text, timestamptz) AS ${CLAIM_SQL}`);
      const [row] = await tx.unsafe(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_plan('processing', now(), 32, 'w', now() + interval '30 s')`);
      await tx.unsafe('DEALLOCATE claim_plan');
      // Roll back the claim the EXPLAIN ANALYZE made.
      throw Object.assign(new Error('rollback'), { plan: (row as Record<string, [{ Plan: PlanNode }]>)['QUERY PLAN']![0].Plan });
    }).catch((e: { plan?: PlanNode }) => {
      if (!e.plan) throw e;
      return e.plan;
    });
    const all = nodes(plan);
    const jobScans = all.filter((n) => n['Relation Name'] === 'jobs' && n['Index Name'] === 'jobs_ready');
    expect(jobScans).toHaveLength(1);
    expect(jobScans[0]!['Actual Rows']).toBeLessThanOrEqual(32);
    // Picking the batch (the `picked` CTE) involves no sort.
    const picked = all.find((n) => n['Subplan Name'] === 'CTE picked');
    expect(picked).toBeDefined();
    expect(nodes(picked!).map((n) => n['Node Type'])).not.toContain('Sort');
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
