/**
 * The last version passed on per key, for a while: what PresenceOrder and UpdateOrder remember
 * to drop notices older than one already passed on. A key not updated for `rememberMs` is
 * forgotten, and past `max` keys the least recently updated go first, so memory stays bounded
 * however many keys come by.
 */
import { dropAged } from '../core/aged-entries.js';

export class LastVersions {
  /** key → last version passed on and when; least recently updated first. */
  private readonly last = new Map<string, { version: number; at: number }>();

  constructor(
    private readonly max: number,
    private readonly rememberMs: number,
    private readonly nowMs: () => number,
  ) {}

  /**
   * Whether `version` passes for `key`: it is newer than the last one passed (or, with
   * `equalPasses`, as new). One that passes becomes the key's last.
   */
  pass(key: string, version: number, equalPasses: boolean): boolean {
    const now = this.nowMs();
    this.prune(now);
    const seen = this.last.get(key);
    if (seen !== undefined && (equalPasses ? version < seen.version : version <= seen.version)) return false;
    // Re-inserted at the end: the map's order is least recently updated first.
    this.last.delete(key);
    this.last.set(key, { version, at: now });
    if (this.last.size > this.max) this.last.delete(this.last.keys().next().value!);
    return true;
  }

  /** Forgets the versions not updated for `rememberMs` (the oldest come first). */
  prune(now = this.nowMs()): void {
    dropAged(this.last, now, this.rememberMs);
  }

  get size(): number {
    return this.last.size;
  }
}
