import { randomBytes, randomUUID } from 'node:crypto';

/**
 * What a principal id (and so a user id) may be: ids travel in channel names (`user:{id}`), so
 * they use the channel alphabet without `:`. A JWT's `sub` is held to it too: `sub: "*"` would
 * make the owner channel the pattern `user:*`, and `a|b` is no channel at all.
 */
export const PRINCIPAL_ID_RE = /^[A-Za-z0-9_.@=-]{1,128}$/;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Random bytes from a pooled CSPRNG buffer: one randomBytes call per 4 KiB instead of one per id
 * (ids are minted on every ingest and every bus publish; the per-call cost showed in profiles).
 * Each byte is handed out once.
 */
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function randomSlice(n: number): Buffer {
  if (poolOffset + n > pool.length) {
    pool = randomBytes(Math.max(POOL_SIZE, n));
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

/** Unbiased random base62 string (rejection sampling over random bytes). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const bytes = randomSlice(length * 2);
    for (const b of bytes) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/**
 * UUIDv7: time-ordered, so event ids index and page in creation order
 * (cursor paging orders by id) while staying unguessable (62 random bits, plus 12 that start
 * at a random value each millisecond).
 *
 * Monotonic within a process (RFC 9562, method 1): ids minted in the same millisecond count up
 * in the 12 bits after the version, so a batch's ids sort in the order they were minted and
 * statements may order by id instead of carrying the input order along. A clock that steps back
 * just starts from the new time.
 */
/** The last time a caller gave, and the millisecond its id carries (ahead of it once borrowed). */
let lastGiven = -1;
let lastMs = -1;
let counter = 0;

export function uuidv7(nowMs: number = Date.now()): string {
  // Minted for every ingested event: plain number arithmetic and a hex table, no BigInt or
  // intermediate buffers. The 48-bit millisecond time is split into its top 16 and low 32 bits.
  const r = randomSlice(10);
  if (nowMs >= lastGiven && nowMs <= lastMs) {
    // The same millisecond (or one already borrowed): count up; past 4,096, borrow the next one.
    if (counter < 0xfff) counter++;
    else {
      lastMs++;
      counter = ((r[0]! & 0x07) << 8) | r[1]!;
    }
  } else {
    lastMs = nowMs;
    // A random start in the lower half leaves room to count up.
    counter = ((r[0]! & 0x07) << 8) | r[1]!;
  }
  lastGiven = nowMs;
  const ms = lastMs;
  const high = Math.floor(ms / 0x1_0000_0000) & 0xffff;
  const low = ms >>> 0;
  return (
    HEX[high >>> 8]! + HEX[high & 0xff]! + HEX[low >>> 24]! + HEX[(low >>> 16) & 0xff]! + '-' +
    HEX[(low >>> 8) & 0xff]! + HEX[low & 0xff]! + '-' +
    HEX[0x70 | (counter >>> 8)]! + HEX[counter & 0xff]! + '-' +
    HEX[(r[2]! & 0x3f) | 0x80]! + HEX[r[3]!]! + '-' +
    HEX[r[4]!]! + HEX[r[5]!]! + HEX[r[6]!]! + HEX[r[7]!]! + HEX[r[8]!]! + HEX[r[9]!]!
  );
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBase62(20)}`;
}

export { randomUUID };

/**
 * The smallest UUIDv7 of millisecond `ms` (the rest of its bits zero): every id minted at `ms`
 * or later sorts at or above it, as PostgreSQL compares uuids byte by byte. Lets a range of
 * creation times be read off the events' primary key instead of an index of its own.
 */
export function uuidv7Floor(ms: number): string {
  const t = Math.max(0, Math.min(0xffff_ffff_ffff, Math.floor(ms)));
  const hex = t.toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

/**
 * How far an event's id (minted from the API process's clock just before its ingest commit) may
 * be from its created_at (that commit's time, from the same clock): a statement bounding a range
 * of creation times on the primary key widens it by this much and then checks created_at. Far
 * more than the wait for a commit, and than a clock step NTP would make.
 */
export const ID_CLOCK_MARGIN_MS = 60_000;
