/**
 * API keys: `tem_` + 40 base62 characters (≈238 bits), so a plain SHA-256 is a safe way to
 * store them (no salt or slow hash needed at this entropy) and lets a key be found by its hash.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { randomBase62 } from '../core/ids.js';

export const KEY_PREFIX = 'tem_';
const KEY_BODY_LENGTH = 40;
/** Keys we issue have 40 characters after `tem_`; operator-supplied keys (TEM_ADMIN_KEY) need ≥ 32. */
const KEY_RE = /^tem_[0-9A-Za-z]{32,128}$/;

export interface GeneratedKey {
  /** The key itself: shown once, never stored. */
  key: string;
  /** SHA-256 of the key, hex: what the database keeps. */
  hash: string;
  /** First 8 characters after `tem_`, safe to show in listings. */
  prefix: string;
}

export function hashApiKey(key: string): string {
  // One-shot hash: runs on every authenticated request, and is a third of createHash's cost.
  return hash('sha256', key, 'hex');
}

export function keyPrefix(key: string): string {
  return key.slice(KEY_PREFIX.length, KEY_PREFIX.length + 8);
}

export function generateApiKey(): GeneratedKey {
  const key = KEY_PREFIX + randomBase62(KEY_BODY_LENGTH);
  return { key, hash: hashApiKey(key), prefix: keyPrefix(key) };
}

/** Shape check done before any database call, so garbage never reaches the store. */
export function isWellFormedKey(token: string): boolean {
  return KEY_RE.test(token);
}

/**
 * Constant-time comparison of two hex digests. The lookup is by hash, so this re-checks the
 * stored value against the computed one without leaking where they differ.
 */
export function hashesEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ba.length !== bb.length) return false;
  return timingSafeEqual(ba, bb);
}
