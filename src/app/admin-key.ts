/**
 * The admin key: TEM_ADMIN_KEY when set (how distributed deployments are bootstrapped), else the
 * embedded server's `$TEM_DATA_DIR/admin.key`, created with mode 0600 on first start. Only the
 * path is ever logged, never the key.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateApiKey, isWellFormedKey } from '../auth/keys.js';
import { ensureAdminKey } from '../auth/bootstrap.js';
import type { Store } from '../store/types.js';
import type { TemConfig } from '../config/index.js';
import { ConfigError } from '../config/index.js';

export interface AdminKeyInfo {
  /** Where the key file is, when the key lives in a file. */
  path: string | null;
  created: boolean;
}

export async function setUpAdminKey(store: Store, config: TemConfig, options: { writeFile: boolean }): Promise<AdminKeyInfo> {
  if (config.adminKey) {
    if (!isWellFormedKey(config.adminKey)) throw new ConfigError('TEM_ADMIN_KEY', 'must be tem_ followed by at least 32 base62 characters');
    await ensureAdminKey(store, config.adminKey);
    return { path: null, created: false };
  }
  if (!options.writeFile) return { path: null, created: false };
  const dir = resolve(config.dataDir);
  const path = join(dir, 'admin.key');
  if (existsSync(path)) {
    const key = readFileSync(path, 'utf8').trim();
    if (!isWellFormedKey(key)) throw new ConfigError(path, 'does not hold an admin key (tem_ followed by at least 32 base62 characters); delete it and a new key is made at the next start');
    await ensureAdminKey(store, key);
    return { path, created: false };
  }
  mkdirSync(dir, { recursive: true });
  const { key } = generateApiKey();
  await ensureAdminKey(store, key);
  // Written whole or not at all: a start killed mid-write must not leave a half key behind.
  const partial = `${path}.${process.pid}.tmp`;
  writeFileSync(partial, `${key}\n`, { mode: 0o600 });
  chmodSync(partial, 0o600);
  renameSync(partial, path);
  return { path, created: true };
}
