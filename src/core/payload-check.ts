/**
 * What JSON.parse accepts but the database cannot store faithfully, caught before the write so
 * the client gets a 400 naming the field instead of a database error: NUL characters and
 * unpaired surrogates (rejected by jsonb), numbers beyond double range (JSON.parse turns 1e400
 * into Infinity, which would be stored as null), and absurd nesting (PostgreSQL's parser
 * recursion limit — and JSON.stringify's own: a payload thousands of levels deep throws a
 * RangeError when measured or sent on). Run it before anything serializes a payload: HTTP
 * ingest and publish, and the gateway's PUBLISH and INGEST frames.
 */
import { createError } from './errors.js';

export const MAX_PAYLOAD_DEPTH = 100;

// eslint-disable-next-line no-control-regex -- finding NUL is the point
const SUSPECT = /[\u0000\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function badString(s: string): string | null {
  if (!SUSPECT.test(s)) return null;
  if (s.includes('\u0000')) return 'contains a NUL character';
  return LONE_SURROGATE.test(s) ? 'contains an unpaired UTF-16 surrogate' : null;
}

function fail(path: string[], problem: string): never {
  const field = path.join('.');
  throw createError('VALIDATION_FAILED', `${field} ${problem}`, { field });
}

function walk(value: unknown, path: string[], depth: number): void {
  if (typeof value === 'string') {
    const problem = badString(value);
    if (problem) fail(path, problem);
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(path, 'is a number out of range');
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (depth >= MAX_PAYLOAD_DEPTH) fail(path, `is nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(String(i));
      walk(value[i], path, depth + 1);
      path.pop();
    }
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const problem = badString(key);
    if (problem) fail(path, `has a key that ${problem}`);
    path.push(key);
    walk(v, path, depth + 1);
    path.pop();
  }
}

/** Throws VALIDATION_FAILED naming the first offending field under `field` (e.g. body.payload). */
export function checkPayload(payload: unknown, field: string): void {
  walk(payload, [field], 0);
}
