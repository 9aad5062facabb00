/**
 * Principals: create (→ Principal; CONFLICT when the id exists, BAD_REQUEST for an unknown role),
 * get/list (→ Principal | null / Principal[] by id), update (→ the patched Principal or null).
 */
import type { Db } from '../db.js';
import type { ListPrincipalsQuery, NewPrincipal, PrincipalPage, PrincipalPatch } from '../types.js';
import type { Principal } from '../../core/types.js';
import { mapped } from '../errors.js';
import { toPrincipal, type PrincipalRow } from '../rows.js';

const UNKNOWN_ROLE = { foreignKey: { code: 'BAD_REQUEST' as const, detail: 'Unknown role', field: 'body.role' } };

export function createPrincipal(db: Db, p: NewPrincipal): Promise<Principal> {
  return mapped(
    async () => {
      const [row] = await db.query<PrincipalRow>(
        `INSERT INTO principals (id, kind, role, extra_permissions, revoked_permissions)
         VALUES ($1, $2, $3, $4::jsonb, $5::jsonb) RETURNING *`,
        [p.id, p.kind, p.role, JSON.stringify(p.extraPermissions ?? []), JSON.stringify(p.revokedPermissions ?? [])],
      );
      return toPrincipal(row!);
    },
    { ...UNKNOWN_ROLE, unique: `Principal ${p.id} already exists` },
  );
}

export async function getPrincipal(db: Db, id: string): Promise<Principal | null> {
  const [row] = await db.query<PrincipalRow>(`SELECT * FROM principals WHERE id = $1`, [id]);
  return row ? toPrincipal(row) : null;
}

/** Keyset paging on the primary key: one row past the page says whether another follows. */
export async function listPrincipals(db: Db, q: ListPrincipalsQuery): Promise<PrincipalPage> {
  const rows = await db.query<PrincipalRow>(
    `SELECT * FROM principals
      WHERE ($1::text IS NULL OR id > $1) AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR role = $3)
      ORDER BY id LIMIT $4`,
    [q.cursor ?? null, q.kind ?? null, q.role ?? null, q.limit + 1],
  );
  const page = rows.slice(0, q.limit).map(toPrincipal);
  return { principals: page, nextCursor: rows.length > q.limit ? page[page.length - 1]!.id : null };
}

export function updatePrincipal(db: Db, id: string, patch: PrincipalPatch): Promise<Principal | null> {
  const json = (v: string[] | undefined): string | null => (v === undefined ? null : JSON.stringify(v));
  return mapped(async () => {
    const [row] = await db.query<PrincipalRow>(
      `UPDATE principals SET
         role = COALESCE($2, role),
         extra_permissions = COALESCE($3::jsonb, extra_permissions),
         revoked_permissions = COALESCE($4::jsonb, revoked_permissions),
         disabled = COALESCE($5, disabled),
         updated_at = now()
       WHERE id = $1 RETURNING *`,
      [id, patch.role ?? null, json(patch.extraPermissions), json(patch.revokedPermissions), patch.disabled ?? null],
    );
    return row ? toPrincipal(row) : null;
  }, UNKNOWN_ROLE);
}
