/**
 * Keeps the EventStore current. Rows come first from GET /api/events; then the key's own
 * `event.update` frames arrive live on its `user:{id}` channel, and everyone else's events by
 * polling GET /api/events every 2 s: no key may subscribe to other users' channels (`user:*` is
 * refused to all, decision 0007), an admin's included. A poll that finds only new rows pages on
 * until it reaches rows it knows, so a burst between two polls leaves no gap.
 */
import { listOf, type Api } from '../lib/api.js';
import type { EventStore } from './events.js';
import type { LiveLink } from './link.js';
import type { Throughput } from './throughput.js';

export type FeedMode = 'starting' | 'polling';

const POLL_MS = 2000;
const PAGE = 100;
/** Most pages one poll follows to catch up after a burst (then the next poll goes on). */
const CATCH_UP_PAGES = 10;

export class Feed {
  mode: FeedMode = 'starting';
  /** Filters the polling uses (the events view sets its own), so filtered rows stay current. */
  pollQuery: Record<string, string | undefined> = {};
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private readonly offs: (() => void)[] = [];
  private readonly modeListeners = new Set<(m: FeedMode) => void>();
  private stopped = false;

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

  /** Loads one page of events matching the filters into the store; returns the next cursor. */
  async load(query: Record<string, string | undefined> = {}, cursor?: string): Promise<string | null> {
    const body = await this.api.get<{ next_cursor?: string | null }>('/api/events', { query: { limit: PAGE, ...query, cursor } });
    for (const e of listOf<Record<string, unknown>>(body)) this.apply(e, false);
    return body && typeof body === 'object' ? (body.next_cursor ?? null) : null;
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  /** Merges one event; a status change seen live (or by polling) counts toward throughput. */
  private apply(raw: Record<string, unknown>, count = true): void {
    const id = String(raw.event_id ?? raw.id ?? '');
    const before = this.store.get(id)?.status ?? null;
    const row = this.store.upsert(raw);
    if (count && row && row.status !== before) this.throughput.record(row.status);
  }

  private startPolling(): void {
    this.setMode('polling');
    let busy = false;
    this.pollTimer = setInterval(() => {
      // A hidden tab need not load the server; the next visible tick catches up.
      if (busy || this.stopped || (typeof document !== 'undefined' && document.hidden)) return;
      busy = true;
      const filtered = Object.values(this.pollQuery).some(Boolean);
      Promise.all([{}, ...(filtered ? [this.pollQuery] : [])].map((q) => this.poll(q)))
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, POLL_MS);
  }

  /** The newest page, and older ones while every row on a page is new (a burst since the last poll). */
  private async poll(query: Record<string, string | undefined>): Promise<void> {
    let cursor: string | undefined;
    for (let page = 0; page < CATCH_UP_PAGES; page++) {
      const body = await this.api.get<{ next_cursor?: string | null }>('/api/events', { query: { limit: PAGE, ...query, cursor } });
      const rows = listOf<Record<string, unknown>>(body);
      let known = false;
      for (const e of rows) {
        if (this.store.get(String(e.event_id ?? e.id ?? ''))) known = true;
        this.apply(e);
      }
      const next = body && typeof body === 'object' ? body.next_cursor : null;
      if (known || rows.length < PAGE || !next) return;
      cursor = next;
    }
  }

  private setMode(m: FeedMode): void {
    this.mode = m;
    for (const fn of this.modeListeners) fn(m);
  }
}
