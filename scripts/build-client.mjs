#!/usr/bin/env node
// Bundles the client SDK for the browser (ESM, minified) to dist/client/tem-client.min.js and
// prints its minified and gzipped sizes. platform=browser makes any Node-only import a build
// error, which keeps src/client honest.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist/client/tem-client.min.js');
mkdirSync(dirname(outfile), { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/client/index.ts'],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

const code = readFileSync(outfile);
const gzipped = gzipSync(code, { level: 9 });
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.startsWith('src/client/') && !p.startsWith('src/protocol/'));
if (inputs.length) {
  console.error(`unexpected modules in the browser bundle: ${inputs.join(', ')}`);
  process.exit(1);
}
const report = { file: 'dist/client/tem-client.min.js', minified_bytes: code.length, gzip_bytes: gzipped.length };
writeFileSync(join(root, 'dist/client/size.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(`${report.file}: ${kib(code.length)} minified, ${kib(gzipped.length)} gzipped (${code.length} / ${gzipped.length} bytes)`);
