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

/**
 * A permission pattern as what it matches among `<app>.<method>.<view>` permissions: per segment
 * a literal or null (any). `events.*` → [events, any, any]; `*` → [any, any, any].
 */
function segments(pattern: string): (string | null)[] {
  const parts = pattern.split('.');
  const out: (string | null)[] = [];
  for (let i = 0; i < 3; i++) {
    const seg = parts[i];
    // A trailing `*` stands for every remaining segment.
    if (seg === undefined || (seg === '*' && i === parts.length - 1)) {
      while (out.length < 3) out.push(null);
      break;
    }
    out.push(seg === '*' ? null : seg);
  }
  return out;
}

/** Whether `outer` matches every permission `inner` matches. */
function contains(outer: (string | null)[], inner: (string | null)[]): boolean {
  return outer.every((seg, i) => seg === null || seg === inner[i]);
}

/** Whether some permission matches both. */
function overlaps(a: (string | null)[], b: (string | null)[]): boolean {
  return a.every((seg, i) => seg === null || b[i] === null || seg === b[i]);
}

/**
 * Whether `ctx` holds every permission `pattern` matches: one of its grants covers the whole
 * pattern and none of its revocations touches it. Only then may it hand the pattern on (in a
 * role, as an extra permission, by un-revoking it, or with a key of someone who has it): a
 * principal allowed to edit roles or mint keys cannot thereby give itself, or anyone, more than
 * it has. Each segment ranges over unbounded names, so a grant set covers a pattern only when a
 * single grant does.
 */
export function holdsAll(ctx: Pick<AuthContext, 'permissions' | 'revoked'>, pattern: string): boolean {
  const wanted = segments(pattern);
  if (!ctx.permissions.some((p) => contains(segments(p), wanted))) return false;
  return !ctx.revoked.some((r) => overlaps(segments(r), wanted));
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
 * Valid permission or pattern: three segments (`<app>.<method>.<view>`), each a name or `*`; or
 * fewer ending in `*` (`*`, `events.*`). The app and method segments are lowercase, as every
 * permission a route or channel checks spells them (`events.get.…`, `channels.subscribe.…`); the
 * view may hold capitals (a channel namespace can). Anything else (`events.get`,
 * `EVENTS.GET.event_list`) could never match a permission, so it is refused rather than stored
 * as a grant that grants nothing.
 */
export const PERMISSION_RE = /^(?:(?:\*|[a-z0-9_-]+)\.(?:\*|[a-z0-9_-]+)\.(?:\*|[A-Za-z0-9_-]+)|(?:(?:\*|[a-z0-9_-]+)\.)?\*)$/;
