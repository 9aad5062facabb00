/**
 * One process at a time may open the embedded database: PGlite has no locking of its own, and
 * two processes writing one data directory would corrupt it. The lock file holds the owner's
 * pid; a lock whose process is gone (a crash, SIGKILL) is taken over.
 */
import { openSync, writeSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Whether process `pid` is running (on this machine). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock or throws naming the process that holds it; returns the release function. */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, 'tem.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw Object.assign(new Error(`the embedded database in ${dataDir} is in use by process ${owner}; stop it first (admin commands work against the running server)`), {
          name: 'ConfigError',
        });
      }
      rmSync(path, { force: true });
    }
  }
  throw new Error(`could not lock ${dataDir}`);
}
