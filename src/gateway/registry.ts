/**
 * Who is connected to this node and what they listen to: connections per user, subscribers per
 * channel (or `prefix:*` pattern). The node subscribes on the Bus once per channel, when its
 * first local subscriber arrives, and unsubscribes when the last one leaves.
 *
 * A subscription starts `pending`: live publications for it are buffered while the subscriber
 * reads history, and `activate()` hands back the buffered ones that come after what the history
 * read returned — so missed messages are replayed exactly once, in order, before live ones.
 */
import type { Bus, Publication, Unsubscribe } from '../bus/types.js';
import { isPattern, matchesPattern } from '../protocol/frames.js';
import type { StreamPosition } from '../protocol/frames.js';
import { deliversVia, fanout, type Subscriber } from './fanout.js';
import { UpdateOrder } from './update-order.js';

/** The position of a channel nothing is known about yet. */
const NO_POSITION: StreamPosition = { offset: 0, epoch: '' };

/**
 * The later of a connection's known position `a` and the last publication `b` fanned out here.
 * A publication in another epoch came after `a` (a new epoch starts on publishing), so `b` wins.
 */
export function later(a: StreamPosition | undefined, b: StreamPosition | null): StreamPosition | undefined {
  if (!b) return a;
  if (!a || a.epoch !== b.epoch || b.offset > a.offset) return b;
  return a;
}

/** Live publications buffered per pending subscriber; past this the subscribe fails. */
const MAX_PENDING_BUFFER = 10_000;
/** Checks again after a bus reconnect while positions cannot be read yet: 20 × 500 ms. */
const GAP_CHECK_RETRIES = 20;
const GAP_CHECK_RETRY_MS = 500;
/** Channels per pattern subscription whose last position a node keeps for notices. */
const MAX_PATTERN_POSITIONS = 10_000;

interface SubState {
  /** Non-null while pending: live publications received meanwhile. */
  buffer: Publication[] | null;
  overflowed: boolean;
}

interface ChannelEntry {
  name: string;
  pattern: boolean;
  subscribers: Map<Subscriber, SubState>;
  /** Live subscribers only, iterated by fan-out. */
  live: Set<Subscriber>;
  /** Resolves once the Bus delivers this channel to the node. */
  ready: Promise<Unsubscribe>;
  /** Position of the last non-ephemeral publication seen here. */
  last: StreamPosition | null;
  /** A pattern's: the last position fanned out per channel it covers (the most recent channels). */
  lastOf?: Map<string, StreamPosition>;
  /**
   * Non-null while a gap is being filled from history: live publications wait here, behind the
   * missed ones (fill()).
   */
  filling: Publication[] | null;
  /**
   * Live subscribers whose history read went further than this node has received live: the live
   * copies of what they were replayed are still on their way (history is read on one Bus
   * connection, publications arrive on another). Each is skipped for publications up to its
   * position, and leaves the map at the first one after it.
   */
  skipping: Map<Subscriber, StreamPosition> | null;
}

/**
 * Whether publications between `base` (where this node's subscribers stand) and `pub` never
 * reached the node (its Bus connection dropped meanwhile):
 * - within an epoch offsets go up by one, so a jump is a gap, and history has what was missed;
 * - another epoch past its first publication means the channel's position was lost and started
 *   over (Redis restarted empty, or failed over): the new epoch's first publications never came
 *   here, and the old one may have had more after `base`. The fill then finds `base` gone from
 *   history and sends the subscribers to resync, as the gap check after a reconnect does when it
 *   reads the new position first.
 */
function missedBefore(base: StreamPosition, pub: Publication): boolean {
  return pub.epoch === base.epoch ? pub.offset > base.offset + 1 : pub.offset > 1;
}

/** Whether a node that last saw `last` has yet to receive the publication at `pos` live. */
function notYetReceived(last: StreamPosition | null, pos: StreamPosition): boolean {
  return !last || last.epoch !== pos.epoch || last.offset < pos.offset;
}

