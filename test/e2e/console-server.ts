/**
 * Starts the real embedded server (`tem start`, from source through tsx) as a subprocess for the
 * console's browser tests: free ports, a temporary data dir, a known admin key. Resolves once it
 * logs `"msg":"listening"`, with the URL it printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export interface RunningServer {
  url: string;
  adminKey: string;
  child: ChildProcess;
  /** Everything the server logged, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export function randomKey(): string {
  return `tem_${[...randomBytes(40)].map((b) => BASE62[b % 62]).join('')}`;
}

export async function startEmbeddedServer(opts: { processors?: string; env?: Record<string, string> } = {}): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tem-console-e2e-'));
  const adminKey = randomKey();
  // Embedded mode: PGlite and the memory bus, whatever the surrounding shell points at.
  const inherited = { ...process.env };
  delete inherited.DATABASE_URL;
  delete inherited.REDIS_URL;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], {
    cwd: ROOT,
    env: {
      ...inherited,
      TEM_HTTP_HOST: '127.0.0.1',
      TEM_HTTP_PORT: '0',
      TEM_INTERNAL_PORT: '0',
      TEM_DATA_DIR: dataDir,
      TEM_ADMIN_KEY: adminKey,
      TEM_LOG_LEVEL: 'info',
      TEM_CONFIG: '',
      ...(opts.processors ? { TEM_PROCESSORS: opts.processors } : {}),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 60 s:\n${log}`)), 60_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      for (const line of log.split('\n')) {
        if (!line.includes('"listening"')) continue;
        try {
          const rec = JSON.parse(line) as { msg?: string; url?: string };
          if (rec.msg === 'listening' && rec.url) {
            clearTimeout(timer);
            resolve(rec.url);
          }
        } catch {
          /* not a complete JSON line yet */
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${log}`));
    });
  });

  return {
    url,
    adminKey,
    child,
    output: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(killer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
