/**
 * One process at a time may open the embedded database: PGlite has no locking of its own, and
 * two processes writing one data directory would corrupt it. The lock file names its owner; a
 * lock whose owner is gone (a crash, SIGKILL, a reboot) is taken over.
 *
 * A pid alone does not name a process for long: after a crash and a restart — a container's
 * above all, where pids start again from 1 — another program may hold the old pid, and the
 * directory would stay locked by a process that has nothing to do with it. So the lock also
 * records the owner's start time (Linux: /proc/<pid>/stat, in clock ticks since boot) and the
 * boot it belongs to (/proc/sys/kernel/random/boot_id): the lock is held only while a process
 * with that pid, started at that moment, in that boot, runs. Where /proc cannot be read the
 * pid alone decides, as a lock file written before these fields existed does.
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface LockOwner {
  pid: number;
  /** The process's start time in clock ticks after boot; null where unknown. */
  start: string | null;
  /** The boot the process ran in; null where unknown. */
  boot: string | null;
}

/** Whether process `pid` is running (on this machine). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces and ')'. */
export function processStart(pid: number): string | null {
  const stat = readOr(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): starttime, field 22, is fields[19].
  const start = fields[19];
  return start !== undefined && /^\d+$/.test(start) ? start : null;
}

export function bootId(): string | null {
  return readOr('/proc/sys/kernel/random/boot_id')?.trim() || null;
}

export function currentOwner(): LockOwner {
  return { pid: process.pid, start: processStart(process.pid), boot: bootId() };
}

/** `pid start boot`, or a bare pid (older lock files): null when it names no process. */
export function parseOwner(text: string): LockOwner | null {
  const [pid, start, boot] = text.trim().split(/\s+/);
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0) return null;
  return { pid: n, start: start && /^\d+$/.test(start) ? start : null, boot: boot || null };
}

/** Whether the process the lock names still runs; what cannot be checked counts as running. */
export function ownerRunning(owner: LockOwner): boolean {
  if (owner.boot !== null) {
    const boot = bootId();
    if (boot !== null && boot !== owner.boot) return false;
  }
  if (!alive(owner.pid)) return false;
  if (owner.start === null) return true;
  const start = processStart(owner.pid);
  return start === null || start === owner.start;
}

/** An empty lock file this recent is being written, not left behind. */
const FRESH_EMPTY_MS = 5_000;

function youngerThan(path: string, ms: number): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs < ms;
  } catch {
    return false;
  }
}

/** Not a usage error or a bad setting (those exit 2): another process holds the directory. */
function inUse(dataDir: string, owner: LockOwner): Error {
  return new Error(`the embedded database in ${dataDir} is in use by process ${owner.pid}; stop it first (admin commands work against the running server)`);
}

/**
 * Moves a stale lock aside. Two processes may find the same stale lock at once: the rename lets
 * only one of them have it, and the one that finds it renamed a fresh lock instead (the other
 * had already taken over) puts that one back and reports it in use.
 */
function removeStale(path: string, staleText: string, dataDir: string): void {
  const aside = `${path}.stale-${process.pid}-${Date.now()}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = readOr(aside);
  if (moved !== null && moved !== staleText) {
    const owner = parseOwner(moved);
    try {
      linkSync(aside, path);
    } catch {
      // A third process locked meanwhile; its lock stands.
    }
    rmSync(aside, { force: true });
    if (owner && ownerRunning(owner)) throw inUse(dataDir, owner);
    return;
  }
  rmSync(aside, { force: true });
}

/** Takes the lock or throws naming the process that holds it; returns the release function. */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, 'tem.lock');
  const me = currentOwner();
  const text = [me.pid, me.start ?? '', me.boot ?? ''].join(' ').trim();
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, `${text}\n`);
      } finally {
        closeSync(fd);
      }
      return () => {
        // Only this process's own lock: had it been taken over, the new owner's stays.
        if (readOr(path) === `${text}\n`) rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const held = readOr(path);
      // Gone between the open and the read: try again.
      if (held === null) continue;
      const owner = parseOwner(held);
      if (owner === null && youngerThan(path, FRESH_EMPTY_MS)) {
        // Its writer is between creating the file and writing its pid.
        throw new Error(`another process is opening the embedded database in ${dataDir}; stop it first`);
      }
      // An older lock naming no process is one whose writer died before writing it: stale.
      if (owner && owner.pid !== process.pid && ownerRunning(owner)) throw inUse(dataDir, owner);
      removeStale(path, held, dataDir);
    }
  }
  throw new Error(`could not lock ${dataDir}`);
}
