/**
 * `$TEM_DATA_DIR/server.json`: where the embedded server running on this data directory listens,
 * written once it listens and removed when it stops. Admin commands run without `--url` read it,
 * so they find the server wherever it was told to listen — on a port of its own
 * (`TEM_HTTP_PORT` set for the server only) or on one picked at start (`0`) — next to its
 * `admin.key`. A file left by a process that is gone (SIGKILL) is ignored, also when another
 * process now has its pid.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentOwner, ownerRunning } from './data-dir-lock.js';
import { ensureDataDir } from './data-dir.js';

export interface ServerFile {
  url: string;
  internal: string;
  ws: string;
  pid: number;
  /** The process's start time and boot (src/app/data-dir-lock.ts): a reused pid is not it. */
  start?: string | null;
  boot?: string | null;
}

const NAME = 'server.json';

/**
 * Writes the file (mode 0600, like admin.key); returns its remover. Throws when the directory
 * cannot be written: the caller decides whether that matters.
 */
export function writeServerFile(dataDir: string, where: Omit<ServerFile, 'pid'>): () => void {
  const path = join(dataDir, NAME);
  // With DATABASE_URL and TEM_ADMIN_KEY nothing else may have created the directory.
  ensureDataDir(dataDir);
  writeFileSync(path, `${JSON.stringify({ ...where, ...currentOwner() })}\n`, { mode: 0o600 });
  return () => {
    // Only this process's own file: a later server on the same directory may have replaced it.
    if (readServerFile(dataDir)?.pid === process.pid) rmSync(path, { force: true });
  };
}

/** The running server's addresses, or null when there is no file or its process is gone. */
export function readServerFile(dataDir: string): ServerFile | null {
  let parsed: Partial<ServerFile>;
  try {
    parsed = JSON.parse(readFileSync(join(dataDir, NAME), 'utf8')) as Partial<ServerFile>;
  } catch {
    return null;
  }
  if (typeof parsed.url !== 'string' || !Number.isInteger(parsed.pid) || parsed.pid! <= 0) return null;
  const owner = { pid: parsed.pid!, start: typeof parsed.start === 'string' ? parsed.start : null, boot: typeof parsed.boot === 'string' ? parsed.boot : null };
  if (parsed.pid !== process.pid && !ownerRunning(owner)) return null;
  return parsed as ServerFile;
}
