import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { generateKeyPairSync } from 'node:crypto';
import { loadConfig, ConfigError, retryPolicy, namespaceOptions, unknownEnvSettings } from '../../src/config/index.js';
import { renderConfigDoc } from '../../scripts/config-doc.js';
import { createBus } from '../../src/bus/index.js';
import { ManualClock } from '../../src/core/clock.js';

const NO_FILE = { TEM_CONFIG: '' };

describe('config', () => {
  it('has defaults for everything and is frozen', () => {
    const c = loadConfig({}, NO_FILE);
    expect(c.httpPort).toBe(8080);
    expect(c.internalPort).toBe(8081);
    expect(c.heartbeatIntervalMs).toBe(30000);
    expect(c.presenceTtlMs).toBe(60000);
    expect(c.dataDir).toBe('./.tem');
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.namespaces)).toBe(true);
  });

  it('takes env over file over default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-config-'));
    const file = join(dir, 'tem.config.json');
    writeFileSync(file, JSON.stringify({ httpPort: 9000, internalPort: 9001 }));
    const c = loadConfig({}, { TEM_CONFIG: file, TEM_HTTP_PORT: '9100' });
    expect(c.httpPort).toBe(9100);
    expect(c.internalPort).toBe(9001);
    expect(loadConfig({}, { ...NO_FILE, TEM_HTTP_PORT: ' 8085 ' }).httpPort).toBe(8085);
  });

  it.each([
    ['TEM_HTTP_PORT', 'abc'],
    ['TEM_HTTP_PORT', '70000'],
    ['TEM_LOG_LEVEL', 'loud'],
    ['DATABASE_URL', 'not a url'],
    ['TEM_LEASE_MS', '-5'],
    // Number() would read these as 0 (rate limiting off), 16 and 1000.
    ['TEM_RATE_LIMIT_POINTS', ' '],
    ['TEM_HTTP_PORT', '0x10'],
    ['TEM_LEASE_MS', '1e3'],
    ['TEM_LEASE_MS', '1.5'],
  ])('rejects a bad %s naming it', (name, value) => {
    expect(() => loadConfig({}, { ...NO_FILE, [name]: value })).toThrowError(new RegExp(name));
    expect(() => loadConfig({}, { ...NO_FILE, [name]: value })).toThrowError(ConfigError);
  });

  it('names a URL setting with the wrong scheme, and never shows a password in the message', () => {
    expect(() => loadConfig({}, { ...NO_FILE, DATABASE_URL: 'localhost:5432' })).toThrowError(/DATABASE_URL: expected a postgres:\/\/ or postgresql:\/\/ URL/);
    expect(() => loadConfig({}, { ...NO_FILE, REDIS_URL: 'http://127.0.0.1:6379' })).toThrowError(/REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => loadConfig({}, { ...NO_FILE, TEM_API_INTERNAL_URL: 'ftp://127.0.0.1:8081' })).toThrowError(/TEM_API_INTERNAL_URL/);
    expect(() => loadConfig({}, { ...NO_FILE, TEM_PUBLIC_WS_URL: 'localhost:8080' })).toThrowError(/TEM_PUBLIC_WS_URL/);
    for (const bad of ['postgres://u:s3cretpw@[::1/db', 'mysql://u:s3cretpw@h/db']) {
      let message = '';
      try {
        loadConfig({}, { ...NO_FILE, DATABASE_URL: bad });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^invalid setting DATABASE_URL/);
      expect(message).toContain('u:***@');
      expect(message).not.toContain('s3cretpw');
    }
    const ok = loadConfig({}, { ...NO_FILE, DATABASE_URL: 'postgresql://u:p@h/db', REDIS_URL: 'rediss://h:6380', TEM_PUBLIC_WS_URL: 'wss://rt.example.com/ws' });
    expect([ok.databaseUrl, ok.redisUrl, ok.publicWsUrl]).toEqual(['postgresql://u:p@h/db', 'rediss://h:6380', 'wss://rt.example.com/ws']);
  });

  it('refuses a TEM_JWT_PUBLIC_KEY that is not an RSA public key in PEM; takes SPKI and PKCS#1', () => {
    expect(() => loadConfig({}, { ...NO_FILE, TEM_JWT_PUBLIC_KEY: 'not a pem' })).toThrowError(/TEM_JWT_PUBLIC_KEY: expected an RSA public key in PEM/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(() => loadConfig({}, { ...NO_FILE, TEM_JWT_PUBLIC_KEY: ec })).toThrowError(/TEM_JWT_PUBLIC_KEY: expected an RSA public key for RS256, got an ec key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    for (const type of ['spki', 'pkcs1'] as const) {
      const pem = rsa.export({ type, format: 'pem' }) as string;
      expect(loadConfig({}, { ...NO_FILE, TEM_JWT_PUBLIC_KEY: pem.replace(/\n/g, '\\n') }).jwtPublicKey).toBeDefined();
    }
  });

  it('says it cannot read a TEM_CONFIG that is not a file, rather than calling it bad JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-config-'));
    expect(() => loadConfig({}, { TEM_CONFIG: dir })).toThrowError(/TEM_CONFIG: cannot read .*EISDIR/);
  });

  it('takes TEM_REDIS_CLUSTER only with a REDIS_URL to find the cluster from', () => {
    expect(loadConfig({}, { ...NO_FILE }).redisCluster).toBe(false);
    expect(() => loadConfig({}, { ...NO_FILE, TEM_REDIS_CLUSTER: 'true' })).toThrowError(/TEM_REDIS_CLUSTER: needs REDIS_URL/);
    expect(() => loadConfig({}, { ...NO_FILE, TEM_REDIS_CLUSTER: 'maybe', REDIS_URL: 'redis://r:6379' })).toThrowError(/TEM_REDIS_CLUSTER: expected true or false/);
    expect(loadConfig({}, { ...NO_FILE, TEM_REDIS_CLUSTER: 'true', REDIS_URL: 'redis://r:6379' }).redisCluster).toBe(true);
  });

  it('refuses a TEM_JWT_SECRET shorter than HS256\'s 256 bits', () => {
    expect(() => loadConfig({}, { ...NO_FILE, TEM_JWT_SECRET: 'secret' })).toThrowError(/TEM_JWT_SECRET: must be at least 32 bytes.*got 6/);
    expect(loadConfig({}, { ...NO_FILE, TEM_JWT_SECRET: 'x'.repeat(32) }).jwtSecret).toBe('x'.repeat(32));
  });

  it('rejects unknown keys and bad namespace options in the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-config-'));
    const file = join(dir, 'tem.config.json');
    writeFileSync(file, JSON.stringify({ httpPrt: 1 }));
    expect(() => loadConfig({}, { TEM_CONFIG: file })).toThrowError(/httpPrt/);
    writeFileSync(file, JSON.stringify({ namespaces: { live: { historySize: -1 } } }));
    expect(() => loadConfig({}, { TEM_CONFIG: file })).toThrowError(/namespaces\.live\.historySize/);
    writeFileSync(file, '{not json');
    expect(() => loadConfig({}, { TEM_CONFIG: file })).toThrowError(/TEM_CONFIG/);
  });

  it('refuses a config file named in TEM_CONFIG that does not exist; the default one is optional', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-config-'));
    expect(() => loadConfig({}, { TEM_CONFIG: join(dir, 'typo.json') })).toThrowError(/TEM_CONFIG.*typo\.json does not exist/);
    expect(loadConfig({}, { TEM_CONFIG: '' }).httpPort).toBe(8080);
    const cwd = process.cwd();
    try {
      process.chdir(dir); // no ./tem.config.json here
      expect(loadConfig({}, {}).httpPort).toBe(8080);
    } finally {
      process.chdir(cwd);
    }
  });

  it('resolves retry policies by exact type, longest prefix, then default', () => {
    const c = loadConfig(
      { retry: { 'payment.*': { maxAttempts: 9 }, 'payment.card.*': { maxAttempts: 3 }, 'user.created': { baseMs: 5 } } },
      NO_FILE,
    );
    expect(retryPolicy(c, 'payment.success').maxAttempts).toBe(9);
    expect(retryPolicy(c, 'payment.card.declined').maxAttempts).toBe(3);
    expect(retryPolicy(c, 'user.created').baseMs).toBe(5);
    expect(retryPolicy(c, 'other').maxAttempts).toBe(5);
  });

  it('retry: the file\'s * over the defaults, the environment over both; types inherit the resolved *', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-config-'));
    const file = join(dir, 'tem.config.json');
    writeFileSync(file, JSON.stringify({ retry: { '*': { maxAttempts: 3, baseMs: 100 }, 'pay.*': { maxAttempts: 9 } } }));
    const fromFile = loadConfig({}, { TEM_CONFIG: file });
    expect(retryPolicy(fromFile, 'other')).toEqual({ maxAttempts: 3, baseMs: 100, maxMs: 300_000 });
    expect(retryPolicy(fromFile, 'pay.card')).toEqual({ maxAttempts: 9, baseMs: 100, maxMs: 300_000 });
    const withEnv = loadConfig({}, { TEM_CONFIG: file, TEM_RETRY_MAX_ATTEMPTS: '7' });
    expect(retryPolicy(withEnv, 'other')).toEqual({ maxAttempts: 7, baseMs: 100, maxMs: 300_000 });
    // A type's own entry is more specific than the environment's default.
    expect(retryPolicy(withEnv, 'pay.card').maxAttempts).toBe(9);
  });

  it('refuses retry keys that can never match, and says what a bad value should be', () => {
    for (const key of ['pay*', 'Bad Type!', 'payment.*.x', '']) {
      expect(() => loadConfig({ retry: { [key]: { maxAttempts: 2 } } }, NO_FILE)).toThrowError(/expected \*, an event type, or prefix\.\*/);
    }
    expect(() => loadConfig({ retry: { x: { maxAttempts: 0 } } }, NO_FILE)).toThrowError(/retry\.x\.maxAttempts.*integer from 1 to 1000/);
  });

  it('reads TEM_CORS_ORIGINS as browsers send Origin, and refuses what is not an origin', () => {
    const read = (v: string) => loadConfig({}, { ...NO_FILE, TEM_CORS_ORIGINS: v }).corsOrigins;
    expect(read('https://app.example.com')).toBe('https://app.example.com');
    // A trailing slash, capitals or a default port would never equal a browser's Origin header.
    expect(read(' https://App.Example.com/ , http://localhost:3000,https://x.io:443')).toBe('https://app.example.com,http://localhost:3000,https://x.io');
    expect(read('*')).toBe('*');
    for (const bad of ['notanorigin', 'app.example.com', 'https://app.example.com/path', 'ftp://x.io', 'https://x.io?a=1', 'https://u:p@x.io', ',']) {
      expect(() => read(bad), bad).toThrowError(/TEM_CORS_ORIGINS.*origins such as https:\/\/app\.example\.com/);
    }
  });

  it('bounds retry policies in the file as in the environment, and delays and retention at all', () => {
    // Past these the event's stored attempt count or its next run time cannot be written.
    expect(() => loadConfig({ retry: { 'nr.x': { maxAttempts: 3_000_000_000 } } }, NO_FILE)).toThrowError(/retry\.nr\.x\.maxAttempts.*from 1 to 1000/);
    expect(() => loadConfig({ retry: { '*': { baseMs: 9e15 } } }, NO_FILE)).toThrowError(/retry\.\*\.baseMs.*from 0 to 2592000000/);
    expect(() => loadConfig({ retry: { x: { maxMs: 2_592_000_001 } } }, NO_FILE)).toThrowError(/retry\.x\.maxMs/);
    expect(loadConfig({ retry: { x: { maxAttempts: 1000, baseMs: 2_592_000_000 } } }, NO_FILE).retry.x).toMatchObject({ maxAttempts: 1000, baseMs: 2_592_000_000 });
    expect(() => loadConfig({}, { ...NO_FILE, TEM_RETRY_BASE_MS: '9000000000000000' })).toThrowError(/TEM_RETRY_BASE_MS/);
    expect(() => loadConfig({}, { ...NO_FILE, TEM_RETRY_MAX_MS: '9000000000000000' })).toThrowError(/TEM_RETRY_MAX_MS/);
    expect(() => loadConfig({}, { ...NO_FILE, TEM_IDEMPOTENCY_RETENTION_MS: '9000000000000000' })).toThrowError(/TEM_IDEMPOTENCY_RETENTION_MS/);
  });

  it("namespaces: TEM_HISTORY_* in the environment win over the file's *, a named namespace's own values over both", () => {
    const dir = mkdtempSync(join(tmpdir(), 'tem-config-'));
    const file = join(dir, 'tem.config.json');
    writeFileSync(file, JSON.stringify({ namespaces: { '*': { historySize: 50, historyTtlMs: 1000 }, live: { historySize: 500 } } }));
    const c = loadConfig({}, { TEM_CONFIG: file, TEM_HISTORY_SIZE: '200' });
    expect(c.namespaces['*']).toMatchObject({ historySize: 200, historyTtlMs: 1000 });
    expect(c.namespaces.live).toMatchObject({ historySize: 500, historyTtlMs: 1000 });
    expect(loadConfig({}, { TEM_CONFIG: file }).namespaces['*']!.historySize).toBe(50);
  });

  it('resolves namespace options with a default', () => {
    const c = loadConfig({ namespaces: { live: { clientPublish: true, historySize: 7 } } }, NO_FILE);
    expect(namespaceOptions(c, 'live:1:chat')).toMatchObject({ clientPublish: true, historySize: 7, presence: true });
    expect(namespaceOptions(c, 'server:1').clientPublish).toBe(false);
  });

  it('refuses durations a timer cannot hold (over 2^31 − 1 ms would fire after 1 ms)', () => {
    expect(loadConfig({}, { ...NO_FILE, TEM_PROCESSOR_TIMEOUT_MS: '2147483647' }).processorTimeoutMs).toBe(2147483647);
    for (const env of ['TEM_PROCESSOR_TIMEOUT_MS', 'TEM_SHUTDOWN_TIMEOUT_MS', 'TEM_POLL_INTERVAL_MS', 'TEM_HEARTBEAT_INTERVAL_MS']) {
      expect(() => loadConfig({}, { ...NO_FILE, [env]: '2147483648' }), env).toThrowError(new RegExp(`${env}.*≤ 2147483647`));
    }
  });

  it('TEM_POSITION_TTL_MS: a day by default, at least a minute, and the bus forgets positions after it', async () => {
    expect(loadConfig({}, NO_FILE).positionTtlMs).toBe(86_400_000);
    expect(() => loadConfig({}, { ...NO_FILE, TEM_POSITION_TTL_MS: '1000' })).toThrowError(/TEM_POSITION_TTL_MS/);
    const config = loadConfig({}, { ...NO_FILE, TEM_POSITION_TTL_MS: '120000', TEM_HISTORY_TTL_MS: '60000' });
    const clock = new ManualClock();
    const bus = createBus({ namespaces: (channel) => namespaceOptions(config, channel), clock, positionTtlMs: config.positionTtlMs });
    try {
      const first = await bus.publish('chat:quiet', 'm', {});
      clock.advance(119_000);
      expect(await bus.publish('chat:quiet', 'm', {})).toMatchObject({ offset: 2, epoch: first.epoch });
      clock.advance(120_000);
      const later = await bus.publish('chat:quiet', 'm', {});
      expect(later.offset).toBe(1);
      expect(later.epoch).not.toBe(first.epoch);
    } finally {
      await bus.close();
    }
  });

  it('reads namespaces and retry types named like Object members as any other name', () => {
    const c = loadConfig({}, NO_FILE);
    for (const ns of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__']) {
      expect(namespaceOptions(c, `${ns}:1`), ns).toEqual(namespaceOptions(c, 'other:1'));
    }
    expect(retryPolicy(c, 'constructor')).toEqual(retryPolicy(c, 'other'));
    // A file may still configure such a namespace, even __proto__, without touching prototypes.
    const dir = mkdtempSync(join(tmpdir(), 'tem-config-'));
    const file = join(dir, 'tem.config.json');
    writeFileSync(file, '{"namespaces": {"__proto__": {"historySize": 3}, "constructor": {"clientPublish": true}}}');
    const named = loadConfig({}, { TEM_CONFIG: file });
    expect(namespaceOptions(named, '__proto__:1').historySize).toBe(3);
    expect(namespaceOptions(named, 'constructor:1').clientPublish).toBe(true);
    expect(namespaceOptions(named, 'other:1')).toEqual(namespaceOptions(c, 'other:1'));
    expect(() => loadConfig({ namespaces: { 'a:b': {} } }, NO_FILE)).toThrowError(/namespaces\.a:b.*namespace name/);
  });

  it("applies the file's * to every namespace wherever it stands, the built-in user namespace too", () => {
    const c = loadConfig({ namespaces: { live: { clientPublish: true }, '*': { historySize: 500 } } }, NO_FILE);
    expect(namespaceOptions(c, 'live:1')).toMatchObject({ clientPublish: true, historySize: 500 });
    expect(namespaceOptions(c, 'user:u1')).toMatchObject({ historySize: 500, presence: false, clientPublish: false });
    expect(namespaceOptions(c, 'other:1').historySize).toBe(500);
  });

  it('gives the internal listener a free port too when the public one is 0 and it was not set', () => {
    expect(loadConfig({}, NO_FILE).internalPort).toBe(8081);
    expect(loadConfig({}, { ...NO_FILE, TEM_HTTP_PORT: '0' }).internalPort).toBe(0);
    expect(loadConfig({}, { ...NO_FILE, TEM_HTTP_PORT: '0', TEM_INTERNAL_PORT: '9091' }).internalPort).toBe(9091);
    expect(loadConfig({ httpPort: 0, internalPort: 8081 }, NO_FILE).internalPort).toBe(8081);
  });

  it('documents every setting in docs/configuration.md', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(doc).toBe(renderConfigDoc());
  });

  it('names TEM_ variables that are no setting, with the one a typo most likely meant', () => {
    const env = { TEM_HTTP_PRT: '9000', TEM_LOG_LEVL: 'debug', TEM_SOMETHING_ELSE: '1', TEM_HTTP_PORT: '8080', TEM_URL: 'http://x', TEM_API_KEY: 'k', DATABASE_URL: 'postgres://x/y', HOME: '/root' };
    expect(unknownEnvSettings(env)).toEqual([
      { variable: 'TEM_HTTP_PRT', didYouMean: 'TEM_HTTP_PORT' },
      { variable: 'TEM_LOG_LEVL', didYouMean: 'TEM_LOG_LEVEL' },
      { variable: 'TEM_SOMETHING_ELSE' },
    ]);
    // A typo is no bad value: the settings still load, from their defaults.
    expect(loadConfig({}, { ...NO_FILE, ...env }).httpPort).toBe(8080);
    expect(unknownEnvSettings({ TEM_HTTP_PORT: '1', TEM_CONFIG: '' })).toEqual([]);
  });
});
