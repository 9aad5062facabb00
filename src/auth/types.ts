/**
 * Who is calling, once a key or JWT has been checked. Shared by the HTTP API, the internal
 * introspection endpoint and the WebSocket gateway (which may receive it over HTTP).
 */
import type { PrincipalKind } from '../core/types.js';

export interface AuthContext {
  principalId: string;
  kind: PrincipalKind;
  /** The user whose channel `user:{id}` this caller owns (= principalId; JWT: `sub`). */
  userId: string;
  role: string;
  /** Resolved grants (role policy ∪ extra); check with `can()` from src/auth/policy.ts. */
  permissions: string[];
  /** Revoked permissions; revoked always wins. */
  revoked: string[];
  /** JWT `channels` claim: channel names/patterns this user may subscribe to. */
  channels: string[];
  /** API key id (null for JWTs): revoking it closes this caller's sockets. */
  keyId: string | null;
  /** When the credential stops being valid (key expiry or JWT exp). */
  expiresAt: Date | null;
  via: 'key' | 'jwt';
}

/** Resolves a bearer token (API key or JWT) to an AuthContext; throws UNAUTHORIZED. */
export interface TokenAuthenticator {
  authenticate(token: string): Promise<AuthContext>;
}
