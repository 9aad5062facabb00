/**
 * Permission resolution. Permissions are `<app>.<method>.<view>` strings; a pattern's `*`
 * matches exactly one segment, or, as the last segment, one or more remaining segments
 * (`events.*`, `*`, `events.*.event_detail`). Pure functions: no I/O.
 */
import type { AuthContext } from './types.js';

export function matchPermission(pattern: string, permission: string): boolean {
  if (pattern === permission) return true;
  const p = pattern.split('.');
  const s = permission.split('.');
  for (let i = 0; i < p.length; i++) {
    const seg = p[i]!;
    if (seg === '*' && i === p.length - 1) return s.length > i;
    if (i >= s.length) return false;
    if (seg !== '*' && seg !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Granted by role ∪ extra, and not matched by any revoked pattern: revoked always wins. */
export function can(ctx: Pick<AuthContext, 'permissions' | 'revoked'>, permission: string): boolean {
  if (!ctx.permissions.some((p) => matchPermission(p, permission))) return false;
  return !ctx.revoked.some((r) => matchPermission(r, permission));
}

/**
 * The grants that survive revocation, as a list: role ∪ extra − revoked. A grant a revoked
 * pattern covers is gone; a wider grant with a narrower exception (`events.*` minus
 * `events.post.event_ingest`) stays, and `revoked` still names the exception.
 */
export function effectivePermissions(ctx: Pick<AuthContext, 'permissions' | 'revoked'>): string[] {
  return ctx.permissions.filter((p) => !ctx.revoked.some((r) => matchPermission(r, p)));
}

/** A principal's grants: its role's policy plus its extra permissions, without duplicates. */
export function resolveGrants(rolePermissions: readonly string[], extra: readonly string[]): string[] {
  return [...new Set([...rolePermissions, ...extra])];
}

/** Whether the caller sees every event (the admin `*` grant, not revoked). */
export function seesAllEvents(ctx: Pick<AuthContext, 'permissions' | 'revoked'>): boolean {
  return ctx.permissions.includes('*') && !ctx.revoked.some((r) => r === '*');
}

/**
 * Valid permission or pattern: three segments (`<app>.<method>.<view>`), each [A-Za-z0-9_-] or
 * `*`; or fewer ending in `*` (`*`, `events.*`). Anything else (`events.get`) could never match
 * a permission, so it is refused rather than stored as a grant that grants nothing.
 */
export const PERMISSION_RE = /^(?:(?:\*|[A-Za-z0-9_-]+)\.(?:\*|[A-Za-z0-9_-]+)\.(?:\*|[A-Za-z0-9_-]+)|(?:(?:\*|[A-Za-z0-9_-]+)\.)?\*)$/;
