/**
 * The Authenticator against a real (embedded) store: key checks, caching, invalidation,
 * JWTs, and the admin bootstrap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { generateKeyPairSync } from 'node:crypto';
import { Authenticator, type AuthChange } from '../../src/auth/authenticator.js';
import { ensureAdminKey } from '../../src/auth/bootstrap.js';
import { setUpAdminKey } from '../../src/app/admin-key.js';
import type { Logger } from '../../src/observability/logger.js';
import { generateApiKey, hashApiKey } from '../../src/auth/keys.js';
import { loadConfig } from '../../src/config/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { createError, isTemError, type TemError } from '../../src/core/errors.js';
import { newId } from '../../src/core/ids.js';
import type { Store } from '../../src/store/types.js';
import { createTestStore, type TestStore } from '../helpers/db.js';

let testStore: TestStore;
let store: Store;
let lookups = 0;

/** The real store, counting key lookups (to see what the cache saves). */
function counting(real: Store): Store {
  return new Proxy(real, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'findApiKeyByHash') {
        return (hash: string) => {
          lookups++;
          return real.findApiKeyByHash(hash);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const config = (overrides: Parameters<typeof loadConfig>[0] = {}) => loadConfig({ configFile: '/nonexistent.json', ...overrides }, {});

async function makeKey(principalId: string, expiresAt: Date | null = null): Promise<{ key: string; keyId: string }> {
  const g = generateApiKey();
  const keyId = newId('key');
  await store.createApiKey({ id: keyId, principalId, hash: g.hash, prefix: g.prefix, expiresAt });
  return { key: g.key, keyId };
}

async function rejection(p: Promise<unknown>): Promise<TemError> {
  try {
    await p;
  } catch (err) {
    if (isTemError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  testStore = await createTestStore('pglite');
  store = counting(testStore.store);
  await store.createPrincipal({ id: 'svc', kind: 'service', role: 'service', extraPermissions: ['admin.get.role_list'], revokedPermissions: ['events.post.event_retry'] });
  await store.createPrincipal({ id: 'u1', kind: 'user', role: 'user' });
});

afterAll(async () => {
  await testStore?.cleanup();
});

describe('Authenticator with API keys', () => {
  it('rejects malformed tokens without a database call', async () => {
    const auth = new Authenticator(store, config(), new ManualClock());
    const before = lookups;
    for (const token of ['', 'nope', 'tem_short', `tem_${'a'.repeat(40)}$`, 'a.b.c', `Bearer tem_${'a'.repeat(40)}`]) {
      expect((await rejection(auth.authenticate(token))).code).toBe('UNAUTHORIZED');
    }
    expect(lookups).toBe(before);
  });

  it('resolves a key to its principal, role ∪ extra grants and revoked permissions', async () => {
    const auth = new Authenticator(store, config(), new ManualClock());
    const { key, keyId } = await makeKey('svc');
    const ctx = await auth.authenticate(key);
    expect(ctx).toMatchObject({ principalId: 'svc', kind: 'service', userId: 'svc', role: 'service', keyId, via: 'key', channels: [], expiresAt: null });
    expect(ctx.permissions).toEqual(expect.arrayContaining(['events.*', 'channels.*', 'admin.get.role_list']));
    expect(ctx.revoked).toEqual(['events.post.event_retry']);
  });

  it('accepts a key only when the stored hash equals its own (compared, not trusted from the lookup)', async () => {
    const { key } = await makeKey('u1');
    // A store whose index matched a row the key does not hash to (a collation or encoding slip).
    const stored = await store.findApiKeyByHash(hashApiKey(key));
    expect(stored?.storedHash).toMatch(/^[0-9a-f]{64}$/);
    const lying = new Proxy(store, {
      get: (target, prop, receiver) =>
        prop === 'findApiKeyByHash' ? async () => ({ ...stored!, storedHash: stored!.storedHash.replace(/.$/, (c) => (c === '0' ? '1' : '0')) }) : Reflect.get(target, prop, receiver),
    });
    const auth = new Authenticator(lying, config(), new ManualClock());
    expect((await rejection(auth.authenticate(key))).code).toBe('UNAUTHORIZED');
    expect((await new Authenticator(store, config(), new ManualClock()).authenticate(key)).principalId).toBe('u1');
  });

  it('rejects an unknown key', async () => {
    const auth = new Authenticator(store, config(), new ManualClock());
    expect((await rejection(auth.authenticate(generateApiKey().key))).code).toBe('UNAUTHORIZED');
  });

  it('rejects a key once it has expired, even while cached', async () => {
    const clock = new ManualClock();
    const auth = new Authenticator(store, config(), clock);
    const { key } = await makeKey('u1', new Date(clock.nowMs() + 1000));
    expect((await auth.authenticate(key)).expiresAt?.getTime()).toBe(clock.nowMs() + 1000);
    clock.advance(1000);
    const err = await rejection(auth.authenticate(key));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toMatch(/expired/);
  });

  it('caches lookups for authCacheMs and shares concurrent ones', async () => {
    const clock = new ManualClock();
    const auth = new Authenticator(store, config({ authCacheMs: 5000 }), clock);
    const { key } = await makeKey('u1');
    const before = lookups;
    await Promise.all(Array.from({ length: 10 }, () => auth.authenticate(key)));
    await auth.authenticate(key);
    expect(lookups - before).toBe(1);
    clock.advance(5000);
    await auth.authenticate(key);
    expect(lookups - before).toBe(2);
  });

  it('does not cache with authCacheMs 0', async () => {
    const auth = new Authenticator(store, config({ authCacheMs: 0 }), new ManualClock());
    const { key } = await makeKey('u1');
    const before = lookups;
    await auth.authenticate(key);
    await auth.authenticate(key);
    expect(lookups - before).toBe(2);
  });

  it('rejects a revoked key on the very next call and tells listeners', async () => {
    const clock = new ManualClock();
    const auth = new Authenticator(store, config(), clock);
    const changes: AuthChange[] = [];
    auth.onRevoked((c) => changes.push(c));
    const { key, keyId } = await makeKey('u1');
    await auth.authenticate(key);
    await store.revokeApiKey(keyId, clock.now());
    await auth.changed({ keyId, principalId: 'u1' });
    const err = await rejection(auth.authenticate(key));
    expect(err.message).toMatch(/revoked/);
    expect(changes).toContainEqual({ keyId, principalId: 'u1' });
  });

  it('rejects the keys of a disabled principal', async () => {
    const auth = new Authenticator(store, config(), new ManualClock());
    await store.createPrincipal({ id: 'u_disabled', kind: 'user', role: 'user' });
    const { key } = await makeKey('u_disabled');
    await auth.authenticate(key);
    await store.updatePrincipal('u_disabled', { disabled: true });
    auth.invalidate({ principalId: 'u_disabled' });
    expect((await rejection(auth.authenticate(key))).message).toMatch(/disabled/);
  });

  it('does not let a lookup that raced an invalidation refill the cache', async () => {
    const auth = new Authenticator(store, config(), new ManualClock());
    const { key } = await makeKey('u1');
    const before = lookups;
    const pending = auth.authenticate(key);
    auth.invalidate();
    await pending;
    await auth.authenticate(key);
    expect(lookups - before).toBe(2);
  });

  it('receives changes made through another process via store.onAuthChanged', async () => {
    const auth = new Authenticator(store, config(), new ManualClock());
    await auth.start();
    try {
      const seen = new Promise<AuthChange>((resolve) => auth.onRevoked(resolve));
      await store.notifyAuthChanged({ keyId: 'key_remote' });
      expect(await seen).toEqual({ keyId: 'key_remote' });
    } finally {
      await auth.close();
    }
  });
});

describe('Authenticator with JWTs', () => {
  const secret = 'an-hs256-secret-of-reasonable-length-123456';
  const sign = (claims: Record<string, unknown>, opts: { exp?: number; key?: string; alg?: string; iss?: string; aud?: string } = {}) => {
    let jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256' });
    if (opts.exp !== undefined) jwt = jwt.setExpirationTime(opts.exp);
    if (opts.iss) jwt = jwt.setIssuer(opts.iss);
    if (opts.aud) jwt = jwt.setAudience(opts.aud);
    return jwt.sign(new TextEncoder().encode(opts.key ?? secret));
  };

  it('accepts an HS256 token: sub is the user, with the user role and the channels claim', async () => {
    const clock = new ManualClock();
    const auth = new Authenticator(store, config({ jwtSecret: secret }), clock);
    const exp = Math.floor(clock.nowMs() / 1000) + 60;
    const ctx = await auth.authenticate(await sign({ sub: 'u_77', channels: ['live:1:chat', 'server:9:*'] }, { exp }));
    expect(ctx).toMatchObject({ principalId: 'u_77', userId: 'u_77', kind: 'user', role: 'user', keyId: null, via: 'jwt', channels: ['live:1:chat', 'server:9:*'] });
    expect(ctx.expiresAt?.getTime()).toBe(exp * 1000);
    expect(ctx.permissions).toEqual(expect.arrayContaining(['events.post.event_ingest', 'events.get.event_detail']));
  });

  it('rejects expired, exp-less, wrongly signed and badly claimed tokens', async () => {
    const clock = new ManualClock();
    const auth = new Authenticator(store, config({ jwtSecret: secret, jwtIssuer: 'https://app', jwtAudience: 'tem' }), clock);
    const now = Math.floor(clock.nowMs() / 1000);
    const good = { exp: now + 60, iss: 'https://app', aud: 'tem' };
    expect((await auth.authenticate(await sign({ sub: 'u1' }, good))).userId).toBe('u1');
    const bad = [
      await sign({ sub: 'u1' }, { ...good, exp: now - 1 }),
      await sign({ sub: 'u1' }, { iss: 'https://app', aud: 'tem' }),
      await sign({ sub: 'u1' }, { ...good, key: 'another-secret-of-reasonable-length-000000' }),
      await sign({ sub: 'u1' }, { ...good, iss: 'https://evil' }),
      await sign({ sub: 'u1' }, { ...good, aud: 'other' }),
      await sign({}, good),
      await sign({ sub: 'u1', channels: 'live:1:chat' }, good),
      // A sub that is no user id: a pattern (its owner channel would be user:*), another
      // user's sub-channel (user:u1:x belongs to u1), no channel at all, or too long.
      await sign({ sub: '*' }, good),
      await sign({ sub: 'u1:x' }, good),
      await sign({ sub: 'auth0|12345' }, good),
      await sign({ sub: 'x'.repeat(129) }, good),
      await sign({ sub: 'u1' }, { ...good, alg: 'HS512' }),
      // An expiry no Date can hold (it failed later, where it was written out).
      await sign({ sub: 'u1' }, { ...good, exp: 9e15 }),
    ];
    for (const token of bad) expect((await rejection(auth.authenticate(token))).code).toBe('UNAUTHORIZED');
    clock.advance(61_000);
    expect((await rejection(auth.authenticate(await sign({ sub: 'u1' }, good)))).code).toBe('UNAUTHORIZED');
  });

  it('says which claim a correctly signed token failed on, and nothing more for a bad signature', async () => {
    const clock = new ManualClock();
    const auth = new Authenticator(store, config({ jwtSecret: secret, jwtIssuer: 'https://app', jwtAudience: 'tem' }), clock);
    const now = Math.floor(clock.nowMs() / 1000);
    const good = { exp: now + 60, iss: 'https://app', aud: 'tem' };
    const detail = async (token: string) => (await rejection(auth.authenticate(token))).message;
    expect(await detail(await sign({ sub: 'u1' }, { iss: 'https://app', aud: 'tem' }))).toBe('Token has no exp claim');
    expect(await detail(await sign({}, good))).toBe('Token has no sub claim');
    expect(await detail(await sign({ sub: 'u1' }, { ...good, exp: now - 1 }))).toBe('Token has expired (exp)');
    expect(await detail(await sign({ sub: 'u1' }, { ...good, iss: 'https://evil' }))).toBe('Token iss claim is not accepted');
    expect(await detail(await sign({ sub: 'u1' }, { ...good, aud: 'other' }))).toBe('Token aud claim is not accepted');
    expect(await detail(await sign({ sub: 'u1', nbf: now + 600 }, good))).toBe('Token is not valid yet (nbf)');
    // Signed with another key: the claims were not read, so none is named.
    expect(await detail(await sign({ sub: 'u1' }, { key: 'another-secret-of-reasonable-length-000000' }))).toBe('Invalid token: malformed, or not signed with the configured key and algorithm');
  });

  it('accepts RS256 tokens signed by the configured public key only', async () => {
    const clock = new ManualClock();
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const other = await generateKeyPair('RS256');
    const pem = await exportSPKI(publicKey);
    const auth = new Authenticator(store, config({ jwtPublicKey: pem.replace(/\n/g, '\\n') }), clock);
    const exp = Math.floor(clock.nowMs() / 1000) + 60;
    const token = await new SignJWT({ sub: 'u_rs' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime(exp).sign(privateKey);
    expect((await auth.authenticate(token)).userId).toBe('u_rs');
    const forged = await new SignJWT({ sub: 'u_rs' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime(exp).sign(other.privateKey);
    expect((await rejection(auth.authenticate(forged))).code).toBe('UNAUTHORIZED');
    // An HS256 token "signed" with the public key text must not pass (algorithm confusion).
    const confused = await new SignJWT({ sub: 'u_rs' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(pem));
    expect((await rejection(auth.authenticate(confused))).code).toBe('UNAUTHORIZED');
  });

  it('takes the public key in PKCS#1 form ("BEGIN RSA PUBLIC KEY") as well', async () => {
    const clock = new ManualClock();
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    expect(pem).toMatch(/BEGIN RSA PUBLIC KEY/);
    const auth = new Authenticator(store, config({ jwtPublicKey: pem }), clock);
    const exp = Math.floor(clock.nowMs() / 1000) + 60;
    const token = await new SignJWT({ sub: 'u_pkcs1' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime(exp).sign(privateKey);
    expect((await auth.authenticate(token)).userId).toBe('u_pkcs1');
  });

  it('rejects JWTs when none is configured', async () => {
    const clock = new ManualClock();
    const auth = new Authenticator(store, config(), clock);
    const token = await sign({ sub: 'u1' }, { exp: Math.floor(clock.nowMs() / 1000) + 60 });
    expect((await rejection(auth.authenticate(token))).code).toBe('UNAUTHORIZED');
  });
});

describe('auth changes', () => {
  it('sends the notice of a committed change again when the first attempt fails', async () => {
    let refusals = 2;
    const flaky = new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (prop === 'notifyAuthChanged') {
          return (change: AuthChange) => (refusals-- > 0 ? Promise.reject(createError('STORE_UNAVAILABLE', 'blip')) : target.notifyAuthChanged(change));
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const auth = new Authenticator(flaky, config(), new ManualClock());
    await expect(auth.changed({ roles: true })).resolves.toBeUndefined();
    expect(refusals).toBe(-1);
  });
});

describe('ensureAdminKey', () => {
  it('creates the admin principal and key once, idempotently', async () => {
    const { key } = generateApiKey();
    const first = await ensureAdminKey(store, key);
    const second = await ensureAdminKey(store, key);
    expect(second).toEqual(first);
    const admin = await store.getPrincipal('admin');
    expect(admin).toMatchObject({ kind: 'service', role: 'admin' });
    expect((await store.listApiKeys('admin')).filter((k) => k.id === first.keyId)).toHaveLength(1);
    const ctx = await new Authenticator(store, config(), new ManualClock()).authenticate(key);
    expect(ctx).toMatchObject({ principalId: 'admin', permissions: ['*'] });
  });

  it('refuses a malformed key', async () => {
    await expect(ensureAdminKey(store, 'tem_short')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('leaves a revoked admin key revoked, or its principal disabled, and says so at start', async () => {
    const { key } = generateApiKey();
    const { keyId, unusable } = await ensureAdminKey(store, key);
    expect(unusable).toBeNull();
    const errors: string[] = [];
    const logger = { error: (_fields: unknown, msg: string) => errors.push(msg) } as unknown as Logger;
    const cfg = config({ adminKey: key });

    await store.revokeApiKey(keyId, new Date('2026-02-01T00:00:00Z'));
    expect((await ensureAdminKey(store, key)).unusable).toBe('it was revoked at 2026-02-01T00:00:00.000Z');
    expect((await setUpAdminKey(store, cfg, { writeFile: false, logger })).unusable).toMatch(/revoked/);
    expect(errors).toEqual([expect.stringMatching(/^the admin key \(TEM_ADMIN_KEY\) authenticates nothing: it was revoked at .*; set a new TEM_ADMIN_KEY$/)]);
    // Still revoked: a start does not undo an operator's revocation.
    expect((await store.listApiKeys('admin')).find((k) => k.id === keyId)?.revokedAt).not.toBeNull();

    const { key: other } = generateApiKey();
    await store.updatePrincipal('admin', { disabled: true });
    expect((await ensureAdminKey(store, other)).unusable).toBe('its principal admin is disabled');
    expect((await ensureAdminKey(store, other)).unusable).toBe('its principal admin is disabled');
    expect((await ensureAdminKey(store, key)).unusable).toBe('it was revoked at 2026-02-01T00:00:00.000Z, and its principal admin is disabled');
    // A new key belongs to the same disabled principal: the advice is to re-enable it, not to set one.
    errors.length = 0;
    const { key: third } = generateApiKey();
    expect((await setUpAdminKey(store, config({ adminKey: third }), { writeFile: false, logger })).principalDisabled).toBe(true);
    expect(errors).toEqual([
      'the admin key (TEM_ADMIN_KEY) authenticates nothing: its principal admin is disabled; a new admin key would belong to the same principal: re-enable it with another key allowed to (tem principals update admin --enable)',
    ]);
    await store.updatePrincipal('admin', { disabled: false });
  });
});

describe('key use', () => {
  it('records last_used_at after a request, at most once a minute per key', async () => {
    const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
    const auth = new Authenticator(store, config(), clock);
    const { key, keyId } = await makeKey('u1');
    const lastUsed = async () => (await store.listApiKeys('u1')).find((k) => k.id === keyId)!.lastUsedAt;
    expect(await lastUsed()).toBeNull();
    await auth.authenticate(key);
    await auth.authenticate(key);
    await auth.flushKeyUse();
    expect(await lastUsed()).toEqual(new Date('2026-01-01T00:00:00Z'));
    clock.advance(30_000);
    await auth.authenticate(key);
    await auth.flushKeyUse();
    expect(await lastUsed()).toEqual(new Date('2026-01-01T00:00:00Z'));
    clock.advance(30_000);
    await auth.authenticate(key);
    await auth.flushKeyUse();
    expect(await lastUsed()).toEqual(new Date('2026-01-01T00:01:00Z'));
    await auth.close();
  });
});

