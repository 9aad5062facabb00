/**
 * Where incoming publications go, and what to ask the server for when coming back.
 * Pure functions over the subscriptions and positions, kept apart from the connection logic.
 */
import type { ServerFrameMap, StreamPosition } from '../protocol/index.js';
import { matchesPattern } from '../protocol/index.js';
import type { Positions } from './positions.js';
import type { Subscription } from './subscription.js';
import type { UpdateVersions } from './update-versions.js';
import { SubscriptionState, type Publication } from './types.js';

type EventPayload = ServerFrameMap['EVENT'];

/** Typing and presence notices are not part of a channel's stream: no offsets, no history. */
export function isEphemeral(event: string): boolean {
  return event === 'typing' || event.startsWith('presence.');
}

function active(sub: Subscription): boolean {
  return sub.state !== SubscriptionState.Unsubscribed;
}

/**
 * Hands an EVENT to the subscriptions it concerns. Returns the publication for the client-wide
 * `publication` event, or undefined for a duplicate (dropped: a position already passed, or an
 * event's status update no newer than one delivered) or an ephemeral notice.
 */
export function routeEvent(
  subs: Subscription[],
  positions: Positions,
  versions: UpdateVersions,
  p: EventPayload,
  userChannel: string | undefined,
): Publication | undefined {
  if (typeof p.channel !== 'string' || typeof p.event !== 'string') return undefined;
  const ephemeral = isEphemeral(p.event);
  // Positions are kept only for channels something will resume — the user's own and those
  // subscribed by name, not those a pattern brings (Subscription.patternDelivered) — and a
  // straggler that arrives after an UNSUBSCRIBE must not bring back a forgotten position.
  const tracked = p.channel === userChannel || subscribedByName(subs, p.channel);
  const positioned = typeof p.offset === 'number' && typeof p.epoch === 'string' && p.epoch !== '';
  if (!ephemeral && positioned && tracked && !positions.accept(p.channel, p.offset, p.epoch)) return undefined;
  const pub: Publication = { channel: p.channel, offset: p.offset, epoch: p.epoch, event: p.event, payload: p.payload };
  const eventId = (p as { event_id?: unknown }).event_id;
  if (typeof eventId === 'string') pub.event_id = eventId;
  const body = (p.payload ?? {}) as Record<string, unknown>;
  if (p.event === 'event.update' && typeof body.event_id === 'string' && typeof body.version === 'number' && !versions.pass(body.event_id, body.version)) {
    return undefined;
  }
  // A channel nothing here wants any more (left while offline and brought back by the resumed
  // session, or an UNSUBSCRIBE still on its way) is not the user's: no event, client-wide either.
  let wanted = p.channel === userChannel;
  for (const sub of subs) {
    if (!active(sub) || !matchesPattern(sub.channel, p.channel)) continue;
    wanted = true;
    if (p.event === 'typing') {
      sub._typing({ channel: p.channel, user_id: String(body.user_id ?? ''), is_typing: body.is_typing === true });
    } else if (ephemeral) {
      const action = p.event.slice('presence.'.length);
      if (action === 'join' || action === 'leave' || action === 'update') {
        sub._presence({ channel: p.channel, action, user_id: String(body.user_id ?? ''), status: body.status as never });
      }
    } else {
      sub._deliver(pub);
    }
  }
  return ephemeral || !wanted ? undefined : pub;
}

/** The positions to send in HELLO: everything the active subscriptions and the user channel cover. */
export function resumeSince(subs: Iterable<Subscription>, positions: Positions, userChannel: string | undefined): Record<string, StreamPosition> | undefined {
  const out: Record<string, StreamPosition> = {};
  for (const sub of subs) if (active(sub)) Object.assign(out, sub._since());
  if (userChannel) {
    const own = positions.get(userChannel);
    if (own) out[userChannel] = own;
  }
  return Object.keys(out).length ? out : undefined;
}

/** The part of a `since` map a channel or pattern covers. */
export function pickSince(since: Record<string, StreamPosition> | undefined, channelOrPattern: string): Record<string, StreamPosition> | undefined {
  if (!since) return undefined;
  const out: Record<string, StreamPosition> = {};
  for (const [ch, p] of Object.entries(since)) if (matchesPattern(channelOrPattern, ch)) out[ch] = p;
  return Object.keys(out).length ? out : undefined;
}

/** Whether an active subscription other than `except` names this channel (not a pattern covering it). */
export function subscribedByName(subs: Iterable<Subscription>, channel: string, except?: Subscription): boolean {
  for (const sub of subs) if (sub !== except && active(sub) && sub.channel === channel) return true;
  return false;
}

/** Whether an active subscription other than `except` covers a channel. */
export function covered(subs: Iterable<Subscription>, channel: string, except?: Subscription): boolean {
  for (const sub of subs) if (sub !== except && active(sub) && matchesPattern(sub.channel, channel)) return true;
  return false;
}
