/**
 * The browser bundle (scripts/build-client.mjs → dist/client/tem-client.min.js) in a real browser
 * (Debian's Chromium through playwright-core) against the embedded server: the browser's own
 * WebSocket (the default, nothing injected), subscribe, receive, ingest.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './client-server.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe.skipIf(!existsSync(CHROMIUM))('client SDK bundle in a browser', () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  let bundle: string;

  beforeAll(async () => {
    const out = execFileSync(process.execPath, ['scripts/build-client.mjs'], { cwd: ROOT, encoding: 'utf8' });
    expect(out).toMatch(/minified, .* gzipped/);
    bundle = readFileSync(join(ROOT, 'dist/client/tem-client.min.js'), 'utf8');
    s = await startServer();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage();
    // A page of the server's own origin, and the bundle served from memory next to it.
    await page.route(`${s.server.url}/tem-client.min.js`, (route) => route.fulfill({ body: bundle, contentType: 'text/javascript' }));
    await page.goto(`${s.server.url}/healthz`);
  }, 120_000);

  afterAll(async () => {
    await page?.evaluate(() => (window as unknown as { tem?: { disconnect(): void } }).tem?.disconnect()).catch(() => undefined);
    await browser?.close();
    await s?.close();
    s?.remove();
  });

  it('is small, has no Node imports, and works with the browser WebSocket', async () => {
    expect(bundle).not.toMatch(/from\s*["']node:|require\(["']/);
    const size = JSON.parse(readFileSync(join(ROOT, 'dist/client/size.json'), 'utf8')) as { minified_bytes: number; gzip_bytes: number };
    expect(size.gzip_bytes).toBeLessThan(12 * 1024); // a budget, so growth is a decision
    const key = await s.createUser('u_browser');
    await s.addMember('live:5:chat', 'u_browser');

    // A string, not a function: the test runner rewrites `import()` in functions it compiles.
    const hello = await page.evaluate(`(async () => {
      const { TemClient } = await import(location.origin + '/tem-client.min.js');
      const client = new TemClient(${JSON.stringify(s.wsUrl)}, { token: ${JSON.stringify(key)} });
      window.tem = client;
      window.got = [];
      window.states = [];
      client.on('state', (c) => window.states.push(c.newState));
      client.on('disconnected', (d) => window.states.push('disc:' + d.code + ':' + d.reason));
      client.on('error', (e) => window.states.push('err:' + e.code + ':' + e.message));
      client.connect();
      const sub = client.subscribe('live:5:chat');
      sub.on('publication', (p) => window.got.push(p.payload));
      await sub.ready(10000).catch((e) => { throw new Error(JSON.stringify(window.states)); });
      return client.connection;
    })()`);
    expect(hello).toMatchObject({ user_id: 'u_browser', resumed: false });

    await s.publish('live:5:chat', 'msg', { text: 'to the browser' });
    await expect.poll(() => page.evaluate(() => (window as unknown as { got: unknown[] }).got), { timeout: 10_000 }).toEqual([{ text: 'to the browser' }]);

    const ingested = await page.evaluate(() => (window as unknown as { tem: { ingest(e: object): Promise<{ event_id: string }> } }).tem.ingest({ type: 'browser.click', payload: { x: 1 } }));
    expect(ingested.event_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await page.evaluate(() => (window as unknown as { states: string[] }).states)).toEqual(['connecting', 'connected']);
  });
});
