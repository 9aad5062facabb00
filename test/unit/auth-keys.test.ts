import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey, hashesEqual, isWellFormedKey, keyPrefix } from '../../src/auth/keys.js';

describe('API keys', () => {
  it('are tem_ + 40 base62 characters with a SHA-256 hash and an 8-character prefix', () => {
    const { key, hash, prefix } = generateApiKey();
    expect(key).toMatch(/^tem_[0-9A-Za-z]{40}$/);
    expect(hash).toBe(createHash('sha256').update(key).digest('hex'));
    expect(hash).toBe(hashApiKey(key));
    expect(prefix).toBe(key.slice(4, 12));
    expect(keyPrefix(key)).toBe(prefix);
  });

  it('are unique', () => {
    const keys = new Set(Array.from({ length: 500 }, () => generateApiKey().key));
    expect(keys.size).toBe(500);
  });

  it('are recognised by shape before any lookup', () => {
    expect(isWellFormedKey(generateApiKey().key)).toBe(true);
    expect(isWellFormedKey(`tem_${'a'.repeat(32)}`)).toBe(true);
    for (const bad of ['', 'tem_', `tem_${'a'.repeat(31)}`, `tem_${'a'.repeat(39)}!`, `TEM_${'a'.repeat(40)}`, `tem_${'a'.repeat(129)}`, `xtem_${'a'.repeat(40)}`, `tem_${'a'.repeat(40)}\n`]) {
      expect(isWellFormedKey(bad), bad).toBe(false);
    }
  });

  it('compares hashes in constant time, including different lengths', () => {
    const h = hashApiKey('tem_x');
    expect(hashesEqual(h, hashApiKey('tem_x'))).toBe(true);
    expect(hashesEqual(h, hashApiKey('tem_y'))).toBe(false);
    expect(hashesEqual(h, h.slice(1))).toBe(false);
  });
});
