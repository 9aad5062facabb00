/**
 * Serves the built web console (scripts/build-console.mjs → dist/console/) at /console.
 *
 * Only files named in the build's manifest.json are served, so nothing else that happens to live
 * in the same folder (tsc writes this plugin's own .js next to the assets) leaks out. Any other
 * path without a file extension falls back to index.html: the console routes by hash, but a
 * bookmarked /console/events must still load the app. Hashed assets are cached for a year;
 * index.html is revalidated on every load so a new build shows up at once.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { createError } from '../core/errors.js';
import { loadManifest, type ConsoleManifest, type ManifestFile } from './manifest.js';

export interface ConsolePluginOptions {
  /** Folder holding the built console; default `dist/console` under the package root. */
  assetsDir?: string;
  /**
   * WebSocket URL the console should use when the gateway is not on this origin (distributed
   * mode). Default: the page's own origin + `/ws`.
   */
  wsUrl?: string;
}

/** The package root: this file sits at src/console/plugin.ts or dist/console/plugin.js. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_ASSETS_DIR = join(PACKAGE_ROOT, 'dist', 'console');

const SECURITY_HEADERS: Record<string, string> = {
  // Everything the console needs comes from this origin; the WebSocket may be another host.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss: http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

interface Cached {
  manifest: ConsoleManifest;
  mtimeMs: number;
  bodies: Map<string, Buffer>;
}

export const consolePlugin: FastifyPluginAsync<ConsolePluginOptions> = async (app, opts) => {
  const assetsDir = resolve(opts.assetsDir ?? DEFAULT_ASSETS_DIR);
  let cache: Cached | null = null;

  /** The manifest, reloaded when a rebuild replaces it (cheap: one stat per request). */
  async function current(): Promise<Cached | null> {
    const manifestPath = join(assetsDir, 'manifest.json');
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(manifestPath)).mtimeMs;
    } catch {
      cache = null;
      return null;
    }
    if (!cache || cache.mtimeMs !== mtimeMs) {
      cache = { manifest: await loadManifest(manifestPath), mtimeMs, bodies: new Map() };
    }
    return cache;
  }

  async function body(c: Cached, name: string): Promise<Buffer> {
    let b = c.bodies.get(name);
    if (!b) {
      b = await readFile(join(assetsDir, name));
      c.bodies.set(name, b);
    }
    return b;
  }

  async function send(req: FastifyRequest, reply: FastifyReply, c: Cached, name: string, file: ManifestFile) {
    reply.header('content-type', file.type);
    reply.header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    reply.header('vary', 'accept-encoding');
    const accepted = String(req.headers['accept-encoding'] ?? '');
    const enc = file.encodings.find((e) => acceptsEncoding(accepted, e));
    // Each encoding is its own representation, so each has its own strong validator.
    const etag = enc ? `"${file.hash}-${enc}"` : `"${file.hash}"`;
    reply.header('etag', etag);
    if (matchesEtag(req.headers['if-none-match'], etag)) return reply.code(304).send();
    if (!enc) return reply.send(await body(c, name));
    reply.header('content-encoding', enc);
    return reply.send(await body(c, `${name}.${enc === 'gzip' ? 'gz' : 'br'}`));
  }

  async function serve(req: FastifyRequest, reply: FastifyReply, path: string) {
    const c = await current();
    if (!c) {
      reply.code(503).header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store');
      return reply.send('The web console has not been built. Run `npm run build` (or `node scripts/build-console.mjs`).\n');
    }
    const name = path.replace(/^\/+/, '');
    // Own properties only: `constructor` or `__proto__` must not find Object.prototype's.
    const file = name && Object.hasOwn(c.manifest.files, name) ? c.manifest.files[name] : undefined;
    if (file && name !== 'manifest.json') return send(req, reply, c, name, file);
    // A path that names a file we do not have is a real 404; anything else is an app route.
    if (/\.[A-Za-z0-9]+$/.test(name)) throw createError('NOT_FOUND', `no console asset ${name}`);
    const index = Object.hasOwn(c.manifest.files, 'index.html') ? c.manifest.files['index.html'] : undefined;
    if (!index) throw createError('NOT_FOUND', 'the console build has no index.html');
    return send(req, reply, c, 'index.html', index);
  }

  // On every answer of these routes, errors included: a 404 or 500 page is a document too.
  app.addHook('onRequest', async (_req, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  app.get('/console/config.json', async (_req, reply) => {
    reply.header('cache-control', 'no-cache');
    return { ws_url: opts.wsUrl ?? null };
  });
  // Someone who opens the server's address in a browser is looking for the console.
  app.get('/', (_req, reply) => reply.redirect('/console', 302));
  app.get('/console', (req, reply) => serve(req, reply, ''));
  app.get<{ Params: { '*': string } }>('/console/*', (req, reply) => serve(req, reply, req.params['*'] ?? ''));
};

function matchesEtag(header: string | undefined, etag: string): boolean {
  return !!header && header.split(',').some((t) => t.trim() === etag || t.trim() === '*');
}

function acceptsEncoding(header: string, enc: string): boolean {
  for (const part of header.split(',')) {
    const [token, ...params] = part.trim().split(';');
    if (token?.trim().toLowerCase() !== enc) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return !q || Number(q.slice(2)) > 0;
  }
  return false;
}

export default consolePlugin;
