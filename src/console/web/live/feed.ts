/**
 * Keeps the EventStore current. Rows come first from GET /api/events; then the key's own
 * `event.update` frames arrive live on its `user:{id}` channel, and everyone else's events by
 * polling GET /api/events every 2 s: no key may subscribe to other users' channels (`user:*` is
 * refused to all, decision 0007), an admin's included. A poll that finds only new rows pages on
 * until it reaches the newest row an earlier read of the list returned, so a burst between two
 * polls leaves no gap (the key's own events, already known from their live updates, do not count:
 * other users' events may lie below them); past its page budget it notes where it stopped and
 * later polls go on from there. Rows it shows that
 * are still unfinished but have dropped off the newest pages are read again by id, so an older
 * event that finishes does not stay `processing` on screen until a reload.
 */
import { listOf, type Api } from '../lib/api.js';
import { compareNewest, normalizeEvent, type EventStore, type SortKey } from './events.js';
import type { HeldRows } from './held-rows.js';
import type { LiveLink } from './link.js';
import type { Throughput } from './throughput.js';

export type FeedMode = 'starting' | 'polling';

const POLL_MS = 2000;
const PAGE = 100;
/** Most pages one poll follows from the newest, and from where a catch-up stopped. */
const CATCH_UP_PAGES = 10;
/** Most catch-ups left to finish per poll query. */
const MAX_GAPS = 5;
/** Most unfinished rows one poll reads again (one request: GET /api/events?ids=…). */
const REFRESH_IDS = 100;
const UNFINISHED = new Set(['accepted', 'queued', 'processing']);

interface Gap {
  /** The next page to read. */
  cursor: string;
  /** The newest row known when the gap opened (none: the store was empty). */
  until: SortKey | undefined;
}

/** An event's id, from a list row (`id`) or an update (`event_id`). */
const idOf = (raw: Record<string, unknown>): string => String(raw.event_id ?? raw.id ?? '');

export class Feed {
  mode: FeedMode = 'starting';
  /** Filters the polling uses (the events view sets its own), so filtered rows stay current. */
  pollQuery: Record<string, string | undefined> = {};
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private readonly offs: (() => void)[] = [];
  private readonly modeListeners = new Set<(m: FeedMode) => void>();
  private stopped = false;
  /** When each unfinished row was last read again by id: the least recently read go first. */
  private readonly refreshedAt = new Map<string, number>();
  private ticks = 0;
  /** Per poll query: where catch-ups ran out of pages, oldest first, with the row they must reach. */
  private readonly gaps = new Map<string, Gap[]>();
  /** Per query: the newest row a read of the list has returned (live updates are not reads). */
  private readonly listed = new Map<string, SortKey>();

  constructor(
    private readonly api: Api,
    private readonly link: LiveLink,
    private readonly store: EventStore,
    private readonly throughput: Throughput,
  ) {}

  async start(): Promise<void> {
    this.offs.push(
      this.link.onEvent((ev) => {
        if (ev.event !== 'event.update' || typeof ev.payload !== 'object' || ev.payload === null) return;
        this.apply(ev.payload as Record<string, unknown>);
      }),
    );
    await this.load().catch(() => undefined);
    this.startPolling();
  }

  onMode(fn: (m: FeedMode) => void): () => void {
    this.modeListeners.add(fn);
    return () => this.modeListeners.delete(fn);
  }

