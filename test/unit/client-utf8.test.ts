import { describe, expect, it } from 'vitest';
import { utf8Length } from '../../src/client/utf8.js';

describe('utf8Length', () => {
  it('counts what the string weighs in UTF-8, as Node encodes it', () => {
    for (const s of ['', 'plain ascii', 'é', '€ and ü', '😀', 'a😀b€c', JSON.stringify({ text: '日本語 🎉', n: 1 }), '\u07ff\u0800\uffff']) {
      expect(utf8Length(s), s).toBe(Buffer.byteLength(s, 'utf8'));
    }
  });
});
