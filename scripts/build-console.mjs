#!/usr/bin/env node
// Builds the web console: one esbuild bundle of src/console/web/main.ts (its CSS comes along as a
// sibling file), content-hashed names, index.html pointing at them, precompressed copies and a
// manifest.json that src/console/plugin.ts serves from. No CDN, nothing fetched at run time.
//
//   node scripts/build-console.mjs [--outdir dist/console] [--no-minify]
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outdirArg = args.indexOf('--outdir');
const outdir = resolve(outdirArg >= 0 ? args[outdirArg + 1] : join(root, 'dist', 'console'));
const minify = !args.includes('--no-minify');
const web = join(root, 'src', 'console', 'web');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json; charset=utf-8',
};
const typeOf = (name) => TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream';
const hashOf = (buf) => createHash('sha256').update(buf).digest('base64url').slice(0, 16);

mkdirSync(outdir, { recursive: true });
const previous = readPrevious();

const result = await build({
  entryPoints: { console: join(web, 'main.ts') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
  minify,
  sourcemap: 'linked',
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  outdir,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((n) => n.endsWith('.js'));
const css = outputs.find((n) => n.endsWith('.css'));
if (!js || !css) throw new Error(`console build produced no js/css: ${outputs.join(', ')}`);

const favicon = readFileSync(join(web, 'favicon.svg'));
const faviconName = `favicon-${hashOf(favicon)}.svg`;
writeFileSync(join(outdir, faviconName), favicon);

const html = readFileSync(join(web, 'index.html'), 'utf8')
  .replaceAll('%CSS%', `/console/${css}`)
  .replaceAll('%JS%', `/console/${js}`)
  .replaceAll('%FAVICON%', `/console/${faviconName}`);
writeFileSync(join(outdir, 'index.html'), html);

const files = {};
for (const name of [...outputs, faviconName, 'index.html']) {
  const buf = readFileSync(join(outdir, name));
  const encodings = [];
  if (buf.length > 1024 && !name.endsWith('.map')) {
    writeFileSync(join(outdir, `${name}.br`), brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
    writeFileSync(join(outdir, `${name}.gz`), gzipSync(buf, { level: 9 }));
    encodings.push('br', 'gzip');
  }
  files[name] = { type: typeOf(name), hash: hashOf(buf), immutable: name !== 'index.html', encodings };
}

// Drop the files of the previous build that this one no longer has (only those: tsc writes the
// plugin's own .js into the same folder).
for (const name of Object.keys(previous)) {
  if (files[name]) continue;
  for (const f of [name, `${name}.br`, `${name}.gz`]) rmSync(join(outdir, f), { force: true });
}

const manifestPath = join(outdir, 'manifest.json');
writeFileSync(`${manifestPath}.tmp`, JSON.stringify({ version: 1, builtAt: new Date().toISOString(), files }, null, 2));
renameSync(`${manifestPath}.tmp`, manifestPath);

const size = (n) => readFileSync(join(outdir, n)).length;
const gz = (n) => (existsSync(join(outdir, `${n}.gz`)) ? size(`${n}.gz`) : size(n));
const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
console.log(
  `console built in ${outdir}: ${js} ${kib(size(js))} (gzip ${kib(gz(js))}), ${css} ${kib(size(css))} (gzip ${kib(gz(css))})`,
);

function readPrevious() {
  try {
    return JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')).files ?? {};
  } catch {
    return {};
  }
}
