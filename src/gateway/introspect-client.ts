/**
 * TokenAuthenticator for distributed gateways, which hold no database: asks the API's internal
 * listener, `POST {apiInternalUrl}/internal/auth/introspect {token}` → `{active, principal_id,
 * kind, user_id, permissions, channels, expires_at, …}` (contract §3), and caches the answer for
 * at most config.introspectCacheMs (and never past the credential's expiry). A revocation control
 * message drops the matching entries at once, a role edit all of them (`handleControl`).
 *
 * JWTs are verified here when the node has the verifier (the same TEM_JWT_SECRET or
 * TEM_JWT_PUBLIC_KEY as the API): a JWT is a credential the node can check itself, and asking the
 * API for each one cost an HTTP round trip per handshake — no cache helps, every client has its
 * own token. What the token cannot say, the `user` role's permissions (they live in the
 * database), comes from the API's answer for one JWT and is reused for the cache period. That
 * answer also carries a digest of the API's JWT settings: if this node's differ (another secret,
 * issuer or audience), it stops verifying JWTs itself and asks the API for each, so it can never
 * accept a token the API would refuse.
 */
import { createHash } from 'node:crypto';
import { jwtContext, looksLikeJwt, type JwtVerifier } from '../auth/jwt.js';
import type { Logger } from '../observability/logger.js';
import type { AuthContext, TokenAuthenticator } from '../auth/types.js';
import type { ControlMessage } from '../bus/types.js';
import type { Clock } from '../core/clock.js';
import { createError, isTemError } from '../core/errors.js';

export interface IntrospectOptions {
  baseUrl: string;
  cacheMs: number;
  clock: Clock;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Verifies JWTs on this node; null or absent: the API checks them too. */
  jwt?: JwtVerifier | null;
  /** jwtSettingsDigest() of this node's settings, compared with the API's. */
  jwtSettings?: string | null;
  logger?: Logger;
}

interface Entry {
  ctx: AuthContext;
  until: number;
}

const MAX_CACHE = 10_000;

/** Implemented by authenticators that cache: the gateway forwards revocations to them. */
export interface RevocationAware {
  handleControl(message: ControlMessage): void;
}

