/**
 * The embedded data directory's lock: held while the process it names runs, taken over once
 * that process is gone — also when another process has since been given its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootId, lockDataDir, processStart } from '../../src/app/data-dir-lock.js';
import { readServerFile, writeServerFile } from '../../src/app/server-file.js';

let dir: string;
let child: ChildProcess | null = null;

function lockPath(): string {
  return join(dir, 'tem.lock');
}

/** A running process that is not this one. */
async function otherProcess(): Promise<number> {
  child = spawn('sleep', ['60'], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child!.once('spawn', resolve);
    child!.once('error', reject);
  });
  return child.pid!;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tem-lock-'));
});

afterEach(() => {
  child?.kill('SIGKILL');
  child = null;
  rmSync(dir, { recursive: true, force: true });
});

describe('lockDataDir', () => {
  it('records pid, start time and boot, and release removes the lock', () => {
    const release = lockDataDir(dir);
    const [pid, start, boot] = readFileSync(lockPath(), 'utf8').trim().split(' ');
    expect(Number(pid)).toBe(process.pid);
    expect(start).toBe(processStart(process.pid));
    expect(boot).toBe(bootId());
    release();
    expect(existsSync(lockPath())).toBe(false);
  });

  it('refuses while the process the lock names runs', async () => {
    const pid = await otherProcess();
    writeFileSync(lockPath(), `${pid} ${processStart(pid)} ${bootId()}\n`);
    expect(() => lockDataDir(dir)).toThrow(`is in use by process ${pid}`);
    expect(readFileSync(lockPath(), 'utf8').startsWith(`${pid} `)).toBe(true);
  });

  it('takes over a lock whose pid now belongs to a process started at another time', async () => {
    const pid = await otherProcess();
    const start = Number(processStart(pid));
    writeFileSync(lockPath(), `${pid} ${start - 1} ${bootId()}\n`);
    const release = lockDataDir(dir);
    expect(readFileSync(lockPath(), 'utf8').startsWith(`${process.pid} `)).toBe(true);
    release();
  });

  it('takes over a lock written in another boot, whatever its pid now is', async () => {
    const pid = await otherProcess();
    writeFileSync(lockPath(), `${pid} ${processStart(pid)} 00000000-0000-0000-0000-000000000000\n`);
    const release = lockDataDir(dir);
    release();
  });

  it('reads a bare pid (an older lock): refused while that pid runs, taken over once gone', async () => {
    const pid = await otherProcess();
    writeFileSync(lockPath(), String(pid));
    expect(() => lockDataDir(dir)).toThrow(`in use by process ${pid}`);
    child!.kill('SIGKILL');
    await new Promise((resolve) => child!.once('exit', resolve));
    lockDataDir(dir)();
  });

  it('an empty lock is being written while fresh and stale once old', () => {
    writeFileSync(lockPath(), '');
    expect(() => lockDataDir(dir)).toThrow(/another process is opening/);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath(), old, old);
    lockDataDir(dir)();
  });

  it('release leaves a lock that another process has taken over', () => {
    const release = lockDataDir(dir);
    writeFileSync(lockPath(), '1 1 other\n');
    release();
    expect(readFileSync(lockPath(), 'utf8')).toBe('1 1 other\n');
  });
});

describe('server.json', () => {
  it('is ignored when its pid now belongs to a process started at another time', async () => {
    const remove = writeServerFile(dir, { url: 'http://127.0.0.1:1', internal: 'http://127.0.0.1:2', ws: 'ws://127.0.0.1:1/ws' });
    expect(readServerFile(dir)?.url).toBe('http://127.0.0.1:1');
    const pid = await otherProcess();
    const file = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'server.json'), JSON.stringify({ ...file, pid, start: String(Number(processStart(pid)) - 1) }));
    expect(readServerFile(dir)).toBeNull();
    writeFileSync(join(dir, 'server.json'), JSON.stringify({ ...file, pid, start: processStart(pid) }));
    expect(readServerFile(dir)?.pid).toBe(pid);
    remove();
  });
});
