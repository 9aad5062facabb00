/**
 * Crash recovery with real processes on real PostgreSQL: three worker processes (each with a
 * maintenance loop, lease 1 s, sweep 0.2 s) drain a few thousand events while one of them is
 * SIGKILLed mid-batch again and again. Nothing may be lost and no effect may be recorded twice.
 * The processor takes ~200 ms so the queue outlasts the restarts (≤ 240 jobs/s for three
 * workers of 16): about ten seconds on an idle machine; the generous timeout is for a busy one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { services } from '../helpers/services.js';
import { ingestEvents, waitFor } from '../fixtures/worker-helpers.js';

const fixture = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'worker-process.ts');
const EVENTS = 2000;
const KILLS = 3;

interface Child {
  proc: ChildProcess;
  workerId: string;
  exited: Promise<void>;
}

describe.skipIf(!services.postgres)('worker processes killed with SIGKILL (postgres)', () => {
  let t: TestStore | undefined;
  let sql: postgres.Sql | undefined;
  const children = new Set<Child>();

  afterAll(async () => {
    for (const c of children) c.proc.kill('SIGKILL');
    await Promise.all([...children].map((c) => c.exited));
    await sql?.end({ timeout: 5 });
    await t?.cleanup();
  });

  function startWorker(url: string): Promise<Child> {
    const proc = spawn(process.execPath, ['--import', 'tsx', fixture], {
      env: {
        ...process.env,
        DATABASE_URL: url,
        TEM_CONFIG: '',
        TEM_LOG_LEVEL: 'error',
        TEM_LEASE_MS: '1000',
        TEM_SWEEP_INTERVAL_MS: '200',
        TEM_POLL_INTERVAL_MS: '500',
        TEM_WORKER_CONCURRENCY: '16',
        TEM_WORKER_BATCH_SIZE: '16',
        TEM_SHUTDOWN_TIMEOUT_MS: '2000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child: Child = {
      proc,
      workerId: `crash-${proc.pid}`,
      exited: new Promise((resolve) => proc.once('exit', () => resolve())),
    };
    children.add(child);
    void child.exited.then(() => children.delete(child));
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(`ready ${child.workerId}`)) resolve(child);
      });
      proc.once('exit', (code) => reject(new Error(`worker process exited early (${code}): ${stderr.slice(0, 2000)}`)));
    });
  }

  async function count(query: postgres.PendingQuery<{ n: number }[]>): Promise<number> {
    const [row] = await query;
    return row?.n ?? -1;
  }

  it('every event ends processed or failed, with exactly one effect per processed event', async () => {
    t = await createTestStore('postgres');
    const url = t.url!;
    const db = (sql = postgres(url, { max: 1, onnotice: () => {} }));
    await ingestEvents(t.store, EVENTS, new Date(), { type: 'crash.test', maxAttempts: 5 });

    const workers = await Promise.all([startWorker(url), startWorker(url), startWorker(url)]);
    const killed: { workerId: string; leased: number }[] = [];
    for (let k = 0; k < KILLS; k++) {
      const victim = workers[0]!;
      // Mid-batch: only once the victim holds leases on claimed jobs.
      await waitFor('the victim holding leases', async () => (await count(db`SELECT count(*)::int AS n FROM jobs WHERE locked_by = ${victim.workerId}`)) > 0, 20_000, 50);
      victim.proc.kill('SIGKILL');
      await victim.exited;
      killed.push({ workerId: victim.workerId, leased: await count(db`SELECT count(*)::int AS n FROM jobs WHERE locked_by = ${victim.workerId}`) });
      workers[0] = await startWorker(url);
    }

    await waitFor('the queue drained', async () => (await count(db`SELECT count(*)::int AS n FROM jobs`)) === 0, 45_000, 200);

    const byStatus = Object.fromEntries(
      (await db<{ status: string; n: number }[]>`SELECT status, count(*)::int AS n FROM events GROUP BY status`).map((r) => [r.status, r.n]),
    );
    const processed = byStatus.processed ?? 0;
    const failed = byStatus.failed ?? 0;
    expect(processed + failed).toBe(EVENTS);
    expect(Object.keys(byStatus).filter((s) => s !== 'processed' && s !== 'failed')).toEqual([]);
    // At most KILLS lost attempts per event, fewer than its five: none may end failed.
    expect(failed).toBe(0);

    const [effects] = await db<{ rows: number; events: number }[]>`
      SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS events FROM processed_effects`;
    expect(effects).toEqual({ rows: processed, events: processed });
    expect(
      await count(db`SELECT count(*)::int AS n FROM events e WHERE e.status = 'processed'
        AND NOT EXISTS (SELECT 1 FROM processed_effects p WHERE p.event_id = e.id)`),
    ).toBe(0);

    // The kills did interrupt work: the victims' jobs were swept and run again.
    expect(killed.every((k) => k.leased > 0)).toBe(true);
    const swept = await count(db`SELECT count(DISTINCT event_id)::int AS n FROM event_history WHERE error = 'lease expired'`);
    expect(swept).toBeGreaterThanOrEqual(killed.reduce((a, k) => a + k.leased, 0));
    expect(await count(db`SELECT count(*)::int AS n FROM events WHERE attempts > 1`)).toBeGreaterThanOrEqual(swept);

    // The survivors stop gracefully on SIGTERM.
    const codes = await Promise.all(
      workers.map((w) => {
        const code = new Promise<number | null>((resolve) => w.proc.once('exit', (c) => resolve(c)));
        w.proc.kill('SIGTERM');
        return code;
      }),
    );
    expect(codes).toEqual([0, 0, 0]);
  }, 90_000);
});