export interface RegistryHooks {
  onDelivered?: (count: number) => void;
  onBusError?: (channel: string, err: unknown) => void;
  onSubscriptionCount?: (delta: number) => void;
  /**
   * Publications on `channel` never reached this node and are no longer in its history: its
   * live subscribers cannot be brought up to date here. The hook ends their subscription and
   * tells them to subscribe again with `since` (they then learn they must resync).
   */
  onUnrecoverableGap?: (channel: string, subscribers: Subscriber[]) => void;
  /** A gap was filled from history: how many publications it took. */
  onGapFilled?: (channel: string, count: number) => void;
  /** An event's update no newer than one passed on already was not passed on (UpdateOrder). */
  onStaleUpdate?: (channel: string, eventId: string) => void;
}

export class Registry {
  private readonly channels = new Map<string, ChannelEntry>();
  private readonly patterns = new Set<ChannelEntry>();
  private readonly users = new Map<string, Set<Subscriber>>();

  private readonly offResubscribed: Unsubscribe;
  /** The next gap check while positions could not be read after a reconnect (checkGaps). */
  private gapRetry: NodeJS.Timeout | null = null;

  constructor(
    private readonly bus: Bus,
    private readonly hooks: RegistryHooks = {},
    private readonly updates = new UpdateOrder(),
  ) {
    // Publications made while the node's Bus connection was down reached history, not the node.
    this.offResubscribed = bus.onResubscribed(() => void this.checkGaps(0));
  }

  // ── users ─────────────────────────────────────────────────────────────────
  addUser(sub: Subscriber): void {
    let set = this.users.get(sub.userId);
    if (!set) this.users.set(sub.userId, (set = new Set()));
    set.add(sub);
  }

  removeUser(sub: Subscriber): void {
    const set = this.users.get(sub.userId);
    if (!set) return;
    set.delete(sub);
    if (set.size === 0) this.users.delete(sub.userId);
  }

  connectionsOf(userId: string): ReadonlySet<Subscriber> {
    return this.users.get(userId) ?? new Set();
  }

  userCount(): number {
    return this.users.size;
  }

  // ── channels ──────────────────────────────────────────────────────────────
  /**
   * Adds `sub` to `channel` as pending. Resolves when the node receives the channel from the Bus,
   * so a history read made afterwards cannot miss a publication. Rejects (and undoes the add) when
   * the Bus subscription fails.
   */
  async addPending(sub: Subscriber, channel: string): Promise<void> {
    let entry = this.channels.get(channel);
    if (!entry) entry = this.createEntry(channel);
    if (!entry.subscribers.has(sub)) {
      entry.subscribers.set(sub, { buffer: [], overflowed: false });
      this.hooks.onSubscriptionCount?.(1);
    }
    try {
      await entry.ready;
    } catch (err) {
      // The failed entry may be gone from the map already (createEntry drops it): count the
      // subscriber out here either way.
      if (!this.remove(sub, channel) && entry.subscribers.delete(sub)) this.hooks.onSubscriptionCount?.(-1);
      throw err;
    }
  }

  /**
   * Makes a pending subscription live. Returns the publications buffered meanwhile that come
   * after `after` (those at or before it were covered by the history read), in arrival order.
   * Returns null when the subscriber is no longer registered or its buffer overflowed.
   */
  activate(sub: Subscriber, channel: string, after: StreamPosition | null): Publication[] | null {
    const entry = this.channels.get(channel);
    const state = entry?.subscribers.get(sub);
    if (!entry || !state) return null;
    const buffered = state.buffer ?? [];
    const overflowed = state.overflowed;
    state.buffer = null;
    if (overflowed) return null;
    entry.live.add(sub);
    if (!after) return buffered;
    if (!entry.pattern && notYetReceived(entry.last, after)) (entry.skipping ??= new Map()).set(sub, after);
    return buffered.filter((p) => p.ephemeral === true || p.epoch !== after.epoch || p.offset > after.offset);
  }

