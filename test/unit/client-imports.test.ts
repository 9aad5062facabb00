/**
 * The SDK runs in browsers: nothing under src/client may import Node modules or server code,
 * only its own files and src/protocol.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '../../src/client');

describe('client SDK imports', () => {
  const files = readdirSync(DIR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));

  it('has source files', () => {
    expect(files).toContain('index.ts');
  });

  it.each(files)('%s imports only ./ and ../protocol/', (file) => {
    const text = readFileSync(join(DIR, file), 'utf8');
    const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!);
    for (const spec of specifiers) expect(spec).toMatch(/^(\.\/|\.\.\/protocol\/)/);
    expect(text).not.toMatch(/\brequire\(|\bprocess\.|\bBuffer\b/);
  });
});
