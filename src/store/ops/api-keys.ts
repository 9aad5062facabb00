/**
 * API keys: create (→ ApiKeyRecord; NOT_FOUND for an unknown principal), findByHash (→ the key,
 * its principal and its role's permissions in one query, whatever the key's state), list (a
 * principal's keys, oldest first), revoke (sets revoked_at once → the key, or null).
 */
import type { Db } from '../db.js';
import type { KeyLookup, NewApiKey } from '../types.js';
import type { ApiKeyRecord } from '../../core/types.js';
import { mapped } from '../errors.js';
import { toApiKey, toPrincipal, type ApiKeyRow, type PrincipalRow } from '../rows.js';

const KEY_COLUMNS = 'id, principal_id, prefix, created_at, expires_at, revoked_at, last_used_at';

export function createApiKey(db: Db, k: NewApiKey): Promise<ApiKeyRecord> {
  return mapped(
    async () => {
      const [row] = await db.query<ApiKeyRow>(
        `INSERT INTO api_keys (id, principal_id, hash, prefix, expires_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING ${KEY_COLUMNS}`,
        [k.id, k.principalId, k.hash, k.prefix, k.expiresAt],
      );
      return toApiKey(row!);
    },
    { foreignKey: { code: 'NOT_FOUND', detail: `Principal ${k.principalId} not found` }, unique: 'Key already exists' },
  );
}

interface LookupRow extends ApiKeyRow {
  hash: string;
  p_id: string;
  p_kind: PrincipalRow['kind'];
  p_role: string;
  p_extra_permissions: string[];
  p_revoked_permissions: string[];
  p_disabled: boolean;
  p_created_at: Date;
  p_updated_at: Date;
  role_permissions: string[] | null;
}

export async function findApiKeyByHash(db: Db, hash: string): Promise<KeyLookup | null> {
  const [r] = await db.query<LookupRow>(
    `SELECT k.id, k.principal_id, k.hash, k.prefix, k.created_at, k.expires_at, k.revoked_at, k.last_used_at,
       p.id AS p_id, p.kind AS p_kind, p.role AS p_role, p.extra_permissions AS p_extra_permissions,
       p.revoked_permissions AS p_revoked_permissions, p.disabled AS p_disabled,
       p.created_at AS p_created_at, p.updated_at AS p_updated_at, r.permissions AS role_permissions
     FROM api_keys k
     JOIN principals p ON p.id = k.principal_id
     LEFT JOIN roles r ON r.name = p.role
     WHERE k.hash = $1`,
    [hash],
  );
  if (!r) return null;
  return {
    key: toApiKey(r),
    storedHash: r.hash,
    principal: toPrincipal({
      id: r.p_id,
      kind: r.p_kind,
      role: r.p_role,
      extra_permissions: r.p_extra_permissions,
      revoked_permissions: r.p_revoked_permissions,
      disabled: r.p_disabled,
      created_at: r.p_created_at,
      updated_at: r.p_updated_at,
    }),
    rolePermissions: r.role_permissions ?? [],
  };
}

export async function listApiKeys(db: Db, principalId: string): Promise<ApiKeyRecord[]> {
  const rows = await db.query<ApiKeyRow>(
    `SELECT ${KEY_COLUMNS} FROM api_keys WHERE principal_id = $1 ORDER BY created_at, id`,
    [principalId],
  );
  return rows.map(toApiKey);
}

/** Marks keys as used at `at` (never moving last_used_at back). */
export async function touchApiKeys(db: Db, keyIds: string[], at: Date): Promise<void> {
  if (keyIds.length === 0) return;
  await db.query(`UPDATE api_keys SET last_used_at = $2 WHERE id = ANY($1::text[]) AND (last_used_at IS NULL OR last_used_at < $2)`, [keyIds, at]);
}

export async function revokeApiKey(db: Db, keyId: string, now: Date): Promise<ApiKeyRecord | null> {
  const [row] = await db.query<ApiKeyRow>(
    `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
    [keyId, now],
  );
  return row ? toApiKey(row) : null;
}
