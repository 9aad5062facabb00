/**
 * An event's status updates never go backwards on a subscription. Within an epoch the relay
 * publishes each event's updates once and in order (decision 0004), but history that starts over
 * can repeat some: a Redis Cluster primary that hangs can still run a relay publish whose call
 * had already timed out, push its messages to the subscribed nodes, and then lose them to a
 * replica that takes over without them. The relay publishes those rows again, from offset 1 of
 * the new epoch, and a client would see `accepted`, `queued` (old epoch) and then `accepted`
 * again (decision 0028). So each node remembers, per subscription, the last `event.update`
 * version it passed on for each event, and does not pass on an update no newer than it.
 *
 * The repeats come within a failover of the first copies, so a version is only needed for a
 * while: one not updated for `rememberMs` is forgotten, and at most MAX_TRACKED are kept (the
 * least recently updated go first), a few MB per node under full load.
 */
import type { Publication } from '../bus/types.js';
import { LastVersions } from './last-versions.js';

/** Events (per subscription) whose last update version is remembered. */
const MAX_TRACKED = 50_000;
/** How long an event's last version is kept after its last update. */
export const UPDATE_ORDER_REMEMBER_MS = 5 * 60_000;

/** The version an `event.update` publication carries, when it is one. */
function versionOf(pub: Publication): number | null {
  if (pub.event !== 'event.update' || pub.eventId === undefined || pub.ephemeral === true) return null;
  const version = (pub.payload as { version?: unknown } | null)?.version;
  return typeof version === 'number' ? version : null;
}

export class UpdateOrder {
  /** By `subscription\nchannel\nevent_id`. */
  private readonly last: LastVersions;

  constructor(nowMs: () => number = Date.now, rememberMs = UPDATE_ORDER_REMEMBER_MS) {
    this.last = new LastVersions(MAX_TRACKED, rememberMs, nowMs);
  }

  /**
   * Whether `pub`, received on `subscription`, is an update of an event no newer than one this
   * subscription passed on already. Any other publication is never stale; one that is not is
   * remembered as passed on.
   */
  stale(subscription: string, pub: Publication): boolean {
    const version = versionOf(pub);
    return version !== null && !this.last.pass(`${subscription}\n${pub.channel}\n${pub.eventId}`, version, false);
  }

  /** How many (subscription, event) versions are remembered. */
  get size(): number {
    return this.last.size;
  }
}