  /**
   * Loads one page of events matching the filters into the store, held in `hold` if given (an
   * older page would otherwise fall straight to the store's cap); returns the next cursor.
   */
  async load(query: Record<string, string | undefined> = {}, cursor?: string, hold?: HeldRows): Promise<string | null> {
    const body = await this.api.get<{ next_cursor?: string | null }>('/api/events', { query: { limit: PAGE, ...query, cursor } });
    const rows = listOf<Record<string, unknown>>(body);
    for (const e of rows) {
      hold?.add(e);
      this.apply(e, false);
    }
    if (cursor === undefined) this.noteListed(query, rows[0]);
    return body && typeof body === 'object' ? (body.next_cursor ?? null) : null;
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  /** Merges one event; a status change seen live (or by polling) counts toward throughput. */
  private apply(raw: Record<string, unknown>, count = true): SortKey | null {
    const id = idOf(raw);
    const before = this.store.get(id)?.status ?? null;
    const row = this.store.upsert(raw);
    if (count && row && row.status !== before) this.throughput.record(row.status);
    return row ?? this.store.get(id) ?? null;
  }

  private startPolling(): void {
    this.setMode('polling');
    let busy = false;
    this.pollTimer = setInterval(() => {
      // A hidden tab need not load the server; the next visible tick catches up.
      if (busy || this.stopped || (typeof document !== 'undefined' && document.hidden)) return;
      busy = true;
      const filtered = Object.values(this.pollQuery).some(Boolean);
      const queries = [{}, ...(filtered ? [this.pollQuery] : [])];
      const polled = new Set(queries.map((q) => JSON.stringify(q)));
      for (const key of this.gaps.keys()) if (!polled.has(key)) this.gaps.delete(key);
      for (const key of this.listed.keys()) if (!polled.has(key)) this.listed.delete(key);
      const seen = new Set<string>();
      // One query failing (a filter the server refuses) must not hold back the others' work.
      Promise.allSettled(queries.map((q) => this.poll(q, seen)))
        .then(() => this.refreshUnfinished(seen))
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, POLL_MS);
  }

  /**
   * The newest page, and older ones while every row on a page is new (a burst since the last
   * poll); then on from where an earlier poll's catch-up ran out of pages.
   */
  private async poll(query: Record<string, string | undefined>, seen: Set<string>): Promise<void> {
    const key = JSON.stringify(query);
    const gaps = this.gaps.get(key) ?? [];
    // Listed before this poll: a catch-up that runs out of pages is done once it gets down to
    // here, even if the store's cap has dropped those rows by then.
    const until = this.listed.get(key);
    const stopped = await this.catchUp(query, undefined, seen, until);
    const open = gaps[0];
    if (stopped) {
      gaps.push({ cursor: stopped, until });
      // Under a flood no poll keeps up; the oldest rows would fall to the store's cap anyway.
      if (gaps.length > MAX_GAPS) gaps.shift();
      this.gaps.set(key, gaps);
    }
    if (!open) return;
    const rest = await this.catchUp(query, open.cursor, seen, open.until);
    if (rest) open.cursor = rest;
    else if (gaps.includes(open)) gaps.splice(gaps.indexOf(open), 1);
    if (gaps.length === 0) this.gaps.delete(key);
  }

  /**
   * Pages from `cursor` until a page holds a row no newer than `until` (without one: a row already
   * known), or the list ends: then null. The cursor of the next page if the page budget ran out
   * first.
   */
  private async catchUp(query: Record<string, string | undefined>, cursor: string | undefined, seen: Set<string>, until?: SortKey): Promise<string | null> {
    for (let page = 0; page < CATCH_UP_PAGES; page++) {
      const body = await this.api.get<{ next_cursor?: string | null }>('/api/events', { query: { limit: PAGE, ...query, cursor } });
      const rows = listOf<Record<string, unknown>>(body);
      let reached = false;
      for (const e of rows) {
        const id = idOf(e);
        seen.add(id);
        if (!until && this.store.get(id)) reached = true;
        const row = this.apply(e);
        if (until && row && compareNewest(row, until) >= 0) reached = true;
      }
      if (cursor === undefined) this.noteListed(query, rows[0]);
      const next = body && typeof body === 'object' ? body.next_cursor : null;
      if (reached || rows.length < PAGE || !next) return null;
      cursor = next;
    }
    return cursor ?? null;
  }

  /** Moves the query's listed mark up to `top`, the first (newest) row of a list read from the top. */
  private noteListed(query: Record<string, string | undefined>, top: Record<string, unknown> | undefined): void {
    if (!top) return;
    // The store's copy when it has one: it dates a row without created_at as the store does.
    const row = this.store.get(idOf(top)) ?? normalizeEvent(top);
    if (!row.id) return;
    const key = JSON.stringify(query);
    const mark = this.listed.get(key);
    const at: SortKey = { id: row.id, created_at: row.created_at ?? null };
    if (!mark || compareNewest(at, mark) < 0) this.listed.set(key, at);
  }

  /** Reads again the unfinished rows this poll did not see, the least recently read first. */
  private async refreshUnfinished(seen: Set<string>): Promise<void> {
    const tick = ++this.ticks;
    const stale = this.store.list((r) => UNFINISHED.has(r.status) && !seen.has(r.id));
    for (const id of this.refreshedAt.keys()) if (!UNFINISHED.has(this.store.get(id)?.status ?? '')) this.refreshedAt.delete(id);
    if (stale.length === 0) return;
    const ids = stale
      .map((r) => r.id)
      .sort((a, b) => (this.refreshedAt.get(a) ?? 0) - (this.refreshedAt.get(b) ?? 0))
      .slice(0, REFRESH_IDS);
    for (const id of ids) this.refreshedAt.set(id, tick);
    const body = await this.api.get<unknown>('/api/events', { query: { ids: ids.join(','), limit: REFRESH_IDS } });
    for (const e of listOf<Record<string, unknown>>(body)) this.apply(e);
  }

  private setMode(m: FeedMode): void {
    this.mode = m;
    for (const fn of this.modeListeners) fn(m);
  }
}
