/**
 * Presence notices in the order their changes were made. Each node announces the changes it made
 * once the store answered, so a user's leave swept on one node and their join on another can
 * cross on the way: subscribers shown join, then leave, would see the user offline while online.
 * Every change carries a version from the store (PresenceChange.version); a notice older than the
 * last one passed on for that user and channel is dropped here, on every receiving node.
 *
 * Notices that cross do so within moments of each other (each is published as soon as the store
 * answered), so a user's last version is only needed for a while: one not updated for
 * `rememberMs` is forgotten (prune(), which the gateway runs with its presence sweep). Without
 * that every (channel, user) ever announced stayed in memory until the bound below, some 20 MB
 * per node, also long after everyone had left.
 */
import { LastVersions } from './last-versions.js';

/** Users (per channel) whose last version is remembered; the oldest are forgotten first. */
const MAX_TRACKED = 100_000;
/** How long a user's last version is kept after their last notice on the channel. */
export const PRESENCE_ORDER_REMEMBER_MS = 10 * 60_000;

export class PresenceOrder {
  /** By `channel\nuser_id`. */
  private readonly last: LastVersions;

  constructor(nowMs: () => number = Date.now, rememberMs = PRESENCE_ORDER_REMEMBER_MS) {
    this.last = new LastVersions(MAX_TRACKED, rememberMs, nowMs);
  }

  /**
   * Whether the notice is to be passed on, and the payload clients get (without the version).
   * A notice without a version (from a node that sends none) always passes, and so does one as
   * new as the last.
   */
  admit(channel: string, payload: unknown): { pass: boolean; payload: unknown } {
    const p = payload as { user_id?: unknown; version?: unknown } | null;
    if (!p || typeof p.user_id !== 'string' || typeof p.version !== 'number') return { pass: true, payload };
    const { version, ...rest } = p as { version: number };
    return { pass: this.last.pass(`${channel}\n${p.user_id}`, version, true), payload: rest };
  }

  /** Forgets the versions not updated for a while (the oldest come first). */
  prune(): void {
    this.last.prune();
  }

  /** How many (channel, user) versions are remembered. */
  get size(): number {
    return this.last.size;
  }
}
