/**
 * Maps whose entries carry when they were last set (`at`, ms) and are kept in that order: each
 * update deletes the key and sets it again, so the oldest entries come first.
 */

/** Drops the entries set `maxAgeMs` or longer before `now`, stopping at the first younger one. */
export function dropAged<K>(map: Map<K, { at: number }>, now: number, maxAgeMs: number): void {
  for (const [key, entry] of map) {
    if (now - entry.at < maxAgeMs) return;
    map.delete(key);
  }
}
