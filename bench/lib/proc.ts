/**
 * Child processes: tem roles (`node --import tsx src/cli/main.ts <role>`) and bench fixtures.
 * A role is ready when it logs `"msg":"listening"` (or another line the caller waits for);
 * stopping sends SIGTERM and waits for a clean exit, with SIGKILL as the last resort.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { REPO_ROOT } from './env.js';
import { onCleanup } from './cleanup.js';

export interface LogLine {
  msg?: string;
  level?: number;
  [key: string]: unknown;
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Last lines of output, for error messages. */
  tail: string[];
  /** Resolves with the first JSON log line matching `pred` (seen before or after the call). */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves on the first raw stdout/stderr line matching `re`. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<number | null>;
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  /** Extra node flags (e.g. `--inspect=127.0.0.1:0`, `--expose-gc`). */
  nodeArgs?: string[];
  /** Use a Node IPC channel (fixtures that report through process.send). */
  ipc?: boolean;
  /** Echo the child's output with a name prefix. */
  echo?: boolean;
}

const TAIL = 60;

export function spawnNode(name: string, script: string, args: string[], options: SpawnOptions = {}): Child {
  // BENCH_NODE_ARGS adds flags to every child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile.
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const nodeArgs = [...extra, ...(options.nodeArgs ?? []), '--import', 'tsx', script, ...args];
  const proc = spawn(process.execPath, nodeArgs, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not start ${name}`);
  const tail: string[] = [];
  const logs: LogLine[] = [];
  const raw: string[] = [];
  const logWaiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const lineWaiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? null : 0);
      resolve(exitCode);
    });
  });
  const onLine = (line: string): void => {
    tail.push(line);
    if (tail.length > TAIL) tail.shift();
    if (options.echo) console.log(`[${name}] ${line}`);
    raw.push(line);
    if (raw.length > 2000) raw.shift();
    for (const w of [...lineWaiters]) {
      if (w.re.test(line)) {
        lineWaiters.splice(lineWaiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
    if (!line.startsWith('{')) return;
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      return;
    }
    logs.push(parsed);
    if (logs.length > 2000) logs.shift();
    for (const w of [...logWaiters]) {
      if (w.pred(parsed)) {
        logWaiters.splice(logWaiters.indexOf(w), 1);
        w.resolve(parsed);
      }
    }
  };
  createInterface({ input: proc.stdout! }).on('line', onLine);
  createInterface({ input: proc.stderr! }).on('line', onLine);

  const failOnExit = <T>(what: string, timeoutMs: number, wait: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: timed out after ${timeoutMs} ms waiting for ${what}\n${tail.join('\n')}`)), timeoutMs);
      wait.then((v) => {
        clearTimeout(timer);
        resolve(v);
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) while waiting for ${what}\n${tail.join('\n')}`));
      });
    });

  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    tail,
    exited,
    waitForLog(pred, timeoutMs = 60_000) {
      const seen = logs.find(pred);
      if (seen) return Promise.resolve(seen);
      return failOnExit('a log line', timeoutMs, new Promise<LogLine>((resolve) => logWaiters.push({ pred, resolve })));
    },
    waitForLine(re, timeoutMs = 60_000) {
      const seen = raw.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return failOnExit(String(re), timeoutMs, new Promise<string>((resolve) => lineWaiters.push({ re, resolve })));
    },
    async stop(timeoutMs = 15_000) {
      if (exitCode !== undefined) return exitCode;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => {
        console.error(`${name} did not stop within ${timeoutMs} ms: SIGKILL`);
        proc.kill('SIGKILL');
      }, timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  onCleanup(`stop ${name}`, () => child.stop());
  return child;
}

export const CLI = join('src', 'cli', 'main.ts');

/** Starts `tem <args>` and waits until it logs `"msg":"listening"` (or `ready`, if given). */
export async function startRole(
  name: string,
  args: string[],
  options: SpawnOptions & { ready?: (line: LogLine) => boolean; timeoutMs?: number } = {},
): Promise<Child> {
  const child = spawnNode(name, CLI, args, options);
  await child.waitForLog(options.ready ?? ((l) => l.msg === 'listening'), options.timeoutMs ?? 90_000);
  return child;
}

/** Resident set size of a process in bytes (Linux /proc). */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat. */
export async function cpuMs(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}

/** Machine-wide CPU ticks (busy, total) from /proc/stat; busy counts everything but idle and iowait. */
export async function machineTicks(): Promise<{ busy: number; total: number }> {
  const { readFile } = await import('node:fs/promises');
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const t = line.trim().split(/\s+/).slice(1).map(Number);
  const total = t.reduce((a, b) => a + b, 0);
  return { busy: total - (t[3] ?? 0) - (t[4] ?? 0), total };
}

/** Share of the machine's CPU time that was busy between two machineTicks() readings (0–1). */
export function busyShare(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

/** CPU ms used so far by every process whose command name starts with `comm` (e.g. all PostgreSQL backends). */
export async function cpuMsByName(comm: string): Promise<number> {
  const { readdir, readFile } = await import('node:fs/promises');
  let total = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!(await readFile(`/proc/${pid}/comm`, 'utf8')).startsWith(comm)) continue;
      total += await cpuMs(Number(pid));
    } catch {
      // The process ended in between.
    }
  }
  return total;
}
