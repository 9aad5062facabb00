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
import { dropAged } from '../core/aged-entries.js';

/** Users (per channel) whose last version is remembered; the oldest are forgotten first. */
const MAX_TRACKED = 100_000;
/** How long a user's last version is kept after their last notice on the channel. */
export const PRESENCE_ORDER_REMEMBER_MS = 10 * 60_000;

export class PresenceOrder {
  /** `channel\nuser_id` → last version passed on and when; least recently updated first. */
  private readonly last = new Map<string, { version: number; at: number }>();

  constructor(
    private readonly nowMs: () => number = Date.now,
    private readonly rememberMs = PRESENCE_ORDER_REMEMBER_MS,
  ) {}

  /**
   * Whether the notice is to be passed on, and the payload clients get (without the version).
   * A notice without a version (from a node that sends none) always passes.
   */
  admit(channel: string, payload: unknown): { pass: boolean; payload: unknown } {
    const p = payload as { user_id?: unknown; version?: unknown } | null;
    if (!p || typeof p.user_id !== 'string' || typeof p.version !== 'number') return { pass: true, payload };
    const { version, ...rest } = p as { version: number };
    const key = `${channel}\n${p.user_id}`;
    const now = this.nowMs();
    this.prune(now);
    const seen = this.last.get(key);
    if (seen !== undefined && version < seen.version) return { pass: false, payload: rest };
    // Re-inserted at the end: the map's order is least recently updated first.
    this.last.delete(key);
    this.last.set(key, { version, at: now });
    if (this.last.size > MAX_TRACKED) this.last.delete(this.last.keys().next().value!);
    return { pass: true, payload: rest };
  }

  /** Forgets the versions not updated for `rememberMs` (the oldest come first). */
  prune(now = this.nowMs()): void {
    dropAged(this.last, now, this.rememberMs);
  }

  /** How many (channel, user) versions are remembered. */
  get size(): number {
    return this.last.size;
  }
}
