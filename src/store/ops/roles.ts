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

export async function putRole(db: Db, name: string, permissions: string[]): Promise<Role> {
  const [row] = await db.query<RoleRow>(
    `INSERT INTO roles (name, permissions) VALUES ($1, $2::jsonb)
     ON CONFLICT (name) DO UPDATE SET permissions = EXCLUDED.permissions, updated_at = now()
     RETURNING *`,
    [name, JSON.stringify(permissions)],
  );
  return toRole(row!);
}
