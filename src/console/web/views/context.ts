/**
 * What every view receives: the API client, the live link and the shared state built from it.
 * A view renders into `root` and returns a cleanup that drops its listeners and timers.
 */
import type { Api } from '../lib/api.js';
import type { EventStore } from '../live/events.js';
import type { Feed } from '../live/feed.js';
import type { HealthPoller } from '../live/health.js';
import type { LiveLink } from '../live/link.js';
import type { Throughput } from '../live/throughput.js';

export interface EventFilters {
  type: string;
  status: string;
  user: string;
}

export interface Ctx {
  api: Api;
  link: LiveLink;
  store: EventStore;
  feed: Feed;
  throughput: Throughput;
  health: HealthPoller;
  /** Filters of the events view, kept across navigation. */
  filters: EventFilters;
  /** Says something to screen readers (and shows it in the status bar). */
  say(message: string): void;
}

export type Cleanup = () => void;
export type View = (ctx: Ctx, root: HTMLElement, params: string[]) => Cleanup | void;

/** Matches an event row against the filters (type and user exact, case-sensitive). */
export function matches(f: EventFilters, r: { type: string; status: string; user_id: string }): boolean {
  return (!f.type || r.type === f.type) && (!f.status || r.status === f.status) && (!f.user || r.user_id === f.user);
}
