/**
 * Roles: get (→ Role | null), list (→ Role[] by name), put (create or replace the permissions
 * of a role, built-in ones included → Role).
 */
import type { Db } from '../db.js';
import type { Role } from '../../core/types.js';
import { toRole, type RoleRow } from '../rows.js';

export async function getRole(db: Db, name: string): Promise<Role | null> {
  const [row] = await db.query<RoleRow>(`SELECT * FROM roles WHERE name = $1`, [name]);
  return row ? toRole(row) : null;
}

export async function listRoles(db: Db): Promise<Role[]> {
  const rows = await db.query<RoleRow>(`SELECT * FROM roles ORDER BY name`);
  return rows.map(toRole);
}

/** Creates or replaces a role; `created` says which (xmax is 0 on a row this statement inserted). */
export async function putRole(db: Db, name: string, permissions: string[]): Promise<{ role: Role; created: boolean }> {
  const [row] = await db.query<RoleRow & { created: boolean }>(
    `INSERT INTO roles (name, permissions) VALUES ($1, $2::jsonb)
     ON CONFLICT (name) DO UPDATE SET permissions = EXCLUDED.permissions, updated_at = now()
     RETURNING *, (xmax = 0) AS created`,
    [name, JSON.stringify(permissions)],
  );
  return { role: toRole(row!), created: row!.created };
}
