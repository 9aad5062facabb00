/**
 * The embedded server and the CLI as a user runs them: `tem start` as a child process on PGlite,
 * admin commands as further processes talking to it over HTTP with its admin.key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killAll, runTem, spawnTem, type TemProcess } from '../helpers/processes.js';

let dataDir: string;
let server: TemProcess;
let url: string;
let env: Record<string, string>;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tem-cli-'));
  // `test.fail` events fail at once (non-retryable), for the retry commands; the rest are processed.
  server = spawnTem(['start'], { TEM_DATA_DIR: dataDir, TEM_HTTP_PORT: '0', TEM_INTERNAL_PORT: undefined, DATABASE_URL: undefined, REDIS_URL: undefined, TEM_ADMIN_KEY: undefined, TEM_PROCESSORS: 'test/fixtures/console-processors.ts' });
  const listening = await server.waitForLog('listening', 90_000);
  url = String(listening.url);
  // Admin commands find the key in the data dir, like a user next to their embedded server.
  env = { TEM_DATA_DIR: dataDir, TEM_URL: url, TEM_API_KEY: undefined as unknown as string, TEM_ADMIN_KEY: undefined as unknown as string };
}, 120_000);

afterAll(async () => {
  await server?.stop();
  killAll();
});

describe('embedded server', () => {
  it('writes admin.key with mode 0600 and logs its path, never the key', () => {
    const keyPath = join(dataDir, 'admin.key');
    const key = readFileSync(keyPath, 'utf8').trim();
    expect(key).toMatch(/^tem_[0-9A-Za-z]{32,}$/);
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    expect(server.output()).toContain(keyPath);
    expect(server.output()).not.toContain(key);
  });

  it('logs one listening line with the URLs it serves', () => {
    // The only line saying "listening" at all, so a loose match finds this one too.
    const lines = server.output().split('\n').filter((l) => /listening/i.test(l));
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as Record<string, string>;
    expect(line.msg).toBe('listening');
    expect(line.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Public port 0 and no internal port given: the internal listener took a free port as well.
    expect(line.internal).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(line.internal).not.toMatch(/:8081$/);
    expect(line.ws).toMatch(/^ws:\/\/.*\/ws$/);
    expect(line.console).toMatch(/\/console$/);
  });

  it('ingests and processes an event end to end', async () => {
    const key = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    const res = await fetch(`${url}/api/events`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'cli.test', payload: { n: 1 } }),
    });
    expect(res.status).toBe(202);
    const { event_id } = (await res.json()) as { event_id: string };
    let status = '';
    for (let i = 0; i < 100 && status !== 'processed'; i++) {
      const ev = (await (await fetch(`${url}/api/events/${event_id}`, { headers: { 'x-api-key': key } })).json()) as { status: string };
      status = ev.status;
      if (status !== 'processed') await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe('processed');
  });
});

describe('tem CLI against the running server', () => {
  it('creates principals and keys, lists and revokes them, with --json for scripts', async () => {
    const created = await runTem(['principals', 'create', 'svc_cli', '--kind', 'service', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ id: 'svc_cli', kind: 'service', role: 'service' });
    const generated = await runTem(['principals', 'create', '--kind', 'user', '--json'], env);
    expect(generated.code, generated.stderr).toBe(0);
    expect(JSON.parse(generated.stdout)).toMatchObject({ id: expect.stringMatching(/^u_/), kind: 'user', role: 'user' });

    const key = await runTem(['keys', 'create', 'svc_cli', '--json'], env);
    expect(key.code, key.stderr).toBe(0);
    const { key: secret, key_id } = JSON.parse(key.stdout) as { key: string; key_id: string };
    expect(secret).toMatch(/^tem_/);

    const ok = await fetch(`${url}/api/events?limit=1`, { headers: { 'x-api-key': secret } });
    expect(ok.status).toBe(200);

    // Target and output options work before the command too.
    const listed = await runTem(['--json', '--url', url, 'keys', 'list', 'svc_cli'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(secret);
    expect(JSON.parse(listed.stdout).data.map((k: { id: string }) => k.id)).toContain(key_id);

    const revoked = await runTem(['keys', 'revoke', key_id], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    const after = await fetch(`${url}/api/events?limit=1`, { headers: { 'x-api-key': secret } });
    expect(after.status).toBe(401);

    const table = await runTem(['principals', 'list'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+KIND\s+ROLE/m);
    expect(table.stdout).toContain('svc_cli');
    // Its reader gone (`| head -1`): a quiet exit 0, no EPIPE stack trace.
    const headless = await runTem(['principals', 'list'], env, 60_000, { closeStdout: true });
    expect(headless.stderr).toBe('');
    expect(headless.code).toBe(0);

    // One page at a time, with the cursor of the next printed under the table.
    const paged = await runTem(['principals', 'list', '--kind', 'service', '--limit', '1'], env);
    expect(paged.code, paged.stderr).toBe(0);
    const next = /^next: --cursor (\S+)$/m.exec(paged.stdout)?.[1];
    expect(next).toBeTruthy();
    const rest = await runTem(['principals', 'list', '--kind', 'service', '--cursor', next!, '--json'], env);
    expect(rest.code, rest.stderr).toBe(0);
    const ids = JSON.parse(rest.stdout).data.map((p: { id: string }) => p.id) as string[];
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.every((id) => id > next!)).toBe(true);
  });

  it('shows, sets roles and lists events', async () => {
    const set = await runTem(['roles', 'set', 'auditor', 'events.get.*', 'common.*', '--json'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout).permissions).toEqual(['events.get.*', 'common.*']);
    const shown = await runTem(['roles', 'show', 'auditor', '--json'], env);
    expect(JSON.parse(shown.stdout).permissions).toEqual(['events.get.*', 'common.*']);
    const events = await runTem(['events', 'list', '--json', '--type', 'cli.test'], env);
    expect(events.code, events.stderr).toBe(0);
    expect(JSON.parse(events.stdout).data.length).toBeGreaterThan(0);
    const table = await runTem(['events', 'list', '--type', 'cli.test'], env);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+TYPE\s+STATUS\s+USER_ID\s+ATTEMPTS\s+CREATED_AT\s+LAST_ERROR$/);
  });

  it('retries a failed event by id, and failed events in bulk by type', async () => {
    const key = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    const post = async (payload: Record<string, unknown>) => {
      const res = await fetch(`${url}/api/events`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'test.fail', payload }) });
      expect(res.status).toBe(202);
      return ((await res.json()) as { event_id: string }).event_id;
    };
    const statusOf = async (id: string) => ((await (await fetch(`${url}/api/events/${id}`, { headers: { 'x-api-key': key } })).json()) as { status: string }).status;
    const until = async (ids: string[], status: string) => {
      for (let i = 0; i < 100; i++) {
        if ((await Promise.all(ids.map(statusOf))).every((s) => s === status)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`not all ${status}: ${(await Promise.all(ids.map(statusOf))).join(', ')}`);
    };
    // fail_once: the first run fails, the run after a retry succeeds.
    const one = await post({ fail_once: true });
    const many = [await post({ fail_once: true }), await post({ fail_once: true })];
    await until([one, ...many], 'failed');

    const single = await runTem(['events', 'retry', one], env);
    expect(single.code, single.stderr).toBe(0);
    expect(single.stdout.trim()).toBe(`requeued ${one}`);
    await until([one], 'processed');

    // One event per request: the command pages through them all.
    const bulk = await runTem(['events', 'retry', '--all', '--type', 'test.fail', '--page', '1', '--json'], env);
    expect(bulk.code, bulk.stderr).toBe(0);
    expect(JSON.parse(bulk.stdout)).toEqual({ count: 2, retried: many });
    await until(many, 'processed');
    // Nothing failed is left: a second bulk retry requeues none.
    const again = await runTem(['events', 'retry', '--all', '--type', 'test.fail'], env);
    expect(again.stdout.trim()).toBe('requeued 0 event(s)');
    const badPage = await runTem(['events', 'retry', '--all', '--page', '0'], env);
    expect(badPage.code).toBe(2);
    expect(badPage.stderr).toMatch(/--page/);
  }, 60_000);

  it('fails with one clear line and a non-zero exit code', async () => {
    const missing = await runTem(['events', 'show', '00000000-0000-7000-8000-000000000000'], env);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/404/);
    // With --json the failure is JSON too: the server's problem, under `error`.
    const missingJson = await runTem(['events', 'show', '00000000-0000-7000-8000-000000000000', '--json'], env);
    expect(missingJson.code).not.toBe(0);
    expect(missingJson.stdout).toBe('');
    expect(JSON.parse(missingJson.stderr)).toMatchObject({ error: { status: 404, code: 'NOT_FOUND', message: expect.stringMatching(/404/) } });

    const retryWithoutTarget = await runTem(['events', 'retry'], env);
    expect(retryWithoutTarget.code).not.toBe(0);
    expect(retryWithoutTarget.stderr).toMatch(/--all/);
    const retryProcessed = await runTem(['events', 'retry', '--all', '--status', 'processed'], env);
    expect(retryProcessed.code).not.toBe(0);
    expect(retryProcessed.stderr).toMatch(/only failed events/);

    // An event id and bulk filters at once would silently drop the filters.
    const both = await runTem(['events', 'retry', '00000000-0000-7000-8000-000000000000', '--all'], env);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/not both/);

    const unreachable = await runTem(['principals', 'list', '--url', 'http://127.0.0.1:1'], env);
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.stderr).toMatch(/cannot reach/);
    // A server that takes the connection and never answers: the deadline, not undici's 5 minutes.
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const started = Date.now();
      const hung = await runTem(['--timeout', '1', 'principals', 'list', '--url', silentUrl], env);
      expect(hung.code).toBe(1);
      expect(hung.stderr.trim()).toBe(`tem: ${silentUrl} did not answer GET /api/admin/principals?limit=100 within 1 s (--timeout)`);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      silent.close();
    }
    expect((await runTem(['principals', 'list', '--timeout', 'soon'], env)).code).toBe(2);
    expect((await runTem(['principals', 'list', '--timeout', '0'], env)).stderr).toMatch(/from 0.001 to 86400/);

    // Another service on that address: a page or a JSON answer of another shape is a failure.
    const other = createHttpServer((req, res) => {
      const json = req.url?.startsWith('/api/events');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'text/html' }).end(json ? '{"items":[]}' : '<html>hi</html>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
      for (const args of [['principals', 'list'], ['principals', 'list', '--json'], ['events', 'list']]) {
        const answer = await runTem([...args, '--url', otherUrl, '--key', 'x'], env);
        expect(answer.code).toBe(1);
        expect(answer.stderr).toMatch(/is --url a tem server\?/);
        expect(answer.stdout).toBe('');
      }
    } finally {
      other.close();
    }

    const notUrl = await runTem(['principals', 'list', '--url', 'not-a-url'], env);
    expect(notUrl.code).toBe(2);
    expect(notUrl.stderr.trim()).toBe('tem: --url is not a URL: "not-a-url" (e.g. http://127.0.0.1:8080)');

    // A usage error is one JSON object on stderr with --json, as every other failure.
    const usage = await runTem(['keys', 'revoke', '--json'], env);
    expect(usage.code).not.toBe(0);
    expect(JSON.parse(usage.stderr)).toEqual({ error: { message: "missing required argument 'key_id'" } });
    // Without --json, one line too, the hint on it.
    const plain = await runTem(['keys', 'revoke'], env);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toBe("tem: missing required argument 'key_id' (run with --help for usage)\n");

    // A key no header can carry: a usage error naming where it came from, never the key itself.
    const unsendable = await runTem(['principals', 'list', '--key', 'tem_secretSECRET\nsecret'], env);
    expect(unsendable.code).toBe(2);
    expect(unsendable.stderr).toBe('tem: the API key from --key is not a valid key (printable ASCII, no spaces)\n');
    // Under --json, a bad setting is one JSON object too.
    const badSetting = await runTem(['principals', 'list', '--json'], { ...env, TEM_URL: undefined, TEM_HTTP_PORT: 'eighty' });
    expect(badSetting.code).toBe(2);
    expect(JSON.parse(badSetting.stderr)).toEqual({ error: { message: expect.stringMatching(/^invalid setting TEM_HTTP_PORT/) } });

    const badKey = await runTem(['principals', 'list', '--key', 'tem_nope'], env);
    expect(badKey.code).not.toBe(0);
    expect(badKey.stderr).toMatch(/401/);

    // The kind has no default (it picks the role): without it, a usage error and nothing created.
    const noKind = await runTem(['principals', 'create', 'u_nokind'], env);
    expect(noKind.code).toBe(2);
    expect(noKind.stderr).toMatch(/--kind/);
    const badKind = await runTem(['principals', 'create', 'u_badkind', '--kind', 'robot'], env);
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toMatch(/--kind.*robot|robot.*--kind/);
    const shown = await fetch(`${url}/api/admin/principals/u_nokind`, { headers: { 'x-api-key': readFileSync(join(dataDir, 'admin.key'), 'utf8').trim() } });
    expect(shown.status).toBe(404);

    const unknown = await runTem(['frobnicate'], env);
    expect(unknown.code).toBe(2);
    const enableAndDisable = await runTem(['principals', 'update', 'u_x', '--disable', '--enable'], env);
    expect(enableAndDisable.code).toBe(2);
    expect(enableAndDisable.stderr).toMatch(/--disable.*cannot be used with.*--enable/);
    expect((await runTem(['--version'], env)).code).toBe(0);
    expect((await runTem(['principals', '--help'], env)).code).toBe(0);

    // A command group without its command: help on stderr, exit 2; under --json one JSON object.
    const group = await runTem(['principals'], env);
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/^Usage: tem principals/);
    const groupJson = await runTem(['principals', '--json'], env);
    expect(groupJson.code).toBe(2);
    expect(JSON.parse(groupJson.stderr)).toEqual({ error: { message: 'a command is needed: tem principals [options] [command]' } });
    // The retry command's own usage checks are usage errors too, sending nothing.
    for (const args of [['events', 'retry'], ['events', 'retry', 'evt', '--type', 'x'], ['events', 'retry', '--all', '--status', 'processed']]) {
      const r = await runTem(args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^tem: (give an event id|only failed events)/);
    }
  });

  it('stops start-up with a message naming a bad setting', async () => {
    const bad = await runTem(['start'], { TEM_DATA_DIR: dataDir, TEM_HTTP_PORT: 'eighty' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/TEM_HTTP_PORT/);
  });

  it('names admin.key when the file does not hold a key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-badkey-'));
    writeFileSync(join(dir, 'admin.key'), 'tem_cut');
    const bad = await runTem(['start'], { TEM_DATA_DIR: dir, TEM_HTTP_PORT: '0', TEM_INTERNAL_PORT: undefined, DATABASE_URL: undefined, REDIS_URL: undefined, TEM_ADMIN_KEY: undefined }, 90_000);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe(`tem: invalid setting ${join(dir, 'admin.key')}: does not hold an admin key (tem_ followed by at least 32 base62 characters); delete it and a new key is made at the next start`);
    expect(existsSync(join(dir, 'tem.lock'))).toBe(false);
  }, 120_000);

  it('names the setting when the port is taken or the host is not this machine', async () => {
    const port = new URL(url).port;
    const busy = await runTem(['start'], { TEM_DATA_DIR: mkdtempSync(join(tmpdir(), 'tem-cli-busy-')), TEM_HTTP_PORT: port, TEM_INTERNAL_PORT: '0', DATABASE_URL: undefined as unknown as string, TEM_ADMIN_KEY: undefined as unknown as string });
    expect(busy.code).toBe(2);
    expect(busy.stderr.trim()).toMatch(new RegExp(`^tem: TEM_HTTP_PORT=${port}: .* already in use`));
    const host = await runTem(['start'], { TEM_DATA_DIR: mkdtempSync(join(tmpdir(), 'tem-cli-host-')), TEM_HTTP_HOST: 'no-such-host.invalid', TEM_HTTP_PORT: '0', DATABASE_URL: undefined as unknown as string, TEM_ADMIN_KEY: undefined as unknown as string });
    expect(host.code).toBe(2);
    expect(host.stderr.trim()).toMatch(/^tem: TEM_HTTP_HOST=no-such-host.invalid: no such host$/);
    // Both listeners given one port: the message names the two settings, not another server.
    const free = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = probe.address() as AddressInfo;
        probe.close(() => resolve(p));
      });
    });
    const same = await runTem(['start'], { TEM_DATA_DIR: mkdtempSync(join(tmpdir(), 'tem-cli-same-')), TEM_HTTP_PORT: String(free), TEM_INTERNAL_PORT: String(free), DATABASE_URL: undefined as unknown as string, TEM_ADMIN_KEY: undefined as unknown as string });
    expect(same.code).toBe(2);
    expect(same.stderr.trim()).toBe(`tem: TEM_INTERNAL_PORT=${free}: the same port as TEM_HTTP_PORT; each listener needs its own (or 0 for a free one)`);
  }, 90_000);

  it('finds the server next to its data directory without --url, even on a port picked at start', async () => {
    const local = { TEM_DATA_DIR: dataDir, TEM_HTTP_PORT: undefined as unknown as string, TEM_URL: undefined as unknown as string, TEM_API_KEY: undefined as unknown as string, TEM_ADMIN_KEY: undefined as unknown as string };
    const listed = await runTem(['principals', 'list', '--json'], local);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).data.map((p: { id: string }) => p.id)).toContain('admin');
  });

  it('refuses to open the embedded database a running server holds', async () => {
    const second = await runTem(['migrate'], { TEM_DATA_DIR: dataDir, DATABASE_URL: undefined as unknown as string });
    // Not a usage error or a bad setting (2): the directory is busy.
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/^tem: the embedded database in .* is in use by process \d+; stop it first/);
  });

  it('refuses distributed roles without DATABASE_URL', async () => {
    const api = await runTem(['api'], { DATABASE_URL: undefined as unknown as string });
    expect(api.code).not.toBe(0);
    expect(api.stderr).toMatch(/DATABASE_URL/);
  });
});

describe('shutdown', () => {
  it('stops taking events at once, then finishes the job in hand and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-drain-'));
    const slow = spawnTem(['start'], { TEM_DATA_DIR: dir, TEM_HTTP_PORT: '0', TEM_INTERNAL_PORT: '0', TEM_PROCESSORS: 'test/fixtures/processors-slow.ts', DATABASE_URL: undefined, REDIS_URL: undefined, TEM_ADMIN_KEY: undefined });
    const at = String((await slow.waitForLog('listening', 90_000)).url);
    const key = readFileSync(join(dir, 'admin.key'), 'utf8').trim();
    const post = () =>
      fetch(`${at}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ type: 'slow.job', payload: { ms: 3000 } }) });
    const first = await post();
    expect(first.status).toBe(202);
    const { event_id } = (await first.json()) as { event_id: string };
    const status = async () => ((await (await fetch(`${at}/api/events/${event_id}`, { headers: { 'x-api-key': key } })).json()) as { status: string }).status;
    for (let i = 0; i < 100 && (await status()) !== 'processing'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await status()).toBe('processing');
    const stopped = slow.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    // Draining: no new event is taken (the listener is closed, or answers 503).
    const refused = await post().then(
      (r) => r.status,
      () => 'closed',
    );
    expect(refused === 'closed' || refused === 503).toBe(true);
    expect(await stopped).toBe(0);
    // The job in hand was finished, not left behind.
    expect(slow.output()).toMatch(/"msg":"stopped"/);
    const after = spawnTem(['start'], { TEM_DATA_DIR: dir, TEM_HTTP_PORT: '0', TEM_INTERNAL_PORT: '0', DATABASE_URL: undefined, REDIS_URL: undefined, TEM_ADMIN_KEY: undefined });
    const again = String((await after.waitForLog('listening', 90_000)).url);
    const shown = (await (await fetch(`${again}/api/events/${event_id}`, { headers: { 'x-api-key': key } })).json()) as { status: string; attempts: number };
    expect(shown).toMatchObject({ status: 'processed', attempts: 1 });
    expect(await after.stop('SIGTERM')).toBe(0);
  }, 120_000);

  it('exits 0 on SIGTERM while still starting, once started, and leaves no lock behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-early-'));
    // Its processors take 3 s to load: a signal after the database opened lands mid-start.
    const early = spawnTem(['start'], { TEM_DATA_DIR: dir, TEM_HTTP_PORT: '0', TEM_INTERNAL_PORT: undefined, DATABASE_URL: undefined, REDIS_URL: undefined, TEM_ADMIN_KEY: undefined, TEM_PROCESSORS: 'test/fixtures/processors-slow-to-load.ts' });
    await early.waitForLog('admin key file', 90_000);
    const code = await early.stop('SIGTERM', 60_000);
    expect(code).toBe(0);
    expect(early.output()).toMatch(/"msg":"signal received while starting"/);
    expect(early.output()).toMatch(/"msg":"stopped"/);
    expect(existsSync(join(dir, 'tem.lock'))).toBe(false);
  }, 120_000);

  it('stops gracefully on SIGHUP (a closed terminal), as on SIGTERM, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-hup-'));
    const hup = spawnTem(['start'], { TEM_DATA_DIR: dir, TEM_HTTP_PORT: '0', TEM_INTERNAL_PORT: '0', DATABASE_URL: undefined, REDIS_URL: undefined, TEM_ADMIN_KEY: undefined });
    await hup.waitForLog('listening', 90_000);
    expect(await hup.stop('SIGHUP', 60_000)).toBe(0);
    expect(hup.output()).toMatch(/"signal":"SIGHUP"[^\n]*"msg":"shutting down"/);
    expect(hup.output()).toMatch(/"msg":"stopped"/);
    expect(existsSync(join(dir, 'tem.lock'))).toBe(false);
  }, 120_000);

  it('holds a SIGTERM that arrives while bin/tem.js is still loading the code, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-load-'));
    const env: NodeJS.ProcessEnv = { ...process.env, TEM_DATA_DIR: dir, TEM_HTTP_PORT: '0', TEM_INTERNAL_PORT: '0', TEM_LOG_LEVEL: 'info', TEM_CONFIG: '' };
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'TEM_ADMIN_KEY']) delete env[name];
    const bin = fileURLToPath(new URL('../../bin/tem.js', import.meta.url));
    // Says on stderr when the first SIGTERM listener is added (bin/tem.js's hold, before a line
    // of the server's code has loaded), so the signal lands in that window and no other.
    const announce = join(dir, 'announce.cjs');
    writeFileSync(announce, `const on = process.on; let told = false;
process.on = function (name, ...rest) { const r = on.call(this, name, ...rest); if (name === 'SIGTERM' && !told) { told = true; process.stderr.write('SIGTERM-LISTENER ' + (new Error().stack.includes('bin/tem.js') ? 'bin' : 'later') + '\\n'); } return r; };`);
    const proc = spawn(process.execPath, ['--require', announce, bin, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const told = new Promise<void>((resolve) => {
      proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
      proc.stderr.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('SIGTERM-LISTENER')) resolve();
      });
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    try {
      await told;
      expect(out).toMatch(/SIGTERM-LISTENER bin/);
      expect(out).not.toMatch(/listening/);
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    expect(out).toMatch(/"msg":"signal received while starting"/);
    expect(existsSync(join(dir, 'tem.lock'))).toBe(false);
  }, 120_000);

  it('exits 0 on SIGTERM', async () => {
    expect(existsSync(join(dataDir, 'server.json'))).toBe(true);
    const code = await server.stop('SIGTERM');
    expect(code).toBe(0);
    expect(server.output()).toMatch(/"msg":"stopped"/);
    // Stopped, it no longer says where it listens.
    expect(existsSync(join(dataDir, 'server.json'))).toBe(false);
  });
});
