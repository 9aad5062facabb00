/**
 * File-system failures of the embedded database, named. PGlite's file system throws
 * Emscripten's `ErrnoError`, which carries only a number in Emscripten's own numbering (not
 * the host's) and no message: a full disk at start-up read "An internal error occurred".
 */

/** Emscripten's errno numbers (its ERRNO_CODES) for what a data directory can run into. */
const ERRNO: Record<number, [code: string, text: string]> = {
  2: ['EACCES', 'permission denied'],
  19: ['EDQUOT', 'disk quota exceeded'],
  29: ['EIO', 'input/output error'],
  33: ['EMFILE', 'too many open files'],
  44: ['ENOENT', 'no such file or directory'],
  48: ['ENOMEM', 'out of memory'],
  51: ['ENOSPC', 'no space left on device'],
  54: ['ENOTDIR', 'not a directory'],
  63: ['EPERM', 'operation not permitted'],
  69: ['EROFS', 'read-only file system'],
};

/**
 * "no space left on device (ENOSPC)" for an Emscripten file-system error, Node's own message
 * for a host file-system error (PGlite creates its directory with Node's fs), else null.
 * Looks through `cause` chains: the store wraps what it cannot map.
 */
export function describeFsError(err: unknown): string | null {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const { name, errno, code, syscall, message } = e as { name?: unknown; errno?: unknown; code?: unknown; syscall?: unknown; message?: unknown };
    if (name === 'ErrnoError' && typeof errno === 'number') {
      const known = ERRNO[errno];
      return known ? `${known[1]} (${known[0]})` : `file-system error ${errno}`;
    }
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code) && typeof syscall === 'string' && typeof message === 'string') return message;
  }
  return null;
}
