/**
 * The first admin: principal `admin` (a service with the `admin` role) holding a given key.
 * Used for TEM_ADMIN_KEY (distributed bootstrap) and the embedded server's admin.key.
 * Idempotent: running it again with the same key changes nothing.
 */
import { newId } from '../core/ids.js';
import { createError, isTemError } from '../core/errors.js';
import type { Store } from '../store/types.js';
import { hashApiKey, isWellFormedKey, keyPrefix } from './keys.js';

export const ADMIN_PRINCIPAL_ID = 'admin';

export interface AdminKeySetUp {
  principalId: string;
  keyId: string;
  /**
   * Why the key authenticates nothing, when it does not: revoked, or its principal disabled. A
   * start does not undo what an operator did (a revocation must stick); it says so instead.
   */
  unusable: string | null;
  /** Whether principal `admin` is disabled: then no key of its, new or old, authenticates. */
  principalDisabled: boolean;
}

export async function ensureAdminKey(store: Store, key: string): Promise<AdminKeySetUp> {
  if (!isWellFormedKey(key)) {
    throw createError('BAD_REQUEST', 'The admin key must be tem_ followed by at least 32 base62 characters', { field: 'TEM_ADMIN_KEY' });
  }
  const principal = await store.getPrincipal(ADMIN_PRINCIPAL_ID);
  const disabled = principal?.disabled ? `its principal ${ADMIN_PRINCIPAL_ID} is disabled` : null;
  if (!principal) {
    await ignoreConflict(store.createPrincipal({ id: ADMIN_PRINCIPAL_ID, kind: 'service', role: 'admin' }));
  }
  const hash = hashApiKey(key);
  const existing = await store.findApiKeyByHash(hash);
  if (existing) {
    if (existing.principal.id !== ADMIN_PRINCIPAL_ID) {
      throw createError('CONFLICT', 'The admin key is already registered to another principal');
    }
    const revoked = existing.key.revokedAt ? `it was revoked at ${existing.key.revokedAt.toISOString()}` : null;
    const unusable = revoked && disabled ? `${revoked}, and ${disabled}` : (revoked ?? disabled);
    return { principalId: ADMIN_PRINCIPAL_ID, keyId: existing.key.id, unusable, principalDisabled: disabled !== null };
  }
  const id = newId('key');
  try {
    await store.createApiKey({ id, principalId: ADMIN_PRINCIPAL_ID, hash, prefix: keyPrefix(key), expiresAt: null });
  } catch (err) {
    // Another process bootstrapping at the same moment stored it first.
    const again = isTemError(err) && err.code === 'CONFLICT' ? await store.findApiKeyByHash(hash) : null;
    if (!again) throw err;
    return { principalId: ADMIN_PRINCIPAL_ID, keyId: again.key.id, unusable: disabled, principalDisabled: disabled !== null };
  }
  return { principalId: ADMIN_PRINCIPAL_ID, keyId: id, unusable: disabled, principalDisabled: disabled !== null };
}

async function ignoreConflict(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(isTemError(err) && err.code === 'CONFLICT')) throw err;
  }
}
