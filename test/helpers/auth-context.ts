import type { AuthContext } from '../../src/auth/types.js';

/** An authenticated context for code that takes one directly: user `u1` by JWT, no permissions, unless overridden. */
export function authContext(over: Partial<AuthContext> = {}): AuthContext {
  return {
    principalId: 'u1',
    kind: 'user',
    userId: 'u1',
    role: 'user',
    permissions: [],
    revoked: [],
    channels: [],
    keyId: null,
    expiresAt: null,
    via: 'jwt',
    ...over,
  };
}
