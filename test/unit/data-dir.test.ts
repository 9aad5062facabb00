/**
 * The embedded data directory is made on first start, and a TEM_DATA_DIR that cannot be one
 * stops start-up naming the setting.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureDataDir } from '../../src/app/data-dir.js';
import { ConfigError } from '../../src/config/index.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tem-data-dir-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function error(fn: () => void): ConfigError {
  try {
    fn();
  } catch (err) {
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('ensureDataDir', () => {
  it('creates missing levels, and accepts a directory that exists', () => {
    const target = join(dir, 'a', 'b', 'c');
    ensureDataDir(target);
    expect(statSync(target).isDirectory()).toBe(true);
    ensureDataDir(target);
    ensureDataDir(dir);
  });

  it('names TEM_DATA_DIR when the path is a file', () => {
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    const err = error(() => ensureDataDir(file));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.setting).toBe('TEM_DATA_DIR');
    expect(err.message).toBe(`invalid setting TEM_DATA_DIR: ${file} cannot be a directory: ${file} is a file`);
  });

  it('names TEM_DATA_DIR and the file in the way when a parent is a file', () => {
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    const err = error(() => ensureDataDir(join(file, 'sub', 'data')));
    expect(err.setting).toBe('TEM_DATA_DIR');
    expect(err.message).toContain(`${file} is a file`);
  });

  it.runIf(process.platform === 'linux')('fails at once, naming TEM_DATA_DIR, where the file system refuses the directory (/proc)', () => {
    // Node's recursive mkdir never returns here; start-up hung on the main thread.
    const err = error(() => ensureDataDir('/proc/tem-data-dir-test/x'));
    expect(err.setting).toBe('TEM_DATA_DIR');
    expect(err.message).toMatch(/^invalid setting TEM_DATA_DIR: cannot create \/proc\/tem-data-dir-test\/x: ENOENT/);
  });
});
