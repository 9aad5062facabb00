/**
 * Who may subscribe to a channel (contract §4 "Channels"). The rules:
 *
 * - `user:{id}` and everything under it (`user:{id}:notifications`, `user:{id}:*`): only user
 *   `{id}` — not even an admin, since a user's channel carries their private status updates.
 *   `user:*` is therefore refused to everyone.
 * - any other exact channel: a member (PUT /api/channels/{channel}/members/{user}), a JWT whose
 *   `channels` claim names it or holds a pattern covering it, or a principal granted
 *   `channels.subscribe.<namespace>` (`channels.subscribe.*`, `channels.*` and `*` cover all).
 * - a pattern `prefix:*` delivers channels that do not exist yet, so membership of some of them
 *   cannot justify it: it needs the namespace permission, or a claim pattern covering the whole
 *   prefix (claim `server:1:*` allows `server:1:*` and `server:1:channel:*`, not `server:*`).
 *
 * The same check guards PUBLISH (with the namespace's clientPublish), PRESENCE and typing.
 * Two ways to ask about membership: the store (embedded, or any process holding it) and the
 * API's internal listener (distributed gateways), cached briefly; a membership removal makes the
 * gateway forget the cached answer before it checks live subscriptions again (decision 0013).
 */
import { can } from '../auth/policy.js';
import type { AuthContext } from '../auth/types.js';
import type { Clock } from '../core/clock.js';
import { dropAged } from '../core/aged-entries.js';
import { isPattern, isValidChannel, matchesPattern } from '../protocol/frames.js';
import type { Store } from '../store/types.js';

export interface ChannelAccess {
  /** Whether `auth` may subscribe to `channel` (an exact channel or a `prefix:*` pattern). */
  canSubscribe(auth: AuthContext, channel: string): Promise<boolean>;
  /** Drops any remembered membership answer for (channel, user): the next check asks afresh. */
  forget?(channel: string, userId: string): void;
  /** The channel's registered members (shown as `offline` in presence while not connected). */
  listMembers?(channel: string): Promise<string[]>;
}

export type MembershipCheck = (channel: string, userId: string) => Promise<boolean>;

export function namespaceOf(channel: string): string {
  const i = channel.indexOf(':');
  return i === -1 ? channel : channel.slice(0, i);
}

/** Whether a claim (name or pattern) covers a subscription (name or pattern). */
export function claimCovers(claim: string, subscription: string): boolean {
  if (!isPattern(subscription)) return claim === subscription || (isPattern(claim) && matchesPattern(claim, subscription));
  return isPattern(claim) && subscription.startsWith(claim.slice(0, -1));
}

/** The decision apart from membership; `null` means "only membership can still allow it". */
export function decideWithoutMembership(auth: AuthContext, channel: string): boolean | null {
  if (!isValidChannel(channel)) return false;
  const ns = namespaceOf(channel);
  if (ns === 'user') {
    const owner = channel.split(':')[1];
    return owner === auth.userId;
  }
  if (can(auth, `channels.subscribe.${ns}`)) return true;
  if (auth.channels.some((c) => claimCovers(c, channel))) return true;
  if (isPattern(channel)) return false;
  return null;
}

export class MembershipAccess implements ChannelAccess {
  constructor(
    private readonly isMember: MembershipCheck,
    private readonly forgetMember?: (channel: string, userId: string) => void,
    readonly listMembers?: (channel: string) => Promise<string[]>,
  ) {}

  forget(channel: string, userId: string): void {
    this.forgetMember?.(channel, userId);
  }

  async canSubscribe(auth: AuthContext, channel: string): Promise<boolean> {
    const decided = decideWithoutMembership(auth, channel);
    if (decided !== null) return decided;
    return this.isMember(channel, auth.userId);
  }
}

/** Embedded mode, and any process that holds the store. */
export function storeChannelAccess(store: Pick<Store, 'isChannelMember' | 'listChannelMembers'>): ChannelAccess {
  return new MembershipAccess(
    (channel, userId) => store.isChannelMember(channel, userId),
    undefined,
    (channel) => store.listChannelMembers(channel),
  );
}

export interface HttpAccessOptions {
  /** Base URL of the API's internal listener (config.apiInternalUrl). */
  baseUrl: string;
  clock: Clock;
  /** How long an answer is reused (default 2 s): membership changes bite within this. */
  cacheMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const MAX_CACHE = 50_000;

/**
 * Distributed gateways: asks `POST {baseUrl}/internal/channels/membership {channel, user_id}` →
 * `{member}`. Answers are cached briefly; an unreachable API denies (fails closed). Member
 * lists for presence come from `POST {baseUrl}/internal/channels/members {channel}`.
 *
 * The cache holds answers in the order they were given: those older than `cacheMs`, which no
 * check uses again, are dropped as new ones come in. Kept until the size bound instead, the
 * answers for every (channel, user) checked stayed in memory (some 20 MB per node at the bound),
 * also once every client was gone.
 */
export function httpChannelAccess(options: HttpAccessOptions): ChannelAccess & { cachedAnswers(): number } {
  const cacheMs = options.cacheMs ?? 2000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const doFetch = options.fetch ?? fetch;
  const cache = new Map<string, { member: boolean; at: number }>();
  const inflight = new Map<string, Promise<boolean>>();

  const membershipUrl = new URL('/internal/channels/membership', options.baseUrl).toString();
  const membersUrl = new URL('/internal/channels/members', options.baseUrl).toString();

  /** POSTs `body` to an internal route and returns its JSON answer. */
  async function post(url: string, body: unknown, what: string): Promise<Record<string, unknown>> {
    const res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`${what} answered ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  }

  async function ask(channel: string, userId: string): Promise<boolean> {
    const body = await post(membershipUrl, { channel, user_id: userId }, 'membership check');
    return body.member === true;
  }

  const keyOf = (channel: string, userId: string) => `${channel}\u0000${userId}`;

  const isMember = async (channel: string, userId: string): Promise<boolean> => {
    const key = keyOf(channel, userId);
    const now = options.clock.nowMs();
    const hit = cache.get(key);
    if (hit && now - hit.at < cacheMs) return hit.member;
    const pending = inflight.get(key);
    if (pending) return pending;
    const p: Promise<boolean> = ask(channel, userId)
      .then((member) => {
        // Forgotten while in flight: the answer may predate the change, so it is not kept.
        if (inflight.get(key) !== p) return member;
        const at = options.clock.nowMs();
        // The answers no check will use again.
        dropAged(cache, at, cacheMs);
        if (cache.size >= MAX_CACHE) cache.clear();
        // Appended at the end, so the map stays in the order the answers were given.
        cache.delete(key);
        cache.set(key, { member, at });
        return member;
      })
      .finally(() => {
        if (inflight.get(key) === p) inflight.delete(key);
      });
    inflight.set(key, p);
    return p;
  };

  const forget = (channel: string, userId: string) => {
    const key = keyOf(channel, userId);
    cache.delete(key);
    inflight.delete(key);
  };

  const listMembers = async (channel: string): Promise<string[]> => {
    const body = await post(membersUrl, { channel }, 'member list');
    return Array.isArray(body.members) ? body.members.filter((m): m is string => typeof m === 'string') : [];
  };

  return Object.assign(new MembershipAccess(isMember, forget, listMembers), { cachedAnswers: () => cache.size });
}
