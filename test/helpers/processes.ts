/**
 * Runs the real `tem` command as child processes (black-box tests of roles and the CLI).
 * Processes are started from the TypeScript sources through tsx, so tests need no build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface TemProcess {
  proc: ChildProcess;
  /** Everything written so far (stdout + stderr). */
  output(): string;
  /** Resolves with the first JSON log line whose msg matches, e.g. 'listening'. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, resolving with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();

export function spawnTem(args: string[], env: Record<string, string | undefined> = {}): TemProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, TEM_LOG_LEVEL: 'info', TEM_CONFIG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of waiters.splice(0)) w();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => {
    proc.on('exit', (code) => {
      running.delete(proc);
      for (const w of waiters.splice(0)) w();
      resolve(code);
    });
  });

  function findLog(msg: string): Record<string, unknown> | undefined {
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.msg === msg) return parsed;
      } catch {
        /* partial line */
      }
    }
    return undefined;
  }

  return {
    proc,
    output: () => out,
    exited,
    waitForLog(msg, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`timed out waiting for "${msg}" from tem ${args.join(' ')}:\n${out.slice(-3000)}`)), timeoutMs);
        const check = () => {
          const found = findLog(msg);
          if (found) {
            clearTimeout(deadline);
            resolve(found);
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            clearTimeout(deadline);
            reject(new Error(`tem ${args.join(' ')} exited (${proc.exitCode ?? proc.signalCode}) before "${msg}":\n${out.slice(-3000)}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 20_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/**
 * Runs a CLI command to completion. `closeStdout`: the reader goes away at once, as `| head -1`
 * does once it has its line.
 */
export function runTem(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
  { closeStdout = false } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, TEM_CONFIG: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (closeStdout) proc.stdout.destroy();
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`tem ${args.join(' ')} timed out:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Kills whatever a test left running (call from afterAll). */
export function killAll(): void {
  for (const proc of running) proc.kill('SIGKILL');
  running.clear();
}
