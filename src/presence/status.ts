/**
 * How a user's connections add up to what others see, shared by every presence store.
 *
 * A user's visible status on a channel is the best over its stored connections: `online` wins,
 * then `dnd`, then `idle` (someone active on one device is reachable; do-not-disturb is a choice
 * the user made, so it outranks merely idle). A closed connection's entry lingers until its TTL
 * runs out (a reload does not flicker offline); stored as `~status`, it counts only while the
 * user has no open connection there: a tab closed as `online` must not hide the `dnd` of the
 * one still open. Every mutation compares the visible status before
 * (over the entries stored, expired or not: that is what was last reported) with the status
 * after (expired entries of that user purged), so each join/leave/update is reported once, by
 * whoever made the change.
 */
import { createError } from '../core/errors.js';
import { PRESENCE_STATUSES, type PresenceMember, type PresenceStatus } from '../protocol/frames.js';
import type { PresenceChange } from './types.js';

const RANK: Record<PresenceStatus, number> = { online: 3, dnd: 2, idle: 1 };

/** Marks a stored status as a closed connection's (see above; the Redis scripts use the same). */
export const LINGERING = '~';

/** A stored status (`online`, or `~online` for a closed connection's) and its rank. */
function ranked(stored: string): [PresenceStatus, number] {
  const lingering = stored.startsWith(LINGERING);
  const status = (lingering ? stored.slice(1) : stored) as PresenceStatus;
  return [status, (RANK[status] ?? 0) + (lingering ? 0 : 3)];
}

/** The visible status over a user's stored statuses; null when there are none. */
export function bestStatus(stored: Iterable<string>): PresenceStatus | null {
  let best: PresenceStatus | null = null;
  let bestRank = 0;
  for (const s of stored) {
    const [status, rank] = ranked(s);
    if (rank > bestRank) [best, bestRank] = [status, rank];
  }
  return best;
}

/** The change between two visible states (null = not present), or null when nothing changed. */
export function changeOf(channel: string, userId: string, before: PresenceStatus | null, after: PresenceStatus | null, version: number): PresenceChange | null {
  if (before === after) return null;
  if (before === null) return { channel, userId, kind: 'join', status: after!, version };
  if (after === null) return { channel, userId, kind: 'leave', status: 'offline', version };
  return { channel, userId, kind: 'update', status: after, version };
}

export function assertStatus(status: string): asserts status is PresenceStatus {
  if (!(PRESENCE_STATUSES as readonly string[]).includes(status)) {
    throw createError('BAD_REQUEST', `Unknown presence status ${JSON.stringify(status)}`, { field: 'status' });
  }
}

export function assertTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw createError('BAD_REQUEST', 'Presence TTL must be a positive integer (ms)', { field: 'ttlMs' });
}

/** Members sorted by user id, so listings are stable. */
export function sortMembers<T extends { user_id: string }>(members: T[]): T[] {
  return members.sort((a, b) => (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0));
}

/**
 * A channel's presence as clients are shown it (PRESENCE frame, GET /api/presence): the users
 * present, then its registered members who are not, as `offline`.
 */
export function withOfflineMembers(live: PresenceMember[], registered: readonly string[]): PresenceMember[] {
  const seen = new Set(live.map((m) => m.user_id));
  return [...live, ...registered.filter((u) => !seen.has(u)).map((user_id): PresenceMember => ({ user_id, status: 'offline' }))];
}
