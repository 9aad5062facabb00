/**
 * Turns a bearer token into an AuthContext. API keys (`tem_…`) are looked up by hash and cached
 * for up to config.authCacheMs; JWTs (three dotted parts) are verified when configured.
 *
 * Revocation must bite on the very next request, so the cache is dropped: at once when this
 * process changes keys/principals/roles (`changed()`), and when another process says so through
 * `store.onAuthChanged`. A generation counter stops a lookup that started before an
 * invalidation from refilling the cache with what it read.
 */
import type { TemConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import { createError } from '../core/errors.js';
import type { KeyLookup, Store, Unlisten } from '../store/types.js';
import { hashApiKey, hashesEqual, isWellFormedKey, KEY_PREFIX } from './keys.js';
import { createJwtVerifier, jwtContext, looksLikeJwt, type JwtVerifier } from './jwt.js';
import { resolveGrants } from './policy.js';
import type { AuthContext, TokenAuthenticator } from './types.js';

export interface AuthChange {
  principalId?: string;
  keyId?: string;
  /** A role's permissions were edited: anyone may have gained or lost some. */
  roles?: boolean;
}

export type AuthChangeListener = (change: AuthChange) => void;

interface CacheEntry<T> {
  value: T;
  at: number;
}

/** Bounded so a flood of random keys cannot grow memory. */
const MAX_CACHED_KEYS = 10_000;

/**
 * How fresh a key's last_used_at is kept: written at most once per key in this period, from a
 * batch after the request, so using a key costs no database write on the request's path.
 */
export const KEY_USE_RESOLUTION_MS = 60_000;

/** Longest changed() waits for its own notice to come back (the database may be slow). */
const ECHO_TIMEOUT_MS = 1000;
/** Margin after it, for API processes busier than this one to handle the same notice. */
const ECHO_GRACE_MS = 50;
/** Pauses before the notice of a committed auth change is sent again (changed()). */
const NOTIFY_RETRY_DELAYS_MS = [100, 300, 900];

export class Authenticator implements TokenAuthenticator {
  private readonly keys = new Map<string, CacheEntry<KeyLookup | null>>();
  private readonly inflight = new Map<string, Promise<KeyLookup | null>>();
  private readonly contexts = new WeakMap<KeyLookup, AuthContext>();
  private userRole: CacheEntry<string[]> | null = null;
  private generation = 0;
  private readonly listeners = new Set<AuthChangeListener>();
  /** When each key's use was last recorded here (ms), and keys waiting to be recorded. */
  private readonly keyUse = new Map<string, number>();
  private readonly unrecorded = new Set<string>();
  private recording: Promise<void> | null = null;
  private readonly jwt: JwtVerifier | null;
  private unlisten: Unlisten | null = null;
  /** changed() calls waiting for their own notice to come back. */
  private readonly echoes = new Set<(change: AuthChange) => void>();

  constructor(
    private readonly store: Store,
    private readonly config: TemConfig,
    private readonly clock: Clock,
  ) {
    this.jwt = createJwtVerifier(config, clock);
  }

  /** Subscribes to auth changes made by other processes. */
  async start(): Promise<void> {
    if (this.unlisten) return;
    this.unlisten = await this.store.onAuthChanged((change) => {
      this.invalidate(change);
      for (const echo of [...this.echoes]) echo(change);
    });
  }

  async close(): Promise<void> {
    await this.flushKeyUse();
    const unlisten = this.unlisten;
    this.unlisten = null;
    if (unlisten) await unlisten().catch(() => undefined);
    this.listeners.clear();
  }

  async authenticate(token: string): Promise<AuthContext> {
    if (token.startsWith(KEY_PREFIX)) return this.authenticateKey(token);
    if (this.jwt && looksLikeJwt(token)) return this.authenticateJwt(token);
    throw createError('UNAUTHORIZED', 'Invalid credentials');
  }

  /**
   * Drops cached lookups now and tells listeners (the gateway closes affected sockets).
   * Called for changes from other processes and by `changed()`.
   */
  invalidate(change: AuthChange = {}): void {
    this.generation++;
    this.keys.clear();
    this.inflight.clear();
    this.userRole = null;
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        /* a listener's failure must not stop invalidation */
      }
    }
  }

  /**
   * After this process changed keys, principals or roles: invalidate here and tell the others.
   * On PostgreSQL, resolves only once the notice came back to this process too, and a moment
   * after: other API processes hear it at the same time, so a revocation answered here holds on
   * the next request to any of them, not a few milliseconds later (contract §1).
   */
  async changed(change: AuthChange = {}): Promise<void> {
    this.invalidate(change);
    const echoed = this.unlisten && this.store.kind === 'postgres' ? this.echoOf(change) : null;
    await this.notifyWithRetries(change);
    await echoed;
  }

  /**
   * The change itself has committed; only the notice to the other processes is left. A blip
   * here would answer the caller 503 for a change that holds, and leave the other processes on
   * their cached answers for up to the cache period: the notice is tried again a few times first.
   */
  private async notifyWithRetries(change: AuthChange): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.store.notifyAuthChanged(change);
        return;
      } catch (err) {
        const delay = NOTIFY_RETRY_DELAYS_MS[attempt];
        if (delay === undefined) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Resolves when the notice for `change` comes back (or after ECHO_TIMEOUT_MS), plus ECHO_GRACE_MS. */
  private echoOf(change: AuthChange): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.echoes.delete(echo);
        setTimeout(resolve, ECHO_GRACE_MS);
      };
      const echo = (heard: AuthChange) => {
        if (heard.principalId === change.principalId && heard.keyId === change.keyId && heard.roles === change.roles) done();
      };
      const timer = setTimeout(done, ECHO_TIMEOUT_MS);
      this.echoes.add(echo);
    });
  }

  /**
   * Called on every invalidation (a key revoked, a principal disabled or changed, a role
   * edited), with what changed; an empty change means "anything may have changed".
   * Returns a function that removes the listener.
   */
  onRevoked(listener: AuthChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async authenticateKey(token: string): Promise<AuthContext> {
    if (!isWellFormedKey(token)) throw createError('UNAUTHORIZED', 'Invalid credentials');
    const hash = hashApiKey(token);
    const lookup = await this.lookupKey(hash);
    if (!lookup) throw createError('UNAUTHORIZED', 'Invalid credentials');
    // The store finds the row by hash (an index lookup); the key is accepted only once the stored
    // hash is compared with this one in constant time, so acceptance never rests on a
    // short-circuiting comparison.
    if (!hashesEqual(lookup.storedHash, hash)) throw createError('UNAUTHORIZED', 'Invalid credentials');
    const { key, principal } = lookup;
    if (key.revokedAt) throw createError('UNAUTHORIZED', 'API key has been revoked');
    if (key.expiresAt && key.expiresAt.getTime() <= this.clock.nowMs()) throw createError('UNAUTHORIZED', 'API key has expired');
    if (principal.disabled) throw createError('UNAUTHORIZED', 'Principal is disabled');
    this.noteKeyUse(key.id);
    // The checks above run on every request; the context itself is built once per cached lookup
    // (a refreshed or invalidated lookup is a new object, so it gets a new context).
    const known = this.contexts.get(lookup);
    if (known) return known;
    const ctx: AuthContext = Object.freeze({
      principalId: principal.id,
      kind: principal.kind,
      userId: principal.id,
      role: principal.role,
      permissions: resolveGrants(lookup.rolePermissions, principal.extraPermissions),
      revoked: principal.revokedPermissions,
      channels: [],
      keyId: key.id,
      expiresAt: key.expiresAt,
      via: 'key',
    });
    this.contexts.set(lookup, ctx);
    return ctx;
  }

  /** Records a key's use (last_used_at) at most once per KEY_USE_RESOLUTION_MS, off the request path. */
  private noteKeyUse(keyId: string): void {
    const now = this.clock.nowMs();
    const last = this.keyUse.get(keyId);
    if (last !== undefined && now - last < KEY_USE_RESOLUTION_MS) return;
    if (this.keyUse.size >= MAX_CACHED_KEYS) this.keyUse.clear();
    this.keyUse.set(keyId, now);
    this.unrecorded.add(keyId);
    this.recording ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.recordKeyUse());
  }

  private async recordKeyUse(): Promise<void> {
    const ids = [...this.unrecorded];
    this.unrecorded.clear();
    try {
      // A failure (the database is away) only leaves last_used_at a little stale.
      await this.store.touchApiKeys(ids, this.clock.now()).catch(() => undefined);
    } finally {
      this.recording = null;
      if (this.unrecorded.size > 0) this.recording = this.recordKeyUse();
    }
  }

  /** Resolves once every key use noted so far is written (tests, shutdown). */
  async flushKeyUse(): Promise<void> {
    while (this.recording) await this.recording;
  }

  private async lookupKey(hash: string): Promise<KeyLookup | null> {
    const ttl = this.config.authCacheMs;
    if (ttl > 0) {
      const hit = this.keys.get(hash);
      if (hit && this.clock.nowMs() - hit.at < ttl) return hit.value;
      // Concurrent first requests with one key share a single query.
      const pending = this.inflight.get(hash);
      if (pending) return pending;
    }
    const generation = this.generation;
    const promise = this.store.findApiKeyByHash(hash);
    if (ttl <= 0) return promise;
    this.inflight.set(hash, promise);
    try {
      const value = await promise;
      if (generation === this.generation) {
        if (this.keys.size >= MAX_CACHED_KEYS) this.keys.delete(this.keys.keys().next().value!);
        this.keys.set(hash, { value, at: this.clock.nowMs() });
      }
      return value;
    } finally {
      if (this.inflight.get(hash) === promise) this.inflight.delete(hash);
    }
  }

  private async authenticateJwt(token: string): Promise<AuthContext> {
    const claims = await this.jwt!(token);
    return jwtContext(claims, await this.userRolePermissions());
  }

  /** JWT users get the `user` role's policy, read from the store and cached like keys. */
  private async userRolePermissions(): Promise<string[]> {
    const ttl = this.config.authCacheMs;
    const now = this.clock.nowMs();
    if (ttl > 0 && this.userRole && now - this.userRole.at < ttl) return this.userRole.value;
    const generation = this.generation;
    const role = await this.store.getRole('user');
    const value = role?.permissions ?? [];
    if (ttl > 0 && generation === this.generation) this.userRole = { value, at: now };
    return value;
  }
}
