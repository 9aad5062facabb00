/**
 * Keeps the EventStore current. Rows come first from GET /api/events; then live `event.update`
 * frames from `user:*` (an admin may subscribe to every user's channel). When that subscription
 * is refused (a non-admin key), the feed polls GET /api/events every 2 s instead; the key's own
 * `user:{id}` updates still arrive live either way.
 */
import { listOf, type Api } from '../lib/api.js';
import type { EventStore } from './events.js';
import type { LiveLink } from './link.js';
import type { Throughput } from './throughput.js';

export type FeedMode = 'starting' | 'live' | 'polling';

export const ALL_USERS = 'user:*';
const POLL_MS = 2000;
const PAGE = 100;

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
      // After a reconnect, updates may have been missed: resync from the API.
      this.link.onState((s) => {
        if (s === 'connected' && this.mode === 'live') void this.load().catch(() => undefined);
      }),
    );
    await this.load().catch(() => undefined);
    try {
      await this.link.subscribe(ALL_USERS);
      this.setMode('live');
    } catch {
      this.startPolling();
    }
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
      const pages = [{}, ...(filtered ? [this.pollQuery] : [])].map((q) => this.api.get('/api/events', { query: { limit: PAGE, ...q } }));
      Promise.all(pages)
        .then((bodies) => {
          for (const body of bodies) for (const e of listOf<Record<string, unknown>>(body)) this.apply(e);
        })
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, POLL_MS);
  }

  private setMode(m: FeedMode): void {
    this.mode = m;
    for (const fn of this.modeListeners) fn(m);
  }
}