  /**
   * Takes a live subscriber back to pending: its live publications are buffered again until
   * `activate()`, so an already subscribed connection can be sent a history read in order too.
   * Returns the last position fanned out here (the subscriber was sent everything up to it), or
   * undefined when `sub` is not live on `channel`.
   */
  suspend(sub: Subscriber, channel: string): { last: StreamPosition | null } | undefined {
    const entry = this.channels.get(channel);
    const state = entry?.subscribers.get(sub);
    if (!entry || !state || !entry.live.has(sub)) return undefined;
    entry.live.delete(sub);
    state.buffer = [];
    state.overflowed = false;
    // A subscriber still skipping was sent everything up to its replay's end.
    const through = this.stopSkipping(entry, sub);
    return { last: through && notYetReceived(entry.last, through) ? through : entry.last };
  }

  has(sub: Subscriber, channel: string): boolean {
    return this.channels.get(channel)?.subscribers.has(sub) ?? false;
  }

  /** Removes `sub` from `channel`; the node leaves the Bus channel with its last subscriber. */
  remove(sub: Subscriber, channel: string): boolean {
    const entry = this.channels.get(channel);
    if (!entry || !entry.subscribers.delete(sub)) return false;
    entry.live.delete(sub);
    this.stopSkipping(entry, sub);
    this.hooks.onSubscriptionCount?.(-1);
    if (entry.subscribers.size === 0) {
      this.channels.delete(channel);
      this.patterns.delete(entry);
      entry.ready.then(
        (unsubscribe) => unsubscribe().catch((err: unknown) => this.hooks.onBusError?.(channel, err)),
        () => undefined,
      );
    }
    return true;
  }

  /**
   * Whether `sub` was already sent `pub` through another of its live subscriptions covering the
   * channel (the exact one, or a pattern): one that fanned out this publication, or a later one,
   * while `sub` was live on it (for the exact one, also what its replay or position read
   * covered). A subscription being committed leaves those out of what it
   * replays, so a connection on `a:*` subscribing to `a:b` (or the reverse) gets each once.
   */
  sentThroughOthers(sub: Subscriber, subscription: string, pub: Publication): boolean {
    const reached = (pos: StreamPosition | null | undefined) => pos !== null && pos !== undefined && pos.epoch === pub.epoch && pos.offset >= pub.offset;
    if (pub.channel !== subscription) {
      // The exact subscription covers up to where its replay or position read took the
      // connection, which can be ahead of what this node received live on the channel: what was
      // published before the node's subscription took effect on the bus comes in the replay only.
      const exact = this.channels.get(pub.channel);
      if (exact && exact.live.has(sub) && reached(later(sub.positions?.get(pub.channel), exact.last))) return true;
    }
    for (const entry of this.patterns) {
      if (entry.name === subscription || !entry.live.has(sub) || !matchesPattern(entry.name, pub.channel)) continue;
      if (reached(entry.lastOf?.get(pub.channel))) return true;
    }
    return false;
  }

  /**
   * Where `sub` stands on `channel` through its live patterns covering it: the last publication
   * on the channel they fanned out (null: none yet); undefined when no live pattern of `sub`
   * covers the channel.
   */
  throughPatterns(sub: Subscriber, channel: string): StreamPosition | null | undefined {
    let through: StreamPosition | null | undefined;
    for (const entry of this.patterns) {
      if (!entry.live.has(sub) || !matchesPattern(entry.name, channel)) continue;
      through = later(through ?? undefined, entry.lastOf?.get(channel) ?? null) ?? null;
    }
    return through;
  }