export function isRevocationAware(x: unknown): x is RevocationAware {
  return typeof (x as Partial<RevocationAware> | null)?.handleControl === 'function';
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

/** Maps an introspection answer to an AuthContext; throws UNAUTHORIZED when inactive. */
export function contextFromIntrospection(body: Record<string, unknown>): AuthContext {
  if (body.active !== true || typeof body.principal_id !== 'string') throw createError('UNAUTHORIZED', 'Invalid credentials');
  const keyId = typeof body.key_id === 'string' ? body.key_id : null;
  const expires = typeof body.expires_at === 'string' ? new Date(body.expires_at) : null;
  return {
    principalId: body.principal_id,
    kind: body.kind === 'service' ? 'service' : 'user',
    userId: typeof body.user_id === 'string' ? body.user_id : body.principal_id,
    role: typeof body.role === 'string' ? body.role : '',
    permissions: strings(body.permissions),
    revoked: strings(body.revoked),
    channels: strings(body.channels),
    keyId,
    expiresAt: expires && !Number.isNaN(expires.getTime()) ? expires : null,
    via: body.via === 'jwt' || body.via === 'key' ? body.via : keyId ? 'key' : 'jwt',
  };
}

export class IntrospectionAuthenticator implements TokenAuthenticator, RevocationAware {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<AuthContext>>();
  private generation = 0;
  private readonly url: string;
  /** The `user` role's permissions, as the API last gave them with a JWT's answer. */
  private userRole: { permissions: string[]; until: number } | null = null;
  private userRolePending: Promise<string[] | null> | null = null;
  /** Verifies JWTs on this node; null without one, or for good once the API's settings differed. */
  private localJwt: JwtVerifier | null;

  constructor(private readonly options: IntrospectOptions) {
    this.url = new URL('/internal/auth/introspect', options.baseUrl).toString();
    this.localJwt = options.jwt ?? null;
  }

  async authenticate(token: string): Promise<AuthContext> {
    if (this.localJwt && looksLikeJwt(token)) return this.authenticateJwt(token, this.localJwt);
    return this.authenticateRemote(token);
  }

  private async authenticateJwt(token: string, verify: JwtVerifier): Promise<AuthContext> {
    const claims = await verify(token);
    const role = this.userRole;
    if (role && this.options.clock.nowMs() < role.until) return jwtContext(claims, role.permissions);
    // One question to the API for the role at a time; the handshakes meanwhile wait for it.
    const pending = (this.userRolePending ??= this.fetchUserRole(token).finally(() => {
      if (this.userRolePending === pending) this.userRolePending = null;
    }));
    let permissions: string[] | null;
    try {
      permissions = await pending;
    } catch {
      permissions = null; // the token asked about was refused or the API failed: ask about this one
    }
    if (permissions === null || !this.localJwt) return this.authenticateRemote(token);
    return jwtContext(claims, permissions);
  }

  /** The `user` role's permissions from the API's answer for `token`; null when it cannot tell. */
  private async fetchUserRole(token: string): Promise<string[] | null> {
    const generation = this.generation;
    const { ctx, jwtSettings } = await this.introspect(token);
    if (jwtSettings !== (this.options.jwtSettings ?? null)) {
      this.localJwt = null;
      this.options.logger?.error(
        { api: this.options.baseUrl },
        'this gateway\'s JWT settings (secret or public key, issuer, audience) differ from the API\'s: JWTs are checked by the API from now on',
      );
      return null;
    }
    if (ctx.via !== 'jwt' || ctx.role !== 'user') return null;
    if (generation === this.generation && this.options.cacheMs > 0) {
      this.userRole = { permissions: ctx.permissions, until: this.options.clock.nowMs() + this.options.cacheMs };
    }
    return ctx.permissions;
  }

  private async authenticateRemote(token: string): Promise<AuthContext> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.options.clock.nowMs();
    const hit = this.cache.get(key);
    if (hit && now < hit.until) return hit.ctx;
    if (hit) this.cache.delete(key);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const generation = this.generation;
    const p = this.introspect(token)
      .then(({ ctx }) => {
        // A revocation that arrived while this request was in flight must not be undone by it.
        if (generation === this.generation && this.options.cacheMs > 0) {
          const expiry = ctx.expiresAt ? ctx.expiresAt.getTime() : Infinity;
          if (this.cache.size >= MAX_CACHE) this.cache.delete(this.cache.keys().next().value!);
          this.cache.set(key, { ctx, until: Math.min(this.options.clock.nowMs() + this.options.cacheMs, expiry) });
        }
        return ctx;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  handleControl(message: ControlMessage): void {
    if (message.kind === 'roles_changed') {
      this.clear();
      return;
    }
    if (message.kind !== 'revoke_key' && message.kind !== 'revoke_principal') return;
    this.generation++;
    this.inflight.clear();
    for (const [key, entry] of this.cache) {
      const hit = message.kind === 'revoke_key' ? entry.ctx.keyId === message.keyId : entry.ctx.principalId === message.principalId;
      if (hit) this.cache.delete(key);
    }
  }

  /** Forgets every cached answer. */
  clear(): void {
    this.generation++;
    this.userRole = null;
    this.userRolePending = null;
    this.cache.clear();
    this.inflight.clear();
  }

  private async introspect(token: string): Promise<{ ctx: AuthContext; jwtSettings: string | null }> {
    const doFetch = this.options.fetch ?? fetch;
    let res: Response;
    try {
      res = await doFetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      });
    } catch (err) {
      throw createError('INTERNAL', 'authentication service unreachable', { cause: err });
    }
    if (res.status === 401 || res.status === 403) throw createError('UNAUTHORIZED', 'Invalid credentials');
    if (!res.ok) throw createError('INTERNAL', `authentication service answered ${res.status}`);
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      throw createError('INTERNAL', 'authentication service sent a bad answer', { cause: err });
    }
    if (!body || typeof body !== 'object') throw createError('INTERNAL', 'authentication service sent a bad answer');
    try {
      const answer = body as Record<string, unknown>;
      return { ctx: contextFromIntrospection(answer), jwtSettings: typeof answer.jwt_settings === 'string' ? answer.jwt_settings : null };
    } catch (err) {
      if (isTemError(err)) throw err;
      throw createError('UNAUTHORIZED', 'Invalid credentials');
    }
  }
}
