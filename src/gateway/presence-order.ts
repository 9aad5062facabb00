/**
 * Presence notices in the order their changes were made. Each node announces the changes it made
 * once the store answered, so a user's leave swept on one node and their join on another can
 * cross on the way: subscribers shown join, then leave, would see the user offline while online.
 * Every change carries a version from the store (PresenceChange.version); a notice older than the
 * last one passed on for that user and channel is dropped here, on every receiving node.
 */

/** Users (per channel) whose last version is remembered; the oldest are forgotten first. */
const MAX_TRACKED = 100_000;

export class PresenceOrder {
  private readonly last = new Map<string, number>();

  /**
   * Whether the notice is to be passed on, and the payload clients get (without the version).
   * A notice without a version (from a node that sends none) always passes.
   */
  admit(channel: string, payload: unknown): { pass: boolean; payload: unknown } {
    const p = payload as { user_id?: unknown; version?: unknown } | null;
    if (!p || typeof p.user_id !== 'string' || typeof p.version !== 'number') return { pass: true, payload };
    const { version, ...rest } = p as { version: number };
    const key = `${channel}\n${p.user_id}`;
    const seen = this.last.get(key);
    if (seen !== undefined && version < seen) return { pass: false, payload: rest };
    // Re-inserted at the end: the map's order is least recently updated first.
    this.last.delete(key);
    this.last.set(key, version);
    if (this.last.size > MAX_TRACKED) this.last.delete(this.last.keys().next().value!);
    return { pass: true, payload: rest };
  }
}
