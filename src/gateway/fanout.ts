/**
 * Fan-out of one publication to this node's subscribers: the EVENT frame is serialized and framed
 * once, then the same bytes are queued on every receiving connection.
 */
import type { Publication } from '../bus/types.js';
import { matchesPattern, type StreamPosition } from '../protocol/frames.js';
import { encodeFrame } from './outbound.js';

/** What fan-out needs from a connection. */
export interface Subscriber {
  readonly id: string;
  readonly userId: string;
  /** Channels and patterns this connection is subscribed to. */
  readonly channels: ReadonlySet<string>;
  /** Where each exact channel stood when this connection subscribed to it. */
  readonly positions?: ReadonlyMap<string, StreamPosition>;
  /**
   * The subscriptions in place (committed: delivering live, or holding publications for a replay
   * that follows); `channels` also holds those still being set up. Without it, `channels`.
   */
  readonly active?: ReadonlySet<string>;
  /** Queues a pre-framed message. */
  deliver(frame: Buffer): void;
  /** Told of each stream publication a pattern delivered to it (see Connection.patternFrom). */
  deliveredViaPattern?(pub: Publication): void;
  /**
   * Per channel: the last publication a subscription the connection has just left sent it, where
   * a pattern of its covering the channel had not fanned out that far yet. The node receives one
   * copy of a publication per bus subscription matching it, one after the other, and the leave
   * can be handled between two copies: the pattern skips what the left one already sent
   * (Registry.handedBack).
   */
  readonly handedBack?: Map<string, StreamPosition>;
}

/** The EVENT frame for a publication (contract §4). */
export function eventFrame(pub: Publication): Buffer {
  const payload: Record<string, unknown> = {
    channel: pub.channel,
    offset: pub.offset,
    epoch: pub.epoch,
    event: pub.event,
    payload: pub.payload,
  };
  if (pub.eventId) payload.event_id = pub.eventId;
  return encodeFrame(JSON.stringify({ type: 'EVENT', payload }));
}

/**
 * Typing notices go to everyone on the channel except the typist's own connections.
 * Returns the user to skip, if any.
 */
export function excludedUser(pub: Publication): string | null {
  if (pub.event !== 'typing') return null;
  const p = pub.payload as { user_id?: unknown } | null;
  return p && typeof p.user_id === 'string' ? p.user_id : null;
}

/**
 * A connection subscribed to `a:b` and to `a:*` (or to `a:*` and `a:b:*`) receives one
 * publication on `a:b` from several bus subscriptions. Only the most specific one in place
 * delivers it: the exact channel, else the longest matching pattern. One still being set up
 * (waiting for the bus, reading history) does not count yet: until it is committed, what it
 * would deliver comes through the others (and its commit leaves out what they sent).
 */
export function deliversVia(sub: Subscriber, subscription: string, channel: string): boolean {
  if (subscription === channel) return true;
  const inPlace = sub.active ?? sub.channels;
  if (inPlace.has(channel)) return false;
  for (const other of inPlace) {
    if (other !== subscription && other.length > subscription.length && other.endsWith(':*') && matchesPattern(other, channel)) return false;
  }
  return true;
}

/**
 * Whether `pub` reached the connection through a subscription it has left since (see
 * Subscriber.handedBack). The record goes once a later publication on the channel comes by.
 */
export function sentBeforeLeaving(handedBack: Map<string, StreamPosition>, pub: Publication): boolean {
  if (pub.ephemeral === true) return false;
  const through = handedBack.get(pub.channel);
  if (!through) return false;
  if (pub.epoch === through.epoch && pub.offset <= through.offset) return true;
  handedBack.delete(pub.channel);
  return false;
}

/** Delivers `pub` (received on `subscription`) to `subscribers`; returns how many got it. */
export function fanout(pub: Publication, subscription: string, subscribers: Iterable<Subscriber>, pattern: boolean): number {
  const skipUser = excludedUser(pub);
  let frame: Buffer | null = null;
  let count = 0;
  for (const sub of subscribers) {
    if (skipUser !== null && sub.userId === skipUser) continue;
    if (pattern && !deliversVia(sub, subscription, pub.channel)) continue;
    if (pattern && sub.handedBack !== undefined && sub.handedBack.size > 0 && sentBeforeLeaving(sub.handedBack, pub)) continue;
    frame ??= eventFrame(pub);
    sub.deliver(frame);
    if (pattern && pub.ephemeral !== true) sub.deliveredViaPattern?.(pub);
    count++;
  }
  return count;
}
