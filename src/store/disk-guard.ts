/**
 * Free space under the embedded data directory. PGlite does not fail a write that finds the
 * disk full: it spins, and the whole process with it, health checks included. So the embedded
 * store stops taking statements a little before that point, while it still can: statements
 * are refused with STORE_UNAVAILABLE (503, retried by clients; nothing acknowledged is lost)
 * until space is freed, and everything resumes by itself.
 */
import { statfs } from 'node:fs/promises';
import { createError } from '../core/errors.js';

export interface FsSpace {
  /** Blocks free to unprivileged users, and the block size (as fs.statfs gives them). */
  bavail: number | bigint;
  bsize: number | bigint;
}

export interface DiskGuardOptions {
  dir: string;
  /** Below this many free bytes, statements are refused. */
  minFreeBytes: number;
  /** How often free space is read (default 1 s: a second of ingest writes a few MiB at most). */
  intervalMs?: number;
  /** Tests give a file system of their own. */
  statfs?: (dir: string) => Promise<FsSpace>;
  /** Told when the guard starts or stops refusing (for logs). */
  onChange?: (low: boolean, freeBytes: number) => void;
}

const MiB = 1024 * 1024;

export class DiskGuard {
  /** Free bytes at the last reading, while below the minimum; null while there is room. */
  private lowAt: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private readonly read: (dir: string) => Promise<FsSpace>;

  constructor(private readonly opts: DiskGuardOptions) {
    this.read = opts.statfs ?? ((dir) => statfs(dir));
  }

  /** Reads free space once, then every interval. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Throws STORE_UNAVAILABLE while free space is below the minimum. */
  check(atStart = false): void {
    if (this.lowAt === null) return;
    throw createError(
      'STORE_UNAVAILABLE',
      `the embedded database's disk is almost full: ${formatMiB(this.lowAt)} free under ${this.opts.dir}, ` +
        `at least ${formatMiB(this.opts.minFreeBytes)} needed (TEM_MIN_FREE_DISK_MB); ` +
        (atStart ? 'free some space and start again' : 'free some space and it resumes by itself'),
      { retryAfter: 5 },
    );
  }

  async refresh(): Promise<void> {
    let free: number;
    try {
      const s = await this.read(this.opts.dir);
      free = Number(s.bavail) * Number(s.bsize);
    } catch {
      // Unreadable (the directory moved, a file system without statfs): no reading, no refusal.
      return;
    }
    const wasLow = this.lowAt !== null;
    this.lowAt = free < this.opts.minFreeBytes ? free : null;
    if (wasLow !== (this.lowAt !== null)) this.opts.onChange?.(this.lowAt !== null, free);
  }
}

function formatMiB(bytes: number): string {
  return `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 1 : 0)} MiB`;
}
