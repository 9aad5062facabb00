/**
 * The web console in a real browser (Debian's Chromium through playwright-core) against the real
 * embedded server started as a subprocess (`tem start` from source), as an operator would use it:
 * sign in, watch an event turn `processed` live, retry a failed one, watch a channel's presence.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedServer, type RunningServer } from './console-server.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe.skipIf(!existsSync(CHROMIUM))('web console in a browser', () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const sockets: WebSocket[] = [];

  const api = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown, key = server.adminKey): Promise<T> => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  };
  const ingest = async (type: string, payload: Record<string, unknown>) => (await api<{ event_id: string }>('POST', '/api/events', { type, payload })).event_id;
  const row = (id: string) => page.locator(`tr[data-id="${id}"]`);

  beforeAll(async () => {
    // The console is served from dist/console: build it (esbuild, about a second).
    execFileSync(process.execPath, ['scripts/build-console.mjs'], { cwd: ROOT, stdio: 'pipe' });
    server = await startEmbeddedServer({ processors: 'test/fixtures/console-processors.ts' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(15_000);
  }, 120_000);

  afterAll(async () => {
    for (const s of sockets) s.terminate();
    await browser?.close();
    await server?.stop();
  });

  it('signs in with an API key kept out of the URL', async () => {
    await page.goto(`${server.url}/console`);
    await expect.poll(() => page.title()).toContain('TEM console');
    // A wrong key is refused with a message, and the form stays.
    await page.getByLabel('API key').fill('tem_wrongwrongwrongwrongwrongwrongwrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
    // Keyboard only: the key field has focus again; Enter submits.
    await page.keyboard.press('Control+A');
    await page.keyboard.type(server.adminKey);
    await page.keyboard.press('Enter');
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await page.locator('.conn[data-state="connected"]').waitFor();
    expect(page.url()).not.toContain(server.adminKey);
    expect(await page.evaluate(() => sessionStorage.getItem('tem.console.key'))).toBe(server.adminKey);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
  });

  it('shows an ingested event and turns it processed live, in place, over the WebSocket', async () => {
    // Load the console afresh so its new WebSocket is the one whose frames we record.
    const frames: string[] = [];
    page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
    await page.goto('about:blank');
    await page.goto(`${server.url}/console#/events`);
    await page.getByRole('heading', { name: 'Events' }).waitFor();
    await page.locator('.conn[data-state="connected"]').waitFor();
    // Record every status a row shows, from its insertion on, to prove rows change in place.
    await page.evaluate(() => {
      const w = window as unknown as { statusLog: string[] };
      w.statusLog = [];
      new MutationObserver((records) => {
        for (const r of records) {
          if (r.type === 'attributes' && r.target instanceof HTMLTableRowElement) w.statusLog.push(`${r.target.dataset.id}:${r.oldValue}>${r.target.dataset.status}`);
          for (const n of Array.from(r.addedNodes)) if (n instanceof HTMLTableRowElement && n.dataset.id) w.statusLog.push(`${n.dataset.id}:+${n.dataset.status}`);
        }
      }).observe(document.querySelector('table.events tbody')!, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'], attributeOldValue: true });
    });

    // Ingested by the admin key, the event is the admin's own: its updates come on user:{admin}.
    // Slow enough to be seen unfinished first: the table shows what one frame's updates leave.
    const id = await ingest('test.slow', { n: 1, delay_ms: 500 });
    await row(id).locator('[data-status="processed"]').waitFor();
    await expect(row(id).locator('td').nth(1).textContent()).resolves.toBe('test.slow');
    expect(frames.some((f) => f.includes(id) && f.includes('event.update') && f.includes('"processed"'))).toBe(true);
    const log = (await page.evaluate(() => (window as unknown as { statusLog: string[] }).statusLog)).filter((l) => l.startsWith(id));
    expect(log[0]).toMatch(/:\+(accepted|queued|processing)$/);
    expect(log.at(-1)).toMatch(/>processed$/);
    expect(log.filter((l) => l.includes(':+'))).toHaveLength(1);

    // The detail page shows the history with its times.
    await row(id).getByRole('link').click();
    await page.getByRole('heading', { name: 'Status history' }).waitFor();
    const statuses = await page.locator('table.history tbody [data-status]').allTextContents();
    expect(statuses).toContain('processed');
    await expect(page.locator('pre.payload').textContent()).resolves.toContain('"n": 1');
  });

  it("follows other users' events too (polled every 2 s)", async () => {
    await api('POST', '/api/admin/principals', { id: 'svc_other', kind: 'service', role: 'service' });
    const { key } = await api<{ key: string }>('POST', '/api/admin/principals/svc_other/keys', {});
    await page.goto(`${server.url}/console#/events`);
    await page.locator('.conn[data-state="connected"]').waitFor();
    const id = (await api<{ event_id: string }>('POST', '/api/events', { type: 'test.other', payload: {} }, key)).event_id;
    await row(id).locator('[data-status="processed"]').waitFor();
    await expect(row(id).locator('td').nth(2).textContent()).resolves.toBe('svc_other');
  });

  it('inserts polled rows in order, newest first, without a forced layout per row', async () => {
    await api('POST', '/api/admin/principals', { id: 'svc_order', kind: 'service', role: 'service' });
    const { key } = await api<{ key: string }>('POST', '/api/admin/principals/svc_order/keys', {});
    await page.goto(`${server.url}/console#/events`);
    await page.locator('.conn[data-state="connected"]').waitFor();
    // Count layout reads and flashes from here on.
    await page.evaluate(() => {
      const w = window as unknown as { layoutReads: number; flashes: number };
      w.layoutReads = 0;
      w.flashes = 0;
      const width = Object.getOwnPropertyDescriptor(HTMLElement.prototype, 'offsetWidth')!;
      Object.defineProperty(HTMLElement.prototype, 'offsetWidth', {
        configurable: true,
        get(this: HTMLElement) {
          w.layoutReads++;
          return width.get!.call(this);
        },
      });
      const animate = Element.prototype.animate;
      Element.prototype.animate = function (this: Element, ...args: Parameters<Element['animate']>) {
        w.flashes++;
        return animate.apply(this, args);
      };
    });
    const events = Array.from({ length: 20 }, (_, i) => ({ type: 'test.order', payload: { i } }));
    await api('POST', '/api/events/batch', { events }, key);
    const rows = page.locator('table.events tbody tr[data-id]');
    await page.waitForFunction(() => Array.from(document.querySelectorAll('table.events tbody tr[data-id]')).filter((tr) => tr.children[1]?.textContent === 'test.order').length === 20);
    const shown = await rows.evaluateAll((trs) => trs.filter((tr) => tr.children[1]?.textContent === 'test.order').map((tr) => (tr as HTMLElement).dataset.id));
    const listed = (await api<{ data: { id: string }[] }>('GET', '/api/events?type=test.order&limit=100')).data.map((e) => e.id);
    expect(shown).toEqual(listed);
    const counts = await page.evaluate(() => {
      const w = window as unknown as { layoutReads: number; flashes: number };
      return { layoutReads: w.layoutReads, flashes: w.flashes };
    });
    expect(counts.layoutReads).toBe(0);
    expect(counts.flashes).toBeGreaterThan(0);
  });

  it('drops a table update still waiting for its frame when the view is left', async () => {
    await page.goto(`${server.url}/console#/events`);
    await page.locator('.conn[data-state="connected"]').waitFor();
    // Frames are held (not run) from here on, and cancellations noted.
    await page.evaluate(() => {
      const w = window as unknown as { held: Map<number, FrameRequestCallback>; cancelled: number[]; realRaf: typeof requestAnimationFrame; realCaf: typeof cancelAnimationFrame };
      w.held = new Map();
      w.cancelled = [];
      w.realRaf = window.requestAnimationFrame;
      w.realCaf = window.cancelAnimationFrame;
      let next = 1e6;
      window.requestAnimationFrame = (cb) => {
        w.held.set(++next, cb);
        return next;
      };
      window.cancelAnimationFrame = (h) => {
        w.cancelled.push(h);
        w.held.delete(h);
      };
    });
    await ingest('test.ok', { n: 'frame' });
    await page.waitForFunction(() => (window as unknown as { held: Map<number, unknown> }).held.size > 0);
    await page.evaluate(() => (location.hash = '#/failed'));
    await page.getByRole('heading', { name: 'Failed' }).waitFor();
    const left = await page.evaluate(() => {
      const w = window as unknown as { held: Map<number, FrameRequestCallback>; cancelled: number[]; realRaf: typeof requestAnimationFrame; realCaf: typeof cancelAnimationFrame };
      window.requestAnimationFrame = w.realRaf;
      window.cancelAnimationFrame = w.realCaf;
      const cancelled = w.cancelled.length;
      for (const cb of w.held.values()) requestAnimationFrame(cb);
      return cancelled;
    });
    expect(left).toBeGreaterThan(0);
  });

  it('polls only with filters the server accepts', async () => {
    await page.goto(`${server.url}/console#/events`);
    await page.getByRole('heading', { name: 'Events' }).waitFor();
    const refused: string[] = [];
    const onResponse = (r: { url(): string; status(): number }) => {
      if (r.url().includes('/api/events') && r.status() === 400) refused.push(r.url());
    };
    page.on('response', onResponse);
    try {
      await page.getByLabel('Type').fill('not a type!');
      await page.getByRole('alert').filter({ hasText: 'Could not load events' }).waitFor();
      // Two polls' worth: the refused filter was asked for once, by the load that showed the error.
      await page.waitForTimeout(4500);
      expect(refused).toHaveLength(1);
    } finally {
      page.off('response', onResponse);
      await page.getByLabel('Type').fill('');
    }
  });

  it('filters the stream by status without losing live updates', async () => {
    await page.goto(`${server.url}/console#/events`);
    await page.getByLabel('Status').selectOption('failed');
    const okId = await ingest('test.ok', { n: 2 });
    const failId = await ingest('test.fail', { reason: 'filter' });
    await row(failId).locator('[data-status="failed"]').waitFor();
    expect(await row(okId).count()).toBe(0);
    await page.getByLabel('Status').selectOption('');
  });

  it('lists a failed event in the failed set and requeues it with Retry', async () => {
    const id = await ingest('test.fail', { fail_once: true, reason: 'retry me' });
    await page.goto(`${server.url}/console#/failed`);
    await page.getByRole('heading', { name: 'Failed events' }).waitFor();
    await row(id).locator('[data-status="failed"]').waitFor();
    await row(id).getByRole('button', { name: `Retry event ${id}` }).click();
    // Requeued, then processed by the fixture on its second run — all live, in the same row.
    await row(id).locator('[data-status="processed"]').waitFor();
    const detail = await api<{ history: { status: string }[]; attempts: number }>('GET', `/api/events/${id}`);
    const seq = detail.history.map((h) => h.status);
    expect(seq.indexOf('failed')).toBeGreaterThanOrEqual(0);
    expect(seq.lastIndexOf('queued')).toBeGreaterThan(seq.indexOf('failed'));
    expect(seq.at(-1)).toBe('processed');
  });

  it('lists more than two pages of events with Load older', async () => {
    const events = Array.from({ length: 301 }, (_, i) => ({ type: 'test.many', payload: { i } }));
    expect((await api<{ results: unknown[] }>('POST', '/api/events/batch', { events })).results).toHaveLength(301);
    await page.goto(`${server.url}/console#/events`);
    await page.getByLabel('Type').fill('test.many');
    const rows = page.locator('table.events tbody tr[data-id]');
    const more = page.getByRole('button', { name: 'Load older' });
    const count = () => rows.count();
    await page.waitForFunction(() => document.querySelectorAll('table.events tbody tr[data-id]').length >= 100, undefined, { timeout: 15_000 });
    // The table shows 200 rows at first (some may have arrived by polling); each click adds 100.
    for (let i = 0; i < 6 && (await count()) < 301; i++) {
      await more.waitFor({ state: 'visible', timeout: 15_000 });
      const before = await count();
      await more.click();
      // More rows, or all of them (a poll may have brought the last ones in meanwhile).
      await page.waitForFunction((b) => {
        const n = document.querySelectorAll('table.events tbody tr[data-id]').length;
        return n > b || n >= 301;
      }, before, { timeout: 15_000 });
    }
    expect(await rows.count()).toBe(301);
  });

  it('asks before retrying every failed event, and the question goes away when answered', async () => {
    await page.goto(`${server.url}/console#/failed`);
    await page.getByRole('heading', { name: 'Failed events' }).waitFor();
    const confirm = page.locator('.confirm');
    expect(await confirm.isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Retry all matching…' }).click();
    expect(await confirm.isVisible()).toBe(true);
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    expect(await confirm.isVisible()).toBe(false);
  });

  it("shows a second client's presence and the channel's messages", async () => {
    const channel = 'live:console:chat';
    // Allowed on the `live` namespace by permission (membership would do as well).
    await api('POST', '/api/admin/principals', { id: 'u_console_watch', kind: 'user', role: 'user', extra_permissions: ['channels.subscribe.live'] });
    const { key } = await api<{ key: string }>('POST', '/api/admin/principals/u_console_watch/keys', {});

    await page.goto(`${server.url}/console#/channels/${encodeURIComponent(channel)}`);
    await page.getByText(`Watching ${channel}`).waitFor();

    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/ws`);
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify({ type: 'HELLO', id: 1, payload: { token: key } })));
      ws.on('message', (raw) => {
        const f = JSON.parse(String(raw)) as { type: string; ref?: number; payload: Record<string, unknown> };
        if (f.type === 'HELLO_ACK') ws.send(JSON.stringify({ type: 'SUBSCRIBE', id: 2, payload: { channels: [channel] } }));
        else if (f.type === 'SUBSCRIBED') resolve();
        else if (f.type === 'ERROR') reject(new Error(JSON.stringify(f.payload)));
      });
      ws.once('error', reject);
    });

    await page.locator('tr[data-user="u_console_watch"] [data-presence="online"]').waitFor();
    // A processed event with a channel is delivered there (contract §2).
    await api('POST', '/api/events', { type: 'chat.message', payload: { text: 'hello from the test' }, channel });
    await page.locator('ol.messages li', { hasText: 'hello from the test' }).waitFor();

    // A pattern spans channels: its messages, and no presence error.
    await page.goto(`${server.url}/console#/channels/${encodeURIComponent('live:*')}`);
    await page.getByText('Watching live:*').waitFor();
    await page.getByText('Presence is kept per channel').waitFor();
    await api('POST', '/api/events', { type: 'chat.message', payload: { text: 'hello to the pattern' }, channel });
    await page.locator('ol.messages li', { hasText: 'hello to the pattern' }).waitFor();
    expect(await page.getByText('Presence unavailable').count()).toBe(0);
  });

  it('creates a key shown once, and revokes it', async () => {
    await api('POST', '/api/admin/principals', { id: 'svc_console', kind: 'service', role: 'service' });
    await page.goto(`${server.url}/console#/admin/keys/svc_console`);
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = await page.getByLabel('New API key').inputValue();
    expect(shown).toMatch(/^tem_[A-Za-z0-9]{32,}$/);
    const keys = await api<{ data: { key_id: string }[] }>('GET', '/api/admin/principals/svc_console/keys');
    expect(keys.data).toHaveLength(1);
    const keyId = keys.data[0]!.key_id;
    await page.getByRole('button', { name: `Revoke key ${keyId}` }).click();
    await page.locator(`tr[data-id="${keyId}"]`, { hasText: 'revoked' }).waitFor();
    const res = await fetch(`${server.url}/api/events`, { headers: { 'x-api-key': shown } });
    expect(res.status).toBe(401);
  });

  it('does not offer to save a role it could not read', async () => {
    const route = '**/api/admin/roles/service';
    const problem = { type: 'about:blank', title: 'Service Unavailable', status: 503, code: 'UNAVAILABLE', detail: 'the database is not answering' };
    await page.route(route, (r) => r.fulfill({ status: 503, contentType: 'application/problem+json', body: JSON.stringify(problem) }));
    const save = page.getByRole('button', { name: 'Save' });
    const text = page.getByLabel('Permissions (JSON array)');
    try {
      await page.goto(`${server.url}/console#/admin/roles/service`);
      await page.getByRole('alert').filter({ hasText: 'Could not read role service' }).waitFor();
      expect(await save.isDisabled()).toBe(true);
      expect(await text.inputValue()).toBe('');
    } finally {
      await page.unroute(route);
    }
    await page.getByRole('button', { name: 'Reload' }).click();
    await expect.poll(() => save.isEnabled()).toBe(true);
    const role = await api<{ permissions: string[] }>('GET', '/api/admin/roles/service');
    expect(JSON.parse(await text.inputValue())).toEqual(role.permissions);
  });

  it('lists principals a page at a time with Load more', async () => {
    for (let i = 0; i < 100; i++) await api('POST', '/api/admin/principals', { id: `u_page_${String(i).padStart(3, '0')}`, kind: 'user' });
    const total = (await api<{ data: unknown[] }>('GET', '/api/admin/principals?limit=1000')).data.length;
    expect(total).toBeGreaterThan(100);
    await page.goto(`${server.url}/console#/admin/principals`);
    const rows = page.locator('table.admin tbody tr[data-id]');
    await expect.poll(() => rows.count()).toBe(100);
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(() => rows.count()).toBe(total);
    await page.getByRole('button', { name: 'Load more' }).waitFor({ state: 'hidden' });
  });

  it('labels every form control on every page', async () => {
    for (const route of ['events', 'overview', 'failed', 'channels/live%3Aconsole%3Achat', 'admin/principals', 'admin/keys/svc_console', 'admin/roles/service']) {
      await page.goto(`${server.url}/console#/${route}`);
      await page.locator('main h1').waitFor();
      await page.waitForTimeout(300);
      const unlabelled = await page.evaluate(() =>
        Array.from(document.querySelectorAll('main input, main select, main textarea'))
          .filter((el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute('aria-label'))
          .map((el) => el.outerHTML),
      );
      expect(unlabelled, route).toEqual([]);
    }
  });

  it('goes back to sign-in when its key is revoked', async () => {
    await api('POST', '/api/admin/principals', { id: 'ops_console', kind: 'service', role: 'admin' });
    const created = await api<{ key: string; key_id: string }>('POST', '/api/admin/principals/ops_console/keys', {});
    const other = await browser.newPage();
    try {
      await other.goto(`${server.url}/console`);
      await other.getByLabel('API key').fill(created.key);
      await other.getByLabel('API key').press('Enter');
      await other.locator('.conn[data-state="connected"]').waitFor({ timeout: 15_000 });
      await api('DELETE', `/api/admin/keys/${created.key_id}`);
      // The gateway closes the socket (4001) within seconds, or the next API call gets 401.
      await other.getByText('Sign in again').waitFor({ timeout: 15_000 });
      expect(await other.evaluate(() => sessionStorage.getItem('tem.console.key'))).toBeNull();
    } finally {
      await other.close();
    }
  });

  it('saves a screenshot of the main view', async () => {
    for (let i = 0; i < 6; i++) await ingest(i % 3 === 2 ? 'test.fail' : `demo.${['order.created', 'payment.success'][i % 2]}`, { i });
    await page.goto(`${server.url}/console#/events`);
    await page.locator('.conn[data-state="connected"]').waitFor();
    await page.locator('.pill[data-metric="database"]').waitFor();
    await expect.poll(() => page.locator('table.events tbody tr[data-id]').count()).toBeGreaterThanOrEqual(6);
    await page.waitForTimeout(1500); // let row flashes fade
    // The picture in the docs is refreshed on request (UPDATE_SCREENSHOT=1), so a test run does
    // not rewrite a tracked file; otherwise it goes to a temporary directory.
    const dir = process.env.UPDATE_SCREENSHOT === '1' ? join(ROOT, 'docs') : mkdtempSync(join(tmpdir(), 'tem-console-'));
    mkdirSync(dir, { recursive: true });
    const shot = join(dir, 'console.png');
    await page.screenshot({ path: shot, fullPage: false });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
  });

  it('signs out and forgets the key', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('tem.console.key'))).toBeNull();
  });
});
