/**
 * The embedded database on a disk that is almost full: PGlite would hang on the full disk, so
 * the store stops taking statements first. Requests get 503 naming the cause, /readyz says it,
 * nothing acknowledged is lost, and once space is freed everything resumes by itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, SqlStore } from '../../src/store/index.js';
import { DiskGuard } from '../../src/store/disk-guard.js';
import { PgliteDb } from '../../src/store/pglite-db.js';
import { createTestApi, type TestApi } from '../helpers/api.js';

const MiB = 1024 * 1024;

describe('embedded database with its disk almost full', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tem-disk-'));
  const free = { bytes: 1024 * MiB };
  const guard = new DiskGuard({ dir, minFreeBytes: 128 * MiB, statfs: async () => ({ bavail: free.bytes / 1024, bsize: 1024 }) });
  let store: SqlStore;
  let api: TestApi;

  beforeAll(async () => {
    store = new SqlStore(await PgliteDb.open(dir, guard));
    await store.migrate();
    api = await createTestApi({ store });
  });
  afterAll(async () => {
    await api?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 naming the disk while it is low, keeps what it acknowledged, and resumes once space is freed', async () => {
    const svc = await api.createPrincipal({ id: 'billing', kind: 'service' });
    const before = await api.request<{ event_id: string }>('POST', '/api/events', { key: svc.key, body: { type: 'payment.success', payload: { n: 1 } } });
    expect(before.status).toBe(202);

    free.bytes = 20 * MiB;
    await guard.refresh();
    const refused = await api.request<{ detail: string }>('POST', '/api/events', { key: svc.key, body: { type: 'payment.success', payload: { n: 2 } } });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(refused.body.detail).toMatch(/disk is almost full: 20 MiB free under .*tem-disk-.*TEM_MIN_FREE_DISK_MB/);
    const ready = await api.request<{ reason: string; detail: string }>('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ reason: 'database unavailable', detail: expect.stringMatching(/disk is almost full/) });

    free.bytes = 900 * MiB;
    await guard.refresh();
    expect((await api.request('GET', '/readyz')).status).toBe(200);
    const after = await api.request('POST', '/api/events', { key: svc.key, body: { type: 'payment.success', payload: { n: 3 } } });
    expect(after.status).toBe(202);
    const kept = await api.request<{ payload: unknown }>('GET', `/api/events/${before.body.event_id}`, { key: svc.key });
    expect(kept.status).toBe(200);
    expect(kept.body.payload).toEqual({ n: 1 });
  });

  it('does not start on a disk below the minimum, and says why', async () => {
    const other = mkdtempSync(join(tmpdir(), 'tem-disk-start-'));
    try {
      await expect(openStore({ dataDir: other, minFreeDiskBytes: Number.MAX_SAFE_INTEGER })).rejects.toThrow(/disk is almost full: .* free under .*tem-disk-start-/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