  /**
   * Called before `sub` leaves `subscription` (a channel, or a pattern under a wider one) while
   * other patterns of its cover what it delivered. The node receives one copy of a publication
   * per bus subscription matching it, one after the other, and the leave can be handled between
   * two copies: a copy still on its way to a remaining pattern would reach the connection a
   * second time. Returns, per channel, the last publication sent through `subscription` where a
   * remaining pattern covering the channel has not fanned out that far (Subscriber.handedBack).
   * At most `max` channels.
   */
  handedBack(sub: Subscriber, subscription: string, max: number): Map<string, StreamPosition> {
    const out = new Map<string, StreamPosition>();
    const entry = this.channels.get(subscription);
    if (!entry || !entry.live.has(sub)) return out;
    const others = [...this.patterns].filter((p) => p !== entry && p.live.has(sub));
    if (others.length === 0) return out;
    const keep = (channel: string, sent: StreamPosition | undefined): void => {
      if (!sent || out.size >= max) return;
      const behind = others.some((p) => {
        if (!matchesPattern(p.name, channel)) return false;
        const through = p.lastOf?.get(channel);
        return !through || (through.epoch === sent.epoch && through.offset < sent.offset);
      });
      if (behind) out.set(channel, sent);
    };
    if (!entry.pattern) keep(subscription, later(sub.positions?.get(subscription), entry.last));
    else for (const [channel, pos] of entry.lastOf ?? []) if (deliversVia(sub, subscription, channel)) keep(channel, pos);
    return out;
  }

  /** Position of the last publication this node fanned out on `channel`, if any. */
  lastPosition(channel: string): StreamPosition | null {
    return this.channels.get(channel)?.last ?? null;
  }

  /** Live local subscribers of exactly `channel` (not patterns). */
  subscribersOf(channel: string): ReadonlySet<Subscriber> {
    return this.channels.get(channel)?.live ?? new Set();
  }

  channelCount(): number {
    return this.channels.size;
  }

  /** Leaves every Bus channel (shutdown). */
  async clear(): Promise<void> {
    await this.offResubscribed();
    if (this.gapRetry) clearTimeout(this.gapRetry);
    this.gapRetry = null;
    const entries = [...this.channels.values()];
    this.channels.clear();
    this.patterns.clear();
    this.users.clear();
    await Promise.all(
      entries.map((e) =>
        e.ready.then(
          (unsubscribe) => unsubscribe().catch(() => undefined),
          () => undefined,
        ),
      ),
    );
  }

  private createEntry(channel: string): ChannelEntry {
    const entry: ChannelEntry = {
      name: channel,
      pattern: isPattern(channel),
      subscribers: new Map(),
      live: new Set(),
      ready: Promise.resolve(async () => undefined),
      last: null,
      filling: null,
      skipping: null,
    };
    entry.ready = this.bus.subscribe(channel, (pub) => this.onPublication(entry, pub));
    // A failed subscribe must not leave an entry that every later subscriber would await.
    entry.ready.catch((err: unknown) => {
      if (this.channels.get(channel) === entry) this.channels.delete(channel);
      this.patterns.delete(entry);
      this.hooks.onBusError?.(channel, err);
    });
    this.channels.set(channel, entry);
    if (entry.pattern) this.patterns.add(entry);
    return entry;
  }

  /**
   * Delivers a notice that is not part of the channel's stream (typing, presence) to this node's
   * live subscribers of `channel` and of patterns covering it. It carries the position the
   * receiving connection is at — the last publication fanned out here, or where the connection
   * subscribed if that is later — so a client that takes its resume position from the last EVENT
   * it saw resumes correctly. Subscribers at the same position share one frame.
   */
  deliverNotice(channel: string, event: string, payload: unknown): number {
    const exact = this.channels.get(channel);
    const notice = (pos: StreamPosition): Publication => ({ channel, offset: pos.offset, epoch: pos.epoch, event, payload, ephemeral: true });
    let count = 0;
    if (exact && exact.live.size > 0) {
      const groups = new Map<string, { pos: StreamPosition; subs: Subscriber[] }>();
      for (const sub of exact.live) {
        const pos = later(sub.positions?.get(channel), exact.last) ?? NO_POSITION;
        const key = `${pos.epoch}/${pos.offset}`;
        const group = groups.get(key);
        if (group) group.subs.push(sub);
        else groups.set(key, { pos, subs: [sub] });
      }
      for (const { pos, subs } of groups.values()) count += fanout(notice(pos), channel, subs, false);
    }
    for (const entry of this.patterns) {
      // A pattern subscription has no position of its own on each channel: the channel's last
      // one fanned out here, through an exact subscription or this pattern.
      if (entry.live.size > 0 && matchesPattern(entry.name, channel)) {
        count += fanout(notice(later(exact?.last ?? undefined, entry.lastOf?.get(channel) ?? null) ?? NO_POSITION), entry.name, entry.live, true);
      }
    }
    this.hooks.onDelivered?.(count);
    return count;
  }

