/**
 * No escalation through administration: a caller may hand on only permissions it holds itself
 * (policy.holdsAll) — in a role it edits, as a role or extra permissions it gives a principal,
 * by lifting a principal's revocation, or by minting a key that acts as a principal. A key with
 * `admin.post.key_create` alone cannot mint itself the admin's key, nor one with
 * `admin.put.role_update` put `*` into its own role. The built-in admin role (`*`) holds all.
 */
import type { FastifyRequest } from 'fastify';
import { holdsAll } from '../auth/policy.js';
import { createError } from '../core/errors.js';

export function requireHeld(request: FastifyRequest, patterns: Iterable<string>, field: string, what: string): void {
  const caller = request.auth;
  if (!caller) throw createError('UNAUTHORIZED', 'No credentials');
  const missing = [...new Set(patterns)].filter((p) => !holdsAll(caller, p));
  if (missing.length === 0) return;
  throw createError('FORBIDDEN', `${what} needs permissions this key does not hold itself: ${missing.join(', ')}`, { field });
}
