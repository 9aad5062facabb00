/**
 * PostgreSQL goes away for a few seconds under the distributed roles, while clients keep
 * ingesting. `tem api` and `tem worker` reach the real PostgreSQL through a TCP proxy this test
 * cuts (the shared server itself keeps running). Clients must get 503 — never 500 or a hang —,
 * nothing answered 202 may be lost, and both processes recover without a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { generateApiKey } from '../../src/auth/keys.js';
import { services } from '../helpers/services.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { killAll, spawnTem, type TemProcess } from '../helpers/processes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!services.postgres)('distributed roles during a PostgreSQL outage', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let api: TemProcess;
  let worker: TemProcess;
  let maintenance: TemProcess;
  let url: string;
  const adminKey = generateApiKey().key;

  beforeAll(async () => {
    db = await createTestDatabase();
    proxy = TcpProxy.forUrl(db.url, 5432);
    await proxy.start();
    const env = {
      DATABASE_URL: proxy.url(db.url),
      REDIS_URL: undefined,
      TEM_ADMIN_KEY: adminKey,
      TEM_HTTP_PORT: '0',
      TEM_INTERNAL_PORT: '0',
      TEM_RATE_LIMIT_POINTS: '0',
      TEM_LEASE_MS: '2000',
      TEM_SWEEP_INTERVAL_MS: '200',
    };
    api = spawnTem(['api'], env);
    worker = spawnTem(['worker'], env);
    // Maintenance talks to PostgreSQL directly: recovery of the others must not depend on it.
    maintenance = spawnTem(['worker', '--queue', 'maintenance'], { ...env, DATABASE_URL: db.url });
    url = String((await api.waitForLog('listening', 90_000)).url);
    await worker.waitForLog('listening', 90_000);
    await maintenance.waitForLog('listening', 90_000);
  }, 180_000);

  afterAll(async () => {
    if (process.env.DEBUG_OUTAGE) (await import('node:fs')).writeFileSync('/tmp/api-outage.log', api?.output() ?? '');
    await Promise.all([api, worker, maintenance].map((p) => p?.stop()));
    killAll();
    await proxy?.stop();
    await db?.drop();
  });

  it('answers 503 while the database is unreachable, loses nothing acknowledged, and recovers', async () => {
    const accepted = new Set<string>();
    const statuses = new Map<number, number>();
    let stop = false;
    let seq = 0;

    async function client(): Promise<void> {
      while (!stop) {
        const n = ++seq;
        try {
          const res = await fetch(`${url}/api/events`, {
            method: 'POST',
            headers: { 'x-api-key': adminKey, 'content-type': 'application/json', 'idempotency-key': `k-${n}` },
            body: JSON.stringify({ type: 'outage.test', payload: { n } }),
            signal: AbortSignal.timeout(15_000),
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const body = (await res.json()) as { event_id?: string; detail?: string };
          if (res.status === 202) accepted.add(body.event_id!);
          if (res.status === 503) expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
        } catch (err) {
          statuses.set(-1, (statuses.get(-1) ?? 0) + 1);
          throw err;
        }
        await sleep(5);
      }
    }

    const clients = Array.from({ length: 8 }, () => client());
    await sleep(1500);
    const beforeCut = accepted.size;
    proxy.cut();
    await sleep(4000);
    const health = await fetch(`${url}/api/v1/health`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { database: string }).database).not.toBe('ok');
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    const duringCut = accepted.size;
    proxy.restore();

    // The API recovers by itself: 202s again within a few seconds.
    const deadline = Date.now() + 20_000;
    while (accepted.size <= duringCut + 20 && Date.now() < deadline) await sleep(100);
    stop = true;
    await Promise.all(clients);

    expect(beforeCut).toBeGreaterThan(0);
    expect(accepted.size).toBeGreaterThan(duringCut + 20);
    expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(500) ?? 0).toBe(0);
    expect(statuses.get(-1) ?? 0).toBe(0);
    expect([...statuses.keys()].every((s) => s === 202 || s === 503)).toBe(true);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    // Every acknowledged event is stored and the worker, which lost its connection too,
    // processes all of them without a restart.
    const sql = postgres(db.url, { max: 1 });
    try {
      let left = Infinity;
      const until = Date.now() + 60_000;
      while (left > 0 && Date.now() < until) {
        const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM events WHERE status NOT IN ('processed', 'failed')`;
        left = row!.n;
        if (left > 0) await sleep(250);
      }
      expect(left).toBe(0);
      const rows = await sql<{ id: string; status: string }[]>`SELECT id::text, status FROM events WHERE id = ANY(${[...accepted]}::uuid[])`;
      expect(rows).toHaveLength(accepted.size);
      expect(rows.every((r) => r.status === 'processed')).toBe(true);
      const [dupes] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM (SELECT event_id FROM processed_effects GROUP BY event_id HAVING count(*) > 1) d`;
      expect(dupes!.n).toBe(0);
    } finally {
      await sql.end();
    }
    expect(api.proc.exitCode).toBeNull();
    expect(worker.proc.exitCode).toBeNull();
  }, 120_000);
});
