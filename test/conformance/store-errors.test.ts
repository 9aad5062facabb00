/**
 * Store conformance, failures: driver errors map to the same TemError codes on both
 * implementations, an unreachable PostgreSQL answers STORE_UNAVAILABLE promptly and the store
 * recovers by itself, and concurrent migrators apply each migration once.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { createPostgresStore, createPgliteStore, mapDbError } from '../../src/store/index.js';
import { loadMigrations } from '../../src/store/migrate.js';
import { PostgresDb } from '../../src/store/postgres-db.js';
import { PG_ADMIN_URL, databaseUrl, services } from '../helpers/services.js';
import { createTestDatabase } from '../helpers/db.js';
import { ManualClock, itemFactory } from './store-fixtures.js';

function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      if (check()) return resolve();
      if (Date.now() - started > ms) return reject(new Error('timed out waiting'));
      setTimeout(tick, 20);
    };
    tick();
  });
}

describe('driver error mapping', () => {
  it.each([
    [{ code: 'ECONNREFUSED' }, 'STORE_UNAVAILABLE'],
    [{ code: 'CONNECT_TIMEOUT' }, 'STORE_UNAVAILABLE'],
    [{ code: 'CONNECTION_CLOSED' }, 'STORE_UNAVAILABLE'],
    [{ code: '08006' }, 'STORE_UNAVAILABLE'],
    [{ code: '57P01' }, 'STORE_UNAVAILABLE'],
    [{ code: '57014' }, 'STORE_UNAVAILABLE'],
    [{ code: '53300' }, 'STORE_UNAVAILABLE'],
    [{ code: '53100' }, 'STORE_UNAVAILABLE'],
    [{ code: '3D000' }, 'STORE_UNAVAILABLE'],
    [{ code: '28P01' }, 'STORE_UNAVAILABLE'],
    [{ code: '55000', message: 'database "x" is not currently accepting connections' }, 'STORE_UNAVAILABLE'],
    [{ code: '55000', message: 'currval of sequence "s" is not yet defined in this session' }, 'INTERNAL'],
    [Object.assign(new AggregateError([{ code: 'ECONNREFUSED' }]), {}), 'STORE_UNAVAILABLE'],
    [{ code: '23505' }, 'CONFLICT'],
    [{ code: '23503' }, 'BAD_REQUEST'],
    [{ code: '23514' }, 'BAD_REQUEST'],
    [{ code: '22P02' }, 'BAD_REQUEST'],
    [{ code: '42P01' }, 'INTERNAL'],
    [new Error('weird'), 'INTERNAL'],
  ])('%o → %s', (err, code) => {
    const mapped = mapDbError(err);
    expect(mapped.code).toBe(code);
    expect(mapped.cause).toBe(err);
  });
});

describe('PGlite store lifecycle', () => {
  it('migrates idempotently and rejects calls once closed', async () => {
    const store = await createPgliteStore();
    await store.migrate();
    await store.migrate();
    await store.ping();
    await store.close();
    await store.close();
    await expect(store.ping()).rejects.toMatchObject({ name: 'TemError', code: 'STORE_UNAVAILABLE' });
  });
});

/** A TCP proxy in front of PostgreSQL that a test can take down and bring back on the same port. */
class Proxy {
  private server: Server | null = null;
  private sockets = new Set<Socket>();
  port = 0;

