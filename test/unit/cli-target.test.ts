/**
 * Where the CLI's admin commands go by default: the embedded server running on the data
 * directory, else the server this machine's settings describe (environment over
 * tem.config.json, as the server reads them), with its admin key.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliError, resolveTarget } from '../../src/cli/admin-client.js';

function setup(config: Record<string, unknown>): { file: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tem-cli-'));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  writeFileSync(join(dataDir, 'admin.key'), 'tem_fromTheDataDir\n');
  const file = join(dir, 'tem.config.json');
  writeFileSync(file, JSON.stringify({ dataDir, ...config }));
  return { file, dataDir };
}

describe('resolveTarget', () => {
  it("goes to the embedded server running on the data directory (its server.json), not to a dead one's", () => {
    const { file, dataDir } = setup({ httpPort: 18123 });
    writeFileSync(join(dataDir, 'server.json'), JSON.stringify({ url: 'http://127.0.0.1:45678', internal: 'http://127.0.0.1:45679', ws: 'ws://127.0.0.1:45678/ws', pid: process.pid }));
    expect(resolveTarget({}, { TEM_CONFIG: file }).url).toBe('http://127.0.0.1:45678');
    // --url / TEM_URL still win.
    expect(resolveTarget({ url: 'http://h:1' }, { TEM_CONFIG: file }).url).toBe('http://h:1');
    // A file a killed server left behind is ignored: its pid is gone.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(join(dataDir, 'server.json'), JSON.stringify({ url: 'http://127.0.0.1:45678', pid: dead }));
    expect(resolveTarget({}, { TEM_CONFIG: file }).url).toBe('http://127.0.0.1:18123');
    writeFileSync(join(dataDir, 'server.json'), 'not json');
    expect(resolveTarget({}, { TEM_CONFIG: file }).url).toBe('http://127.0.0.1:18123');
  });

  it('reads the port, host and data dir from the config file', () => {
    const { file } = setup({ httpPort: 18123 });
    expect(resolveTarget({}, { TEM_CONFIG: file })).toEqual({ url: 'http://127.0.0.1:18123', key: 'tem_fromTheDataDir', timeoutMs: 60_000 });
    const bound = setup({ httpPort: 18124, httpHost: '127.0.0.2' });
    expect(resolveTarget({}, { TEM_CONFIG: bound.file }).url).toBe('http://127.0.0.2:18124');
  });

  it('lets the environment win over the file, and options over both', () => {
    const { file } = setup({ httpPort: 18123 });
    expect(resolveTarget({}, { TEM_CONFIG: file, TEM_HTTP_PORT: '18200', TEM_ADMIN_KEY: 'tem_fromEnv' })).toEqual({ url: 'http://127.0.0.1:18200', key: 'tem_fromEnv', timeoutMs: 60_000 });
    expect(resolveTarget({ url: 'http://h:1/', key: 'tem_opt' }, { TEM_CONFIG: file, TEM_API_KEY: 'tem_api' })).toEqual({ url: 'http://h:1', key: 'tem_opt', timeoutMs: 60_000 });
    expect(resolveTarget({ url: 'http://h:1', key: 'k', timeout: '2.5' }, { TEM_CONFIG: file }).timeoutMs).toBe(2500);
    for (const timeout of ['0', '-1', 'soon', '86401']) expect(() => resolveTarget({ url: 'http://h:1', key: 'k', timeout }, { TEM_CONFIG: file }), timeout).toThrowError(/--timeout/);
    expect(resolveTarget({}, { TEM_CONFIG: file, TEM_URL: 'http://u:2', TEM_API_KEY: 'tem_api' })).toEqual({ url: 'http://u:2', key: 'tem_api', timeoutMs: 60_000 });
  });

  it('says what is wrong: a bad setting (exit code 2), or no key anywhere', () => {
    const { file } = setup({ httpPort: 18123 });
    expect(() => resolveTarget({}, { TEM_CONFIG: file, TEM_HTTP_PORT: 'eighty' })).toThrowError(/TEM_HTTP_PORT/);
    try {
      resolveTarget({}, { TEM_CONFIG: file, TEM_HTTP_PORT: 'eighty' });
    } catch (err) {
      expect((err as CliError).exitCode).toBe(2);
    }
    expect(() => resolveTarget({}, { TEM_CONFIG: '', TEM_DATA_DIR: join(tmpdir(), 'tem-no-such-dir') })).toThrowError(/no API key/);
    // With both the URL and the key given, local settings are not read at all.
    expect(resolveTarget({ url: 'http://h:1', key: 'tem_k' }, { TEM_CONFIG: file, TEM_HTTP_PORT: 'eighty' })).toEqual({ url: 'http://h:1', key: 'tem_k', timeoutMs: 60_000 });
  });

  it('refuses a key no header can carry, naming where it came from but not the key', () => {
    const refused = (fn: () => unknown): CliError => {
      try {
        fn();
      } catch (err) {
        return err as CliError;
      }
      throw new Error('not refused');
    };
    const given = refused(() => resolveTarget({ url: 'http://h:1', key: 'tem_secret\nSECRET' }, {}));
    expect(given.exitCode).toBe(2);
    expect(given.message).toBe('the API key from --key is not a valid key (printable ASCII, no spaces)');
    const { file, dataDir } = setup({ httpPort: 18123 });
    writeFileSync(join(dataDir, 'admin.key'), 'tem_fileSECRETfile€\n');
    const fromFile = refused(() => resolveTarget({}, { TEM_CONFIG: file }));
    expect(fromFile.message).toBe(`the API key from ${join(dataDir, 'admin.key')} is not a valid key (printable ASCII, no spaces)`);
    expect(fromFile.message).not.toContain('SECRET');
  });

  it('says it cannot read admin.key, and why', () => {
    const { file, dataDir } = setup({ httpPort: 18123 });
    const keyFile = join(dataDir, 'admin.key');
    rmSync(keyFile);
    mkdirSync(keyFile);
    expect(() => resolveTarget({}, { TEM_CONFIG: file })).toThrowError(`cannot read the admin key ${keyFile}: EISDIR`);
  });

  it('refuses a --timeout that rounds to no time at all', () => {
    expect(() => resolveTarget({ url: 'http://h:1', key: 'tem_k', timeout: '0.0001' }, {})).toThrowError(/--timeout must be a number of seconds from 0.001 to 86400/);
    expect(resolveTarget({ url: 'http://h:1', key: 'tem_k', timeout: '0.001' }, {}).timeoutMs).toBe(1);
  });
});
