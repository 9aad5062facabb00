/**
 * The CLI's admin commands talk to a running server over its admin HTTP API, so they work while
 * the embedded server holds its database. Defaults: the local embedded server and its admin.key.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { httpUrl } from '../app/listen.js';
import { readServerFile } from '../app/server-file.js';
import { ConfigError, loadConfig, type TemConfig } from '../config/index.js';

export interface ClientOptions {
  url?: string;
  key?: string;
  dataDir?: string;
  /** Seconds to wait for an answer (default 60). */
  timeout?: string;
}

export interface Target {
  url: string;
  key: string;
  /** How long a request may wait for its answer. */
  timeoutMs: number;
}

/** `--timeout` when not given. */
export const DEFAULT_TIMEOUT_S = 60;

function timeoutMs(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_TIMEOUT_S * 1000;
  const s = /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : NaN;
  // At least a millisecond: 0.0001 passed "> 0" and then gave up at once, within "0 s".
  if (!(s >= 0.001) || s > 86_400) throw new CliError(`--timeout must be a number of seconds from 0.001 to 86400, got ${JSON.stringify(raw)}`, 2);
  return Math.round(s * 1000);
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** The server's problem+json answer, when the failure is one (shown as is under --json). */
    readonly problem?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * Where this machine's settings say the server listens, when no embedded server on the data
 * directory says where it does. A port picked at start-up (0) is unknown here, so the default
 * port is tried.
 */
function configuredUrl(config: TemConfig): string {
  return httpUrl(config.httpHost, config.httpPort === 0 ? 8080 : config.httpPort);
}

/**
 * Where admin commands go, and with which key: `--url`/`TEM_URL` and `--key`/`TEM_API_KEY` when
 * given; otherwise the embedded server running on the data directory (its server.json), or else
 * the server this machine's settings describe — the same environment and tem.config.json the
 * server reads — with `TEM_ADMIN_KEY` or the embedded server's admin.key.
 */
/** A server URL given by the user, checked before any request: a typo is not "cannot reach". */
function serverUrl(url: string, from: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`${from} is not a URL: ${JSON.stringify(url)} (e.g. http://127.0.0.1:8080)`, 2);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(`${from} must be an http(s) URL, got ${JSON.stringify(url)}`, 2);
  return url.replace(/\/$/, '');
}

/** Whether an admin command has chosen its server: a failure from then on is about that server. */
let targetResolved = false;
export function talkingToServer(): boolean {
  return targetResolved;
}

/**
 * An API key as it can go in a header. A newline or a non-ASCII character made fetch fail
 * before sending anything, reported as "cannot reach" with the key in the message.
 */
function checkedKey(key: string, from: string): string {
  if (!/^[\x21-\x7e]+$/.test(key)) throw new CliError(`the API key from ${from} is not a valid key (printable ASCII, no spaces)`, 2);
  return key;
}

function readKeyFile(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new CliError(`cannot read the admin key ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function resolveTarget(opts: ClientOptions, env: NodeJS.ProcessEnv = process.env): Target {
  const target = resolve(opts, env);
  targetResolved = true;
  return target;
}

function resolve(opts: ClientOptions, env: NodeJS.ProcessEnv): Target {
  const waitMs = timeoutMs(opts.timeout);
  const givenUrl = opts.url === undefined ? (env.TEM_URL ? serverUrl(env.TEM_URL, 'TEM_URL') : undefined) : serverUrl(opts.url, '--url');
  const givenKey = opts.key !== undefined ? checkedKey(opts.key, '--key') : env.TEM_API_KEY ? checkedKey(env.TEM_API_KEY, 'TEM_API_KEY') : undefined;
  // Both given: this machine's own settings do not matter (and a bad one must not get in the way).
  if (givenUrl && givenKey) return { url: givenUrl, key: givenKey, timeoutMs: waitMs };
  let config: TemConfig;
  try {
    config = loadConfig({}, env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, 2);
    throw err;
  }
  const dataDir = opts.dataDir ?? config.dataDir;
  const url = (givenUrl ?? readServerFile(dataDir)?.url ?? configuredUrl(config)).replace(/\/$/, '');
  let key = givenKey ?? config.adminKey;
  if (!key) {
    const keyFile = join(dataDir, 'admin.key');
    const read = readKeyFile(keyFile);
    if (read) key = checkedKey(read, keyFile);
  }
  if (!key) throw new CliError('no API key: pass --key, set TEM_API_KEY, or run next to an embedded server with its admin.key');
  return { url, key, timeoutMs: waitMs };
}

export async function request<T = unknown>(target: Target, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const waitMs = target.timeoutMs;
  // One deadline for the answer and its body: a server that accepts the connection and then
  // says nothing (stopped, overloaded) must not hold a script for undici's five minutes.
  const signal = AbortSignal.timeout(waitMs);
  const timedOut = () => new CliError(`${target.url} did not answer ${method} ${path} within ${waitMs / 1000} s (--timeout)`);
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers: {
        'x-api-key': target.key,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw timedOut();
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(`cannot reach ${target.url} (${cause}); is the server running? (tem start)`);
  }
  try {
    text = await res.text();
  } catch (err) {
    if (signal.aborted) throw timedOut();
    throw new CliError(`the answer from ${target.url} broke off (${(err as Error).message})`);
  }
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  // Something else on that address (a proxy's page, another service) must not pass for success.
  // Text that is not JSON stays a string here, so it fails the object test too.
  const type = res.headers.get('content-type') ?? '';
  if (res.status < 400 && text && (!/json/i.test(type) || parsed === null || typeof parsed !== 'object')) {
    throw new CliError(`${target.url} answered ${method} ${path} with ${res.status} ${type || 'and no content type'}, not a JSON object: is --url a tem server?`);
  }
  if (res.status >= 400) {
    const p = parsed as { detail?: string; title?: string; code?: string } | undefined;
    const what = p && typeof p === 'object' ? `${p.code ?? res.status}: ${p.detail ?? p.title ?? ''}` : String(parsed ?? res.statusText);
    const problem = p && typeof p === 'object' ? (p as Record<string, unknown>) : { status: res.status };
    throw new CliError(`${method} ${path} failed with ${res.status} ${what}`, 1, problem);
  }
  return { status: res.status, body: parsed as T };
}
