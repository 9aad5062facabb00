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
import { dropAged } from '../core/aged-entries.js';

/** Events (per subscription) whose last update version is remembered. */
const MAX_TRACKED = 50_000;
/** How long an event's last version is kept after its last update. */
export const UPDATE_ORDER_REMEMBER_MS = 5 * 60_000;

/** The event and version an `event.update` publication carries, when it is one. */
function versionOf(pub: Publication): number | null {
  if (pub.event !== 'event.update' || pub.eventId === undefined || pub.ephemeral === true) return null;
  const version = (pub.payload as { version?: unknown } | null)?.version;
  return typeof version === 'number' ? version : null;
}

export class UpdateOrder {
  /** `subscription\nchannel\nevent_id` → last version passed on and when; least recently updated first. */
  private readonly last = new Map<string, { version: number; at: number }>();

  constructor(
    private readonly nowMs: () => number = Date.now,
    private readonly rememberMs = UPDATE_ORDER_REMEMBER_MS,
  ) {}

  /**
   * Whether `pub`, received on `subscription`, is an update of an event no newer than one this
   * subscription passed on already. Any other publication is never stale; one that is not is
   * remembered as passed on.
   */
  stale(subscription: string, pub: Publication): boolean {
    const version = versionOf(pub);
    if (version === null) return false;
    const key = `${subscription}\n${pub.channel}\n${pub.eventId}`;
    const now = this.nowMs();
    dropAged(this.last, now, this.rememberMs);
    const seen = this.last.get(key);
    if (seen !== undefined && version <= seen.version) return true;
    // Re-inserted at the end: the map's order is least recently updated first.
    this.last.delete(key);
    this.last.set(key, { version, at: now });
    if (this.last.size > MAX_TRACKED) this.last.delete(this.last.keys().next().value!);
    return false;
  }

  /** How many (subscription, event) versions are remembered. */
  get size(): number {
    return this.last.size;
  }
}
