/**
 * The console's Fastify plugin against a real build (scripts/build-console.mjs into a temp dir):
 * content types, cache headers, precompressed bodies, ETags, the SPA fallback and what it must
 * refuse to serve.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consolePlugin } from '../../src/console/plugin.js';

let dir: string;
let app: FastifyInstance;
let manifest: { files: Record<string, { type: string; immutable: boolean }> };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tem-console-'));
  execFileSync(process.execPath, ['scripts/build-console.mjs', '--outdir', dir], { stdio: 'pipe' });
  // Something else living in the folder (tsc puts plugin.js there) must never be served.
  writeFileSync(join(dir, 'plugin.js'), 'export {}');
  manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
});

afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const asset = (ext: string) => Object.keys(manifest.files).find((n) => n.endsWith(ext))!;

describe('console plugin', () => {
  beforeAll(async () => {
    app = Fastify();
    await app.register(consolePlugin, { assetsDir: dir, wsUrl: 'ws://gateway.example:8090/ws' });
    await app.ready();
  });

  it('serves index.html at /console and /console/, revalidated on every load', async () => {
    for (const url of ['/console', '/console/']) {
      const res = await app.inject({ url });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body).toContain('<div id="app">');
    }
  });

  it('sends a browser opening the server address to /console', async () => {
    const res = await app.inject({ url: '/' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/console');
  });

  it('points index.html at hashed assets that exist, with no CDN', async () => {
    const html = (await app.inject({ url: '/console' })).body;
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    for (const ref of refs) {
      expect(ref.startsWith('/console/')).toBe(true);
      expect((await app.inject({ url: ref })).statusCode).toBe(200);
    }
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('serves JS and CSS with their content types and a year of immutable caching', async () => {
    const js = await app.inject({ url: `/console/${asset('.js')}` });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const css = await app.inject({ url: `/console/${asset('.css')}` });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    const svg = await app.inject({ url: `/console/${asset('.svg')}` });
    expect(svg.headers['content-type']).toBe('image/svg+xml');
  });

  it('sends the brotli copy when accepted, and the plain file otherwise', async () => {
    const url = `/console/${asset('.js')}`;
    const plain = await app.inject({ url });
    const br = await app.inject({ url, headers: { 'accept-encoding': 'gzip, br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toContain('accept-encoding');
    expect(brotliDecompressSync(br.rawPayload).toString()).toBe(plain.body);
    const refused = await app.inject({ url, headers: { 'accept-encoding': 'br;q=0' } });
    expect(refused.headers['content-encoding']).toBeUndefined();
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const url = `/console/${asset('.css')}`;
    const first = await app.inject({ url });
    const again = await app.inject({ url, headers: { 'if-none-match': String(first.headers.etag) } });
    expect(again.statusCode).toBe(304);
  });

  it('gives each encoding of an asset its own ETag', async () => {
    const url = `/console/${asset('.js')}`;
    const plain = await app.inject({ url });
    const br = await app.inject({ url, headers: { 'accept-encoding': 'br' } });
    const gz = await app.inject({ url, headers: { 'accept-encoding': 'gzip' } });
    expect(new Set([plain.headers.etag, br.headers.etag, gz.headers.etag]).size).toBe(3);
    // The brotli copy's validator does not stand for the plain body, nor the other way round.
    expect((await app.inject({ url, headers: { 'if-none-match': String(br.headers.etag) } })).statusCode).toBe(200);
    expect((await app.inject({ url, headers: { 'accept-encoding': 'br', 'if-none-match': String(plain.headers.etag) } })).statusCode).toBe(200);
    const again = await app.inject({ url, headers: { 'accept-encoding': 'br', 'if-none-match': `"x", ${String(br.headers.etag)}` } });
    expect(again.statusCode).toBe(304);
  });

  it('falls back to index.html for app paths, but 404s for unknown files', async () => {
    const app1 = await app.inject({ url: '/console/events/123' });
    expect(app1.statusCode).toBe(200);
    expect(app1.headers['content-type']).toContain('text/html');
    expect((await app.inject({ url: '/console/nope.js' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/console/plugin.js' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/console/manifest.json' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/console/../package.json' })).statusCode).not.toBe(200);
  });

  it('serves no inherited property of the manifest as a file', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf.js']) {
      const res = await app.inject({ url: `/console/${name}` });
      // An app route (no extension) gets index.html; a file name gets 404; never a 500.
      expect(res.statusCode, name).toBe(name.includes('.') ? 404 : 200);
      if (res.statusCode === 200) expect(res.headers['content-type'], name).toBe('text/html; charset=utf-8');
    }
  });

  it('sends its security headers with errors too', async () => {
    for (const url of ['/console/nope.js', '/console/manifest.json']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(res.headers['content-security-policy'], url).toContain("default-src 'self'");
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
    }
  });

  it('tells the console where the gateway is', async () => {
    const res = await app.inject({ url: '/console/config.json' });
    expect(res.json()).toEqual({ ws_url: 'ws://gateway.example:8090/ws' });
  });

  it('says the console is not built when the folder has no manifest', async () => {
    const empty = Fastify();
    const emptyDir = mkdtempSync(join(tmpdir(), 'tem-console-empty-'));
    await empty.register(consolePlugin, { assetsDir: emptyDir });
    const res = await empty.inject({ url: '/console' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    await empty.close();
    rmSync(emptyDir, { recursive: true, force: true });
  });
});
