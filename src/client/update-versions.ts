/**
 * The last `version` of each event's status updates this client delivered. Every change of an
 * event bumps its version, so an `event.update` no newer than the last one delivered is a repeat:
 * a client that moved to another gateway node while Redis failed over may be sent an update
 * again there, in the new epoch, after newer ones (docs/decisions/0028). Such a repeat is
 * dropped, so the application never sees a status step back. Bounded: past `max` events the
 * least recently updated is forgotten.
 */
export class UpdateVersions {
  /** event id → last version delivered; least recently updated first. */
  private readonly last = new Map<string, number>();

  constructor(private readonly max = 10_000) {}

  /** Whether an update of `eventId` at `version` is new; one that is becomes the event's last. */
  pass(eventId: string, version: number): boolean {
    const seen = this.last.get(eventId);
    if (seen !== undefined && version <= seen) return false;
    // Re-inserted at the end: the map's order is least recently updated first.
    this.last.delete(eventId);
    this.last.set(eventId, version);
    if (this.last.size > this.max) this.last.delete(this.last.keys().next().value!);
    return true;
  }
}
