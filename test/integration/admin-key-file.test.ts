/**
 * The embedded admin key file: made private on first start, and a warning at each start while
 * other users may read or change it (embedded PGlite store, in process).
 */
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpAdminKey } from '../../src/app/admin-key.js';
import { loadConfig } from '../../src/config/index.js';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';

describe('admin key file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tem-admin-key-'));
  const path = join(dir, 'admin.key');
  const config = loadConfig({ dataDir: dir }, {});
  let store: Store;

  beforeAll(async () => {
    store = await openStore({ dataDir: dir });
  });

  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One start's set-up, with what it logged at warn and above. */
  async function start(): Promise<{ created: boolean; warnings: Record<string, unknown>[] }> {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const info = await setUpAdminKey(store, config, { writeFile: true, logger: pino({ level: 'warn' }, sink) });
    return { created: info.created, warnings: lines };
  }

  it('is written private and says nothing more while it stays so', async () => {
    expect(await start()).toEqual({ created: true, warnings: [] });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await start()).toEqual({ created: false, warnings: [] });
  });

  it('warns at each start while other users may read it, naming the file and the fix', async () => {
    chmodSync(path, 0o644);
    const { warnings } = await start();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ admin_key_path: path, mode: '0644', msg: `the admin key file can be read or changed by other users (mode 0644); make it private: chmod 600 ${path}` });
    // Left as the operator set it: a warning, not a refusal or a silent change.
    expect(statSync(path).mode & 0o777).toBe(0o644);
    chmodSync(path, 0o600);
    expect((await start()).warnings).toEqual([]);
  });
});
