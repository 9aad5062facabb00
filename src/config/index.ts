import { createPublicKey } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { SETTINGS, type SettingName, type SettingSpec, type NamespaceOptions, type RetryPolicy } from './schema.js';

export type { NamespaceOptions, RetryPolicy } from './schema.js';
export { SETTINGS } from './schema.js';

type ValueOf<S extends SettingSpec> = S['type'] extends 'int'
  ? number
  : S['type'] extends 'bool'
    ? boolean
    : string;

type Settings = {
  readonly [K in SettingName]: (typeof SETTINGS)[K]['default'] extends undefined
    ? ValueOf<(typeof SETTINGS)[K]> | undefined
    : ValueOf<(typeof SETTINGS)[K]>;
};

export type TemConfig = Settings & {
  readonly nodeId: string;
  /** Namespace options; `*` holds the defaults for namespaces not listed. */
  readonly namespaces: Readonly<Record<string, NamespaceOptions>>;
  /** Retry policy by event type or `prefix.*`; `*` holds the defaults. */
  readonly retry: Readonly<Record<string, RetryPolicy>>;
};

/**
 * TEM_JWT_PUBLIC_KEY must be an RSA public key in PEM (SPKI or PKCS#1): a bad one used to start
 * quietly and then refuse every RS256 token with 401.
 */
function checkPublicKey(configured: string): void {
  let type: string | undefined;
  try {
    type = createPublicKey(publicKeyPem(configured)).asymmetricKeyType;
  } catch {
    throw new ConfigError('TEM_JWT_PUBLIC_KEY', 'expected an RSA public key in PEM ("-----BEGIN PUBLIC KEY-----" or "-----BEGIN RSA PUBLIC KEY-----")');
  }
  if (type !== 'rsa') throw new ConfigError('TEM_JWT_PUBLIC_KEY', `expected an RSA public key for RS256, got a${type === 'ec' || type === 'ed25519' ? 'n' : ''} ${type} key`);
}

/** The shortest TEM_JWT_SECRET accepted: 256 bits, the size of HS256's hash. */
const JWT_SECRET_MIN_BYTES = 32;

