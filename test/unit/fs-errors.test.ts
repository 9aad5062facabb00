/**
 * The embedded database's file-system failures are named: a full disk at start-up used to
 * read "An internal error occurred".
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createError } from '../../src/core/errors.js';
import { describeFsError } from '../../src/store/fs-errors.js';
import { createPgliteStore } from '../../src/store/index.js';

/** The shape PGlite's Emscripten file system throws: a name and Emscripten's errno, no message. */
function errnoError(errno: number): Error {
  return Object.assign(new Error(''), { name: 'ErrnoError', errno });
}

describe('describeFsError', () => {
  it('names Emscripten errno values by their POSIX names', () => {
    expect(describeFsError(errnoError(51))).toBe('no space left on device (ENOSPC)');
    expect(describeFsError(errnoError(69))).toBe('read-only file system (EROFS)');
    expect(describeFsError(errnoError(2))).toBe('permission denied (EACCES)');
    expect(describeFsError(errnoError(999))).toBe('file-system error 999');
  });

  it('finds the file-system error behind the store’s internal error', () => {
    const wrapped = createError('INTERNAL', 'An internal error occurred', { cause: errnoError(51) });
    expect(describeFsError(wrapped)).toBe('no space left on device (ENOSPC)');
  });

  it('says nothing of other errors', () => {
    expect(describeFsError(new Error('boom'))).toBeNull();
    expect(describeFsError(Object.assign(new Error('x'), { code: '23505' }))).toBeNull();
    expect(describeFsError(undefined)).toBeNull();
  });
});

describe('opening the embedded database where it cannot be written', () => {
  it('fails naming the directory and the file system’s reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-fs-'));
    const file = join(dir, 'not-a-directory');
    writeFileSync(file, '');
    try {
      const err = await createPgliteStore(file).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(new RegExp(`^cannot open the embedded database in ${join(file, 'pgdata')}: ENOTDIR: not a directory`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
