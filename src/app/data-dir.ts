/**
 * Creates the embedded data directory (TEM_DATA_DIR) on first start. A path that cannot be a
 * directory — a file, a path under a file, a place the process may not write — stops start-up
 * with a ConfigError naming the setting, as any bad setting does.
 *
 * The directories are made one level at a time instead of with `mkdirSync(…, {recursive: true})`:
 * on a file system that answers ENOENT for a directory whose parent exists (/proc, some FUSE
 * mounts), Node's recursive mkdir loops forever on the main thread, so the process neither
 * starts nor stops on SIGTERM.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config/index.js';

const SETTING = 'TEM_DATA_DIR';

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code} (${e.message})` : String(err);
}

/** Whether `path` exists as a directory (false: missing); throws naming the setting otherwise. */
function isDirectory(path: string, dataDir: string): boolean {
  try {
    if (statSync(path).isDirectory()) return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOTDIR: a parent is a file, which the walk up finds and names.
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw new ConfigError(SETTING, `cannot use ${dataDir}: ${describe(err)}`);
  }
  throw new ConfigError(SETTING, `${dataDir} cannot be a directory: ${path} is a file`);
}

export function ensureDataDir(dataDir: string): void {
  const full = resolve(dataDir);
  const missing: string[] = [];
  for (let dir = full; !isDirectory(dir, dataDir); dir = dirname(dir)) {
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (err) {
      // Another process made it meanwhile: fine if it is a directory.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && isDirectory(dir, dataDir)) continue;
      throw new ConfigError(SETTING, `cannot create ${dataDir}: ${describe(err)}`);
    }
  }
}