  async start(): Promise<void> {
    const target = new URL(PG_ADMIN_URL);
    this.server = createServer((client) => {
      const upstream = connect({ host: target.hostname, port: Number(target.port || 5432) });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
    this.server = null;
  }
}

describe.skipIf(!services.postgres)('PostgreSQL availability', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('rejects promptly with STORE_UNAVAILABLE when nothing listens', async () => {
    const store = createPostgresStore('postgres://postgres@127.0.0.1:1/none', { poolMax: 1, connectTimeout: 2 });
    cleanups.push(() => store.close());
    const started = Date.now();
    await expect(store.ping()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
    await expect(store.getPrincipal('x')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    const clock = new ManualClock();
    await expect(store.ingest([itemFactory(clock)()], clock.now())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(store.migrate()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  // The driver as installed (scripts/patch-postgres.mjs): a new connection first reads the array
  // types, and one ended during that read used to reject unhandled, which ends a Node process.
  it('leaves no unhandled rejection when connections are ended while they open', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const unhandled: unknown[] = [];
    const count = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', count);
    cleanups.push(async () => void process.off('unhandledRejection', count));
    const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => undefined });
    cleanups.push(() => admin.end());
    const name = `tem-kill-${randomBytes(4).toString('hex')}`;
    // Ends every such backend over and over, so most are ended while their connection is set up.
    let killing = true;
    const killer = (async () => {
      while (killing) await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${name}`;
    })();
    let failed = 0;
    for (let i = 0; i < 50; i++) {
      const sql = postgres(db.url, { max: 1, onnotice: () => undefined, connection: { application_name: name } });
      await sql`SELECT 1`.catch(() => failed++);
      await sql.end({ timeout: 0 }).catch(() => undefined);
    }
    killing = false;
    await killer;
    await new Promise((r) => setTimeout(r, 100));
    // Most connections were ended: the queries waiting on them failed, and nothing else did.
    expect(failed).toBeGreaterThan(0);
    expect(unhandled).toEqual([]);
  });

  it('answers STORE_UNAVAILABLE while the server is away and works again once it is back', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const proxy = new Proxy();
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const url = new URL(db.url);
    url.port = String(proxy.port);
    const store = createPostgresStore(url.toString(), { poolMax: 2, connectTimeout: 2 });
    cleanups.push(() => store.close());
    const clock = new ManualClock();
    const item = itemFactory(clock);

    let woken = 0;
    await store.onOutbox(() => woken++);
    await store.ingest([item()], clock.now());
    await waitFor(() => woken === 1);
    await proxy.stop();
    await expect(store.ingest([item()], clock.now())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(store.ping()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    // Calls keep failing fast for as long as it is away: none waits out the 10 s deadline (the
    // driver's reconnect backoff, uncapped, grew past it after about a second), and a burst does
    // not queue behind the reconnect delay: a failed connection attempt fails every call waiting
    // for a connection, not only the one it was opened for (docs/decisions/0006).
    const waits: Promise<number>[] = [];
    for (let burst = 0; burst < 3; burst++) {
      const started = Date.now();
      for (let i = 0; i < 25; i++) {
        waits.push(store.getPrincipal('x').then(() => -1, (err: { code?: string }) => (err.code === 'STORE_UNAVAILABLE' ? Date.now() - started : -2)));
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    for (const ms of await Promise.all(waits)) {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(1000);
    }
    await proxy.start();
    await store.ping();
    const [out] = await store.ingest([item()], clock.now());
    expect(out?.outcome).toBe('created');
    expect((await store.listEvents({ limit: 10 })).events).toHaveLength(2);
    // The listener came back by itself too: a wake-up for what it may have missed, then live ones.
    await waitFor(() => woken >= 2, 15_000);
    const before = woken;
    await store.ingest([item()], clock.now());
    await waitFor(() => woken > before);
  });

  it('answers STORE_UNAVAILABLE while the database refuses connections or is gone, and works again once allowed', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const name = new URL(db.url).pathname.slice(1);
    const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => undefined });
    cleanups.push(() => admin.end());
    const store = createPostgresStore(db.url, { poolMax: 2, connectTimeout: 2 });
    cleanups.push(() => store.close());
    await store.ping();
    // An operator closes the database to connections and ends the open ones (55000 on connect).
    await admin.unsafe(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS false`);
    cleanups.push(async () => void (await admin.unsafe(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`).catch(() => undefined)));
    await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name}`;
    await expect(store.getPrincipal('x')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
    await expect(store.listEvents({ limit: 1 })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await admin.unsafe(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
    // Back by itself: a connection ended above may still fail one call, none after it.
    await store.ping().catch(() => store.ping());
    // The database dropped under the store (3D000 on connect).
    await db.drop();
    await expect(store.getPrincipal('x')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('cancels a statement slower than the query timeout on the server, failing that call alone', async () => {
    const db = await createTestDatabase();
    const pg = new PostgresDb({ url: db.url, max: 2, queryTimeoutMs: 1000 });
    cleanups.push(async () => {
      await pg.close();
      await db.drop();
    });
    await pg.query('SELECT 1');
    // A transaction in flight on the pool while another statement runs past the timeout: it
    // used to fail too (CONNECTION_DESTROYED), the whole pool replaced under it.
    const slow = pg.query('SELECT pg_sleep(1.5)').then(
      () => null,
      (e: unknown) => e as { code?: string },
    );
    const alongside = pg.tx(async (tx) => {
      for (let i = 0; i < 4; i++) await tx.query('SELECT pg_sleep(0.3)');
      return 'committed';
    });
    expect((await slow)?.code).toBe('57014');
    expect(mapDbError(await slow)).toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
    await expect(alongside).resolves.toBe('committed');
    await expect(pg.query<{ ok: number }>('SELECT 1 AS ok')).resolves.toEqual([{ ok: 1 }]);
  });

  it('applies each migration once when five processes migrate a fresh database at once', async () => {
    const name = `tem_mig_${randomBytes(4).toString('hex')}`;
    const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
    cleanups.push(async () => {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    });
    await admin.unsafe(`CREATE DATABASE "${name}"`);
    const stores = Array.from({ length: 5 }, () => createPostgresStore(databaseUrl(name), { poolMax: 1 }));
    cleanups.push(async () => {
      await Promise.all(stores.map((s) => s.close()));
    });
    await Promise.all(stores.map((s) => s.migrate()));
    const check = postgres(databaseUrl(name), { max: 1, onnotice: () => {} });
    try {
      const rows = await check.unsafe<{ id: number }[]>('SELECT id FROM tem_migrations ORDER BY id');
      expect(rows.map((r) => r.id)).toEqual(loadMigrations().map((m) => m.id));
      const roles = await check.unsafe('SELECT name FROM roles');
      expect(roles).toHaveLength(3);
    } finally {
      await check.end();
    }
    expect((await stores[0]!.listRoles()).map((r) => r.name)).toEqual(['admin', 'service', 'user']);
  });
});

