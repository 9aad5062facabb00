/**
 * The rows one view shows beyond the newest ones (the failed set, pages loaded with Load older):
 * kept in the EventStore past its cap for as long as the view holds them, and at most `max` of
 * them, the newest, so a view left open does not hold ever more.
 */
import { compareNewest, normalizeEvent, type EventRow, type EventStore, type SortKey } from './events.js';

export class HeldRows {
  private readonly rows = new Map<string, SortKey>();
  private readonly release: () => void;

  constructor(
    store: EventStore,
    private readonly max = Number.POSITIVE_INFINITY,
  ) {
    this.release = store.keep(this.rows);
  }

  get size(): number {
    return this.rows.size;
  }

  has(id: string): boolean {
    return this.rows.has(id);
  }

  /** Holds an event (list row or update) by id; add it before merging it into the store. */
  add(event: Record<string, unknown> | EventRow): string {
    const { id, created_at = null } = normalizeEvent(event as Record<string, unknown>);
    if (!id) return id;
    this.rows.set(id, { id, created_at: this.rows.get(id)?.created_at ?? created_at });
    // One row in, at most one out: a scan for the oldest, not a sort of them all per row added.
    while (this.rows.size > this.max) {
      let oldest: SortKey | undefined;
      for (const r of this.rows.values()) if (!oldest || compareNewest(r, oldest) > 0) oldest = r;
      this.rows.delete(oldest!.id);
    }
    return id;
  }

  clear(): void {
    this.rows.clear();
  }

  /** Lets the store evict these rows again (the view is gone). */
  close(): void {
    this.rows.clear();
    this.release();
  }
}
