/**
 * The console's copy of the events it has seen: rows from GET /api/events merged with live
 * `event.update` notifications. An update only wins when it is newer (by `version`, else by
 * `updated_at`), so a late list page or a replayed notification never moves a row backwards.
 */
export const STATUSES = ['accepted', 'queued', 'processing', 'processed', 'failed'] as const;
export type Status = (typeof STATUSES)[number];

export interface EventRow {
  id: string;
  type: string;
  status: string;
  user_id: string;
  producer_id: string | null;
  channel: string | null;
  attempts: number;
  last_error: string | null;
  created_at: string | null;
  updated_at: string | null;
  version: number | null;
}

type Raw = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : v === null || v === undefined ? null : String(v));
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Accepts the API's snake_case (and, defensively, camelCase) shapes of an event or update. */
export function normalizeEvent(raw: Raw): Partial<EventRow> & { id: string } {
  const id = str(raw.event_id ?? raw.id) ?? '';
  const out: Partial<EventRow> & { id: string } = { id };
  const pick = <K extends keyof EventRow>(k: K, v: EventRow[K] | null | undefined) => {
    if (v !== null && v !== undefined) out[k] = v;
  };
  pick('type', str(raw.type));
  pick('status', str(raw.status));
  pick('user_id', str(raw.user_id ?? raw.userId));
  pick('producer_id', str(raw.producer_id ?? raw.producerId));
  pick('channel', str(raw.channel));
  pick('attempts', num(raw.attempts));
  if ('last_error' in raw || 'lastError' in raw) out.last_error = str(raw.last_error ?? raw.lastError);
  pick('created_at', str(raw.created_at ?? raw.createdAt));
  pick('updated_at', str(raw.updated_at ?? raw.updatedAt));
  pick('version', num(raw.version));
  return out;
}

export type ChangeKind = 'new' | 'update';
export type Listener = (row: EventRow, kind: ChangeKind, previousStatus: string | null) => void;

/** Whether `next` is at least as new as `cur` (equal counts as newer: it may fill in fields). */
function isNewer(cur: EventRow, next: Partial<EventRow>): boolean {
  if (cur.version !== null && next.version !== undefined && next.version !== null) return next.version >= cur.version;
  if (cur.updated_at && next.updated_at) return Date.parse(next.updated_at) >= Date.parse(cur.updated_at);
  return true;
}

/** Ids whose rows the store must not evict, whatever its cap (see EventStore.keep). */
export interface Kept {
  has(id: string): boolean;
}

export class EventStore {
  private readonly rows = new Map<string, EventRow>();
  private readonly listeners = new Set<Listener>();
  private readonly kept = new Set<Kept>();

  constructor(private readonly cap = 2000) {}

  get(id: string): EventRow | undefined {
    return this.rows.get(id);
  }

  /** The newest row (by creation, then id), if any. */
  newest(): EventRow | undefined {
    let best: EventRow | undefined;
    for (const r of this.rows.values()) if (!best || compareNewest(r, best) < 0) best = r;
    return best;
  }

  /** Newest first (by creation, then by id for a stable order). */
  list(filter: (r: EventRow) => boolean = () => true): EventRow[] {
    return [...this.rows.values()].filter(filter).sort(compareNewest);
  }

  /**
   * Rows in `ids` stay past the cap while it is kept, so a view showing older rows (the failed
   * set, pages the user asked for) does not lose them to newer events; returns the release.
   */
  keep(ids: Kept): () => void {
    this.kept.add(ids);
    return () => this.kept.delete(ids);
  }

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Merges one event or update; returns the row if anything changed. */
  upsert(raw: Raw): EventRow | null {
    const next = normalizeEvent(raw);
    if (!next.id) return null;
    const cur = this.rows.get(next.id);
    if (!cur) {
      const row: EventRow = {
        type: '',
        status: 'accepted',
        user_id: '',
        producer_id: null,
        channel: null,
        attempts: 0,
        last_error: null,
        created_at: next.created_at ?? next.updated_at ?? new Date().toISOString(),
        updated_at: null,
        version: null,
        ...next,
      };
      this.rows.set(row.id, row);
      this.trim();
      this.emit(row, 'new', null);
      return row;
    }
    if (!isNewer(cur, next)) return null;
    const previous = cur.status;
    const before = JSON.stringify(cur);
    Object.assign(cur, next);
    if (JSON.stringify(cur) === before) return null;
    this.emit(cur, 'update', previous);
    return cur;
  }

  clear(): void {
    this.rows.clear();
  }

  private emit(row: EventRow, kind: ChangeKind, previous: string | null): void {
    for (const fn of this.listeners) fn(row, kind, previous);
  }

  /**
   * Back down to the cap once it is passed by a twentieth: sorting every row on each insert
   * past the cap cost most of a millisecond per event under a burst.
   */
  private trim(): void {
    if (this.rows.size <= this.cap + Math.floor(this.cap / 20)) return;
    const kept = [...this.kept];
    const free = [...this.rows.values()].filter((r) => !kept.some((k) => k.has(r.id)));
    if (free.length <= this.cap) return;
    for (const r of free.sort(compareNewest).slice(this.cap)) this.rows.delete(r.id);
  }
}

/** What orders rows: creation time, then id (UUIDv7, so also by time). */
export type SortKey = Pick<EventRow, 'id' | 'created_at'>;

/** Negative when `a` comes before `b` newest first, positive after, 0 for the same row. */
export function compareNewest(a: SortKey, b: SortKey): number {
  const ta = a.created_at ? Date.parse(a.created_at) : 0;
  const tb = b.created_at ? Date.parse(b.created_at) : 0;
  return tb - ta || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** Where `row` goes among `n` rows kept newest first, `keyAt(i)` being the i-th (binary search). */
export function newestFirstIndex(n: number, keyAt: (i: number) => SortKey, row: SortKey): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareNewest(keyAt(mid), row) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