  private onPublication(entry: ChannelEntry, pub: Publication): void {
    if (this.channels.get(entry.name) !== entry) return;
    if (!entry.pattern) {
      if (entry.filling) {
        entry.filling.push(pub);
        return;
      }
      // Sent already: a fill from history got ahead of this live copy (history is read on one
      // Bus connection, publications arrive on another).
      const last = entry.last;
      if (last && pub.epoch === last.epoch && pub.offset <= last.offset) return;
      const base = this.baseline(entry);
      if (base && missedBefore(base, pub)) {
        entry.filling = [pub];
        void this.fill(entry, base);
        return;
      }
    }
    this.dispatch(entry, pub);
  }

  /**
   * Where this node's subscribers of `entry` stand: the last publication fanned out, or — before
   * any — the latest position a subscriber started from.
   */
  private baseline(entry: ChannelEntry): StreamPosition | null {
    if (entry.last) return entry.last;
    let base: StreamPosition | undefined;
    for (const sub of entry.live) base = later(base, sub.positions?.get(entry.name) ?? null);
    return base && base.epoch !== '' ? base : null;
  }

  /**
   * After the Bus connection came back: fill every channel that moved on meanwhile, and hand
   * pattern subscribers to onUnrecoverableGap. The subscriptions can be back before reads answer
   * again (the reading connection reconnects on its own): a channel whose position could not be
   * read is checked again shortly, for about ten seconds; after that a live publication's offset
   * jump still triggers the fill.
   */
  private async checkGaps(attempt: number): Promise<void> {
    if (this.gapRetry) clearTimeout(this.gapRetry);
    this.gapRetry = null;
    let unread = false;
    // A pattern covers channels this node may never have seen, whose positions it cannot know:
    // what it missed cannot be told, so its subscribers subscribe again and resync.
    if (attempt === 0) {
      for (const entry of [...this.patterns]) {
        if (entry.live.size > 0 && this.channels.get(entry.name) === entry) this.hooks.onUnrecoverableGap?.(entry.name, [...entry.live]);
      }
    }
    for (const entry of [...this.channels.values()]) {
      if (entry.pattern || entry.filling || entry.live.size === 0) continue;
      const base = this.baseline(entry);
      if (!base) continue;
      let now: StreamPosition;
      try {
        now = await this.bus.position(entry.name);
      } catch (err) {
        this.hooks.onBusError?.(entry.name, err);
        unread = true;
        continue;
      }
      if (this.channels.get(entry.name) !== entry || entry.filling) continue;
      // Where the node stands now: live publications may have been fanned out while the
      // position was read, and filling from the older baseline would send them again.
      const since = this.baseline(entry) ?? base;
      if (now.epoch === since.epoch && now.offset <= since.offset) continue;
      entry.filling = [];
      void this.fill(entry, since);
    }
    if (unread && attempt < GAP_CHECK_RETRIES) {
      this.gapRetry = setTimeout(() => void this.checkGaps(attempt + 1), GAP_CHECK_RETRY_MS);
      this.gapRetry.unref?.();
    }
  }