export class ConfigError extends Error {
  constructor(readonly setting: string, message: string) {
    super(`invalid setting ${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Overrides = Partial<Record<SettingName, unknown>> & {
  namespaces?: Record<string, Partial<NamespaceOptions>>;
  retry?: Record<string, Partial<RetryPolicy>>;
};

/**
 * Comma-separated web origins, or `*`. Each is written as browsers send it in `Origin` (scheme,
 * host, port; lower case, no default port, no trailing slash) since matching is exact: a
 * `https://App.example.com/` that would never match is read as `https://app.example.com`, and
 * anything that is not an origin (a path, no scheme) stops start-up instead of turning CORS off.
 */
function parseOrigins(name: string, raw: string): string {
  const out: string[] = [];
  for (const item of raw.split(',').map((o) => o.trim())) {
    if (item === '') continue;
    if (item === '*') {
      out.push(item);
      continue;
    }
    let url: URL | null = null;
    try {
      url = new URL(item);
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search || url.hash || url.username || url.password || !/^https?:\/\/[^/?#]+\/?$/i.test(item)) {
      throw new ConfigError(name, `expected origins such as https://app.example.com (scheme, host and port only), or *; got ${JSON.stringify(item)}`);
    }
    out.push(url.origin);
  }
  if (out.length === 0) throw new ConfigError(name, `expected origins such as https://app.example.com, or *; got ${JSON.stringify(raw)}`);
  return out.join(',');
}

function parseValue(name: string, spec: SettingSpec, raw: unknown): unknown {
  if (raw === undefined || raw === null || raw === '') return undefined;
  switch (spec.type) {
    case 'int': {
      // Decimal digits only: Number() would read " " as 0 (which turns some limits off), "0x10"
      // as 16 and "1e3" as 1000.
      const text = String(raw).trim();
      const n = typeof raw === 'number' ? raw : /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(n)) throw new ConfigError(name, `expected an integer, got ${JSON.stringify(raw)}`);
      if (spec.min !== undefined && n < spec.min) throw new ConfigError(name, `must be ≥ ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) throw new ConfigError(name, `must be ≤ ${spec.max}, got ${n}`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      throw new ConfigError(name, `expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'enum': {
      const s = String(raw);
      if (!spec.values?.includes(s)) throw new ConfigError(name, `expected one of ${spec.values?.join(', ')}, got ${JSON.stringify(raw)}`);
      return s;
    }
    case 'origins':
      return parseOrigins(name, String(raw));
    case 'url': {
      const s = String(raw);
      let url: URL;
      try {
        url = new URL(s);
      } catch {
        throw new ConfigError(name, `expected a URL, got ${JSON.stringify(withoutPassword(s))}`);
      }
      if (spec.schemes && !spec.schemes.includes(url.protocol)) {
        throw new ConfigError(name, `expected a ${spec.schemes.map((x) => `${x}//`).join(' or ')} URL, got ${JSON.stringify(withoutPassword(s))}`);
      }
      return s;
    }
    default:
      if (typeof raw !== 'string') throw new ConfigError(name, `expected a string, got ${JSON.stringify(raw)}`);
      return raw;
  }
}

/** A URL as it may be shown in a message: a password in it (`//user:secret@`) becomes `***`. */
export function withoutPassword(url: string): string {
  return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}

/** The configured public key as a PEM: environments often carry PEMs with literal "\n" sequences. */
export function publicKeyPem(configured: string): string {
  return configured.replace(/\\n/g, '\n');
}

function readFile(path: string, required: boolean): Record<string, unknown> {
  if (path === '') return {};
  if (!existsSync(path)) {
    if (required) throw new ConfigError('TEM_CONFIG', `${path} does not exist (unset TEM_CONFIG, or set it empty, to run without a config file)`);
    return {};
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('TEM_CONFIG', `cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('TEM_CONFIG', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError('TEM_CONFIG', `${path} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

const NAMESPACE_KEYS = ['historySize', 'historyTtlMs', 'presence', 'joinLeave', 'clientPublish'] as const;
const RETRY_KEYS = ['maxAttempts', 'baseMs', 'maxMs'] as const;
const RETRY_SETTING = { maxAttempts: 'retryMaxAttempts', baseMs: 'retryBaseMs', maxMs: 'retryMaxMs' } as const;

function checkObject(setting: string, value: unknown): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(setting, 'expected an object');
  return value as Record<string, unknown>;
}

/** `*`, or a namespace as channels name it (the part before the first `:`). */
const NAMESPACE_KEY_RE = /^(?:\*|[A-Za-z0-9_.@=-]{1,255})$/;

/**
 * Namespace options. Keys are names clients choose (`constructor:1` is a valid channel), so the
 * table has no prototype and is read with own-property checks only. The file's `*` is applied
 * first wherever it stands, and the built-in `user` namespace takes what it does not set from it.
 */
/** `fromEnv`: what TEM_HISTORY_* gave; as for retry, the environment wins over the file's `*`. */
function parseNamespaces(raw: unknown, defaults: NamespaceOptions, fromEnv: Partial<NamespaceOptions>): Record<string, NamespaceOptions> {
  const given = raw === undefined ? {} : checkObject('namespaces', raw);
  const parse = (ns: string, base: NamespaceOptions): NamespaceOptions => {
    if (!NAMESPACE_KEY_RE.test(ns)) throw new ConfigError(`namespaces.${ns}`, 'expected * or a namespace name (1–255 of A-Z, a-z, 0-9, "_", ".", "@", "=" and "-")');
    const merged: NamespaceOptions = { ...base };
    for (const [k, v] of Object.entries(checkObject(`namespaces.${ns}`, given[ns]))) {
      if (!(NAMESPACE_KEYS as readonly string[]).includes(k)) throw new ConfigError(`namespaces.${ns}.${k}`, `unknown option (known: ${NAMESPACE_KEYS.join(', ')})`);
      if (k === 'historySize' || k === 'historyTtlMs') {
        if (!Number.isInteger(v) || (v as number) < 0) throw new ConfigError(`namespaces.${ns}.${k}`, 'expected an integer ≥ 0');
        merged[k] = v as number;
      } else {
        if (typeof v !== 'boolean') throw new ConfigError(`namespaces.${ns}.${k}`, 'expected true or false');
        merged[k as 'presence' | 'joinLeave' | 'clientPublish'] = v;
      }
    }
    return merged;
  };
  const out = Object.create(null) as Record<string, NamespaceOptions>;
  out['*'] = { ...(Object.hasOwn(given, '*') ? parse('*', defaults) : defaults), ...fromEnv };
  // A user's own channel: no presence or publishing by clients.
  out.user = { ...out['*'], presence: false, joinLeave: false, clientPublish: false };
  for (const ns of Object.keys(given)) if (ns !== '*') out[ns] = parse(ns, out[ns] ?? out['*']);
  return out;
}

/** `*`, an exact event type, or `prefix.*` (the forms processors take). */
const RETRY_KEY_RE = /^(?:\*|[a-z0-9][a-z0-9_.-]{0,127}|[a-z0-9][a-z0-9_.-]{0,125}\.\*)$/;

/**
 * Retry policies by type. `*` is the default: the file's `*` entry over the TEM_RETRY_* settings'
 * defaults, with the environment winning over both (as for every setting); each other entry
 * takes what it does not set from that resolved `*`.
 */
function parseRetry(raw: unknown, defaults: RetryPolicy, fromEnv: Partial<RetryPolicy>): Record<string, RetryPolicy> {
  const entries: [string, Partial<RetryPolicy>][] = [];
  for (const [type, polRaw] of Object.entries(raw === undefined ? {} : checkObject('retry', raw))) {
    if (!RETRY_KEY_RE.test(type)) throw new ConfigError(`retry.${type}`, 'expected *, an event type, or prefix.* (e.g. payment.*)');
    const pol = checkObject(`retry.${type}`, polRaw);
    const given: Partial<RetryPolicy> = {};
    for (const [k, v] of Object.entries(pol)) {
      if (!(RETRY_KEYS as readonly string[]).includes(k)) throw new ConfigError(`retry.${type}.${k}`, `unknown option (known: ${RETRY_KEYS.join(', ')})`);
      // The same bounds as the environment's TEM_RETRY_* settings.
      const spec = SETTINGS[RETRY_SETTING[k as (typeof RETRY_KEYS)[number]]];
      const { min, max } = spec;
      if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw new ConfigError(`retry.${type}.${k}`, `expected an integer from ${min} to ${max}`);
      given[k as keyof RetryPolicy] = v as number;
    }
    entries.push([type, given]);
  }
  const fileStar = entries.find(([type]) => type === '*')?.[1];
  const star: RetryPolicy = { ...defaults, ...fileStar, ...fromEnv };
  const out = Object.create(null) as Record<string, RetryPolicy>;
  out['*'] = star;
  for (const [type, given] of entries) if (type !== '*') out[type] = { ...star, ...given };
  return out;
}

/** TEM_ variables read by the CLI's admin commands rather than by the servers' settings. */
const CLI_VARIABLES = ['TEM_URL', 'TEM_API_KEY'];

/**
 * TEM_ variables in the environment that name no setting (a typo such as TEM_HTTP_PROT would
 * otherwise leave its setting at the default unnoticed), each with the setting it most likely
 * meant when one is close.
 */
export function unknownEnvSettings(env: NodeJS.ProcessEnv = process.env): { variable: string; didYouMean?: string }[] {
  const known = [...Object.values(SETTINGS).map((spec: SettingSpec) => spec.env), ...CLI_VARIABLES];
  const unknown: { variable: string; didYouMean?: string }[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('TEM_') || known.includes(name)) continue;
    let best: string | undefined;
    let bestDistance = 3;
    for (const candidate of known) {
      const d = editDistance(name, candidate);
      if (d < bestDistance) [best, bestDistance] = [candidate, d];
    }
    unknown.push(best ? { variable: name, didYouMean: best } : { variable: name });
  }
  return unknown;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Builds the frozen configuration. Throws ConfigError naming the setting when a value is bad,
 * so start-up stops with a message an operator can act on.
 */
export function loadConfig(overrides: Overrides = {}, env: NodeJS.ProcessEnv = process.env): TemConfig {
  const filePath = (overrides.configFile as string | undefined) ?? env.TEM_CONFIG ?? SETTINGS.configFile.default;
  // The default file is optional; one named in TEM_CONFIG must be there (a typo would otherwise
  // run with defaults unnoticed).
  const file = readFile(filePath, overrides.configFile === undefined && env.TEM_CONFIG !== undefined);
  const known = new Set<string>([...Object.keys(SETTINGS), 'namespaces', 'retry']);
  for (const key of Object.keys(file)) {
    if (!known.has(key)) throw new ConfigError(`${filePath}: ${key}`, 'unknown setting');
  }
  const out: Record<string, unknown> = {};
  const defaulted = new Set<SettingName>();
  /** Settings given in the environment (or by the caller), which win over the file's entries too. */
  const envGiven = new Set<SettingName>();
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, SettingSpec][]) {
    const fromOverride = parseValue(name, spec, overrides[name]);
    const fromEnv = parseValue(spec.env, spec, env[spec.env]);
    const fromFile = parseValue(`${filePath}: ${name}`, spec, file[name]);
    const given = fromOverride ?? fromEnv ?? fromFile;
    if (given === undefined) defaulted.add(name);
    if (fromOverride !== undefined || fromEnv !== undefined) envGiven.add(name);
    out[name] = given ?? spec.default;
  }
  // A server asked for a free public port (tests, several servers on one machine) would still
  // collide on the fixed internal one; it gets a free one too unless it was given one.
  if (out.httpPort === 0 && defaulted.has('internalPort')) out.internalPort = 0;
  if (out.redisCluster === true && !out.redisUrl) throw new ConfigError('TEM_REDIS_CLUSTER', 'needs REDIS_URL (a node of the cluster)');
  if (out.jwtSecret && out.jwtPublicKey) throw new ConfigError('TEM_JWT_SECRET', 'set TEM_JWT_SECRET or TEM_JWT_PUBLIC_KEY, not both');
  // HS256 wants a key of at least its hash's size (RFC 7518 §3.2): a short secret can be found
  // offline from one token, and every user's token forged with it.
  const secretBytes = typeof out.jwtSecret === 'string' ? Buffer.byteLength(out.jwtSecret, 'utf8') : null;
  if (secretBytes !== null && secretBytes < JWT_SECRET_MIN_BYTES) {
    throw new ConfigError('TEM_JWT_SECRET', `must be at least ${JWT_SECRET_MIN_BYTES} bytes (HS256 needs a 256-bit key; e.g. openssl rand -base64 48), got ${secretBytes}`);
  }
  if (typeof out.jwtPublicKey === 'string') checkPublicKey(out.jwtPublicKey);
  out.nodeId ??= `${hostname()}-${process.pid}`;
  const nsDefaults: NamespaceOptions = {
    historySize: out.historySize as number,
    historyTtlMs: out.historyTtlMs as number,
    presence: true,
    // Opt-in, as in Centrifugo: a subscriber's first EVENTs are the channel's own messages, not
    // join/leave notices, unless the namespace asks for them.
    joinLeave: false,
    clientPublish: false,
  };
  const nsFromEnv: Partial<NamespaceOptions> = {};
  if (envGiven.has('historySize')) nsFromEnv.historySize = nsDefaults.historySize;
  if (envGiven.has('historyTtlMs')) nsFromEnv.historyTtlMs = nsDefaults.historyTtlMs;
  out.namespaces = parseNamespaces(overrides.namespaces ?? file.namespaces, nsDefaults, nsFromEnv);
  const retryDefaults: RetryPolicy = { maxAttempts: out.retryMaxAttempts as number, baseMs: out.retryBaseMs as number, maxMs: out.retryMaxMs as number };
  const retryFromEnv: Partial<RetryPolicy> = {};
  if (envGiven.has('retryMaxAttempts')) retryFromEnv.maxAttempts = retryDefaults.maxAttempts;
  if (envGiven.has('retryBaseMs')) retryFromEnv.baseMs = retryDefaults.baseMs;
  if (envGiven.has('retryMaxMs')) retryFromEnv.maxMs = retryDefaults.maxMs;
  out.retry = parseRetry(overrides.retry ?? file.retry, retryDefaults, retryFromEnv);
  return deepFreeze(out) as unknown as TemConfig;
}

function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object') {
    for (const v of Object.values(obj)) deepFreeze(v);
    Object.freeze(obj);
  }
  return obj;
}

/** Options of the namespace a channel belongs to (`live:1:chat` → `live`). */
export function namespaceOptions(config: TemConfig, channel: string): NamespaceOptions {
  const ns = channel.split(':', 1)[0] ?? '';
  return (Object.hasOwn(config.namespaces, ns) ? config.namespaces[ns] : undefined) ?? config.namespaces['*']!;
}

/** Retry policy for an event type: exact type, then the longest matching `prefix.*`, then `*`. */
export function retryPolicy(config: TemConfig, type: string): RetryPolicy {
  // Own properties only: `constructor` is a valid event type.
  const exact = Object.hasOwn(config.retry, type) ? config.retry[type] : undefined;
  if (exact) return exact;
  let best: RetryPolicy | undefined;
  let bestLen = -1;
  for (const [pattern, policy] of Object.entries(config.retry)) {
    if (pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1)) && pattern.length > bestLen) {
      best = policy;
      bestLen = pattern.length;
    }
  }
  return best ?? config.retry['*']!;
}
