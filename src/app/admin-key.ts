/**
 * The admin key: TEM_ADMIN_KEY when set (how distributed deployments are bootstrapped), else the
 * embedded server's `$TEM_DATA_DIR/admin.key`, created with mode 0600 on first start. Only the
 * path is ever logged, never the key.
 */
import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateApiKey, isWellFormedKey } from '../auth/keys.js';
import { ADMIN_PRINCIPAL_ID, ensureAdminKey } from '../auth/bootstrap.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/types.js';
import type { TemConfig } from '../config/index.js';
import { ConfigError } from '../config/index.js';
import { ensureDataDir } from './data-dir.js';

export interface AdminKeyInfo {
  /** Where the key file is, when the key lives in a file. */
  path: string | null;
  created: boolean;
  /** Why the admin key authenticates nothing (revoked, principal disabled), or null. */
  unusable: string | null;
  /** Whether the principal `admin` is disabled (then no admin key of its authenticates). */
  principalDisabled: boolean;
  /** The key file's permission bits when users other than its owner may read or write it. */
  exposedMode?: number;
}

export async function setUpAdminKey(store: Store, config: TemConfig, options: { writeFile: boolean; logger: Logger }): Promise<AdminKeyInfo> {
  const info = await setUp(store, config, options.writeFile);
  if (info.unusable) {
    const where = config.adminKey ? 'TEM_ADMIN_KEY' : info.path;
    options.logger.error({ admin_key: where }, `the admin key (${where}) authenticates nothing: ${info.unusable}; ${remedy(info, config)}`);
  }
  if (info.path && info.exposedMode !== undefined) {
    // Not refused (an operator may share it on purpose), but said at every start: it is the key
    // to everything.
    const mode = info.exposedMode.toString(8).padStart(4, '0');
    options.logger.warn({ admin_key_path: info.path, mode }, `the admin key file can be read or changed by other users (mode ${mode}); make it private: chmod 600 ${info.path}`);
  }
  return info;
}

/**
 * What brings an admin key back. Every admin key belongs to principal `admin`, so a new key helps
 * only against a revoked one: a disabled principal must be re-enabled, by a key allowed to.
 */
function remedy(info: AdminKeyInfo, config: TemConfig): string {
  if (info.principalDisabled) {
    return `a new admin key would belong to the same principal: re-enable it with another key allowed to (tem principals update ${ADMIN_PRINCIPAL_ID} --enable)`;
  }
  return config.adminKey || !info.path ? 'set a new TEM_ADMIN_KEY' : `delete ${info.path} and a new key is made at the next start, or set TEM_ADMIN_KEY`;
}

/** The file's mode when its group or others have any access to it (not on Windows, which has no such bits). */
function exposure(path: string): { exposedMode?: number } {
  if (process.platform === 'win32') return {};
  const mode = statSync(path).mode & 0o777;
  return mode & 0o077 ? { exposedMode: mode } : {};
}

async function setUp(store: Store, config: TemConfig, writeFile: boolean): Promise<AdminKeyInfo> {
  if (config.adminKey) {
    if (!isWellFormedKey(config.adminKey)) throw new ConfigError('TEM_ADMIN_KEY', 'must be tem_ followed by at least 32 base62 characters');
    const { unusable, principalDisabled } = await ensureAdminKey(store, config.adminKey);
    return { path: null, created: false, unusable, principalDisabled };
  }
  if (!writeFile) return { path: null, created: false, unusable: null, principalDisabled: false };
  const dir = resolve(config.dataDir);
  const path = join(dir, 'admin.key');
  if (existsSync(path)) {
    const key = readFileSync(path, 'utf8').trim();
    if (!isWellFormedKey(key)) throw new ConfigError(path, 'does not hold an admin key (tem_ followed by at least 32 base62 characters); delete it and a new key is made at the next start');
    const { unusable, principalDisabled } = await ensureAdminKey(store, key);
    return { path, created: false, unusable, principalDisabled, ...exposure(path) };
  }
  ensureDataDir(dir);
  const { key } = generateApiKey();
  const { unusable, principalDisabled } = await ensureAdminKey(store, key);
  // Written whole or not at all: a start killed mid-write must not leave a half key behind.
  const partial = `${path}.${process.pid}.tmp`;
  writeFileSync(partial, `${key}\n`, { mode: 0o600 });
  chmodSync(partial, 0o600);
  renameSync(partial, path);
  return { path, created: true, unusable, principalDisabled };
}