  /**
   * Sends the live subscribers what they missed after `base`, from history, then what arrived
   * meanwhile, each publication once and in order. When history no longer has it all, the
   * subscribers are handed to onUnrecoverableGap (they resubscribe and resync).
   */
  private async fill(entry: ChannelEntry, base: StreamPosition, attempt = 0): Promise<void> {
    let missed: Publication[] | null = null;
    try {
      const history = await this.bus.history(entry.name, base);
      if (history.recovered) missed = history.publications;
    } catch (err) {
      this.hooks.onBusError?.(entry.name, err);
      // A read that failed (the reading connection not back yet) is no proof the publications
      // are gone: read again shortly, live ones queueing meanwhile, before every subscriber of
      // the channel is told to resync.
      if (attempt < GAP_CHECK_RETRIES && this.channels.get(entry.name) === entry && (entry.filling?.length ?? 0) < MAX_PENDING_BUFFER) {
        const retry = setTimeout(() => void this.fill(entry, base, attempt + 1), GAP_CHECK_RETRY_MS);
        retry.unref?.();
        return;
      }
    }
    const queued = entry.filling ?? [];
    entry.filling = null;
    if (this.channels.get(entry.name) !== entry) return;
    if (missed === null) this.hooks.onUnrecoverableGap?.(entry.name, [...entry.live]);
    else this.hooks.onGapFilled?.(entry.name, missed.length);
    let last = base;
    for (const pub of [...(missed ?? []), ...queued]) {
      if (this.channels.get(entry.name) !== entry) return;
      if (pub.epoch === last.epoch && pub.offset <= last.offset) continue;
      last = { offset: pub.offset, epoch: pub.epoch };
      this.dispatch(entry, pub);
    }
  }

  private dispatch(entry: ChannelEntry, pub: Publication): void {
    if (!entry.pattern) entry.last = { offset: pub.offset, epoch: pub.epoch };
    else {
      // Kept for the notices on that channel (deliverNotice); bounded, oldest channel first out.
      const lastOf = (entry.lastOf ??= new Map());
      lastOf.delete(pub.channel);
      if (lastOf.size >= MAX_PATTERN_POSITIONS) lastOf.delete(lastOf.keys().next().value!);
      lastOf.set(pub.channel, { offset: pub.offset, epoch: pub.epoch });
    }
    if (entry.live.size !== entry.subscribers.size) {
      for (const state of entry.subscribers.values()) {
        if (!state.buffer) continue;
        if (state.buffer.length >= MAX_PENDING_BUFFER) state.overflowed = true;
        else state.buffer.push(pub);
      }
    }
    if (entry.live.size === 0) return;
    if (this.updates.stale(entry.name, pub)) {
      this.hooks.onStaleUpdate?.(pub.channel, pub.eventId!);
      return;
    }
    const targets = entry.skipping && pub.ephemeral !== true ? this.notSkipping(entry, entry.skipping, pub) : entry.live;
    const count = fanout(pub, entry.name, targets, entry.pattern);
    this.hooks.onDelivered?.(count);
  }

  /** The live subscribers that take `pub`: not those it reached already through their replay. */
  private notSkipping(entry: ChannelEntry, skipping: Map<Subscriber, StreamPosition>, pub: Publication): Iterable<Subscriber> {
    let skipped: Set<Subscriber> | null = null;
    for (const [sub, through] of skipping) {
      if (pub.epoch === through.epoch && pub.offset <= through.offset) (skipped ??= new Set()).add(sub);
      else skipping.delete(sub);
    }
    if (skipping.size === 0) entry.skipping = null;
    if (!skipped) return entry.live;
    const seen = skipped;
    return [...entry.live].filter((sub) => !seen.has(sub));
  }

  private stopSkipping(entry: ChannelEntry, sub: Subscriber): StreamPosition | undefined {
    const through = entry.skipping?.get(sub);
    if (through) {
      entry.skipping!.delete(sub);
      if (entry.skipping!.size === 0) entry.skipping = null;
    }
    return through;
  }
}
