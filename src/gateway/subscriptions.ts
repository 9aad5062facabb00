/**
 * Subscribing a connection to channels, with recovery. Each channel goes through two steps:
 *
 * 1. `prepare` (async): check access, register the subscriber as pending (its live publications
 *    are buffered from now on), wait until the node receives the channel from the Bus, then read
 *    history after `since` (or just the position).
 * 2. `commit` (sync): the caller has sent SUBSCRIBED (or HELLO_ACK); replay the history read,
 *    then the buffered live publications that came after it, and go live.
 *
 * Because the Bus subscription is in place before the history read, and commit drops buffered
 * publications the history already covered, a client gets every missed publication exactly once,
 * in order, before live ones.
 */
import type { Publication } from '../bus/types.js';
import { namespaceOptions } from '../config/index.js';
import { isPattern, matchesPattern, type StreamPosition } from '../protocol/frames.js';
import { MAX_HANDED_BACK, type Connection } from './connection.js';
import type { GatewayContext } from './context.js';
import { wsErrorOf } from './errors.js';
import { eventFrame } from './fanout.js';
import { later } from './registry.js';
import type { PresenceTracker } from './presence-tracker.js';
import type { TypingTracker } from './typing.js';

export interface Prepared {
  channel: string;
  position: StreamPosition;
  recovered: boolean;
  replay: Publication[];
  /** Already subscribed: nothing to replay or activate, unless `suspended`. */
  existing: boolean;
  /** Already subscribed and taken back to pending for a replay: commit replays and goes live again. */
  suspended?: boolean;
  /** Once committed, every publication after this was sent to the client (none for patterns). */
  sentAfter?: StreamPosition;
  /** Publications of `replay` the connection's patterns already sent it (from, through): left out. */
  viaPatterns?: { from: StreamPosition; through: StreamPosition };
}

export type PrepareResult = { ok: true; prepared: Prepared } | { ok: false; code: 'FORBIDDEN' | 'BAD_REQUEST' | 'INTERNAL' | 'NOT_FOUND'; message: string };

const PATTERN_POSITION: StreamPosition = { offset: 0, epoch: '' };

export class Subscriptions {
  constructor(
    private readonly ctx: GatewayContext,
    private readonly presence: PresenceTracker,
    private readonly typing: TypingTracker,
  ) {}

  /** Never throws: a failure is a result, so one bad channel cannot strand the others pending. */
  async prepare(conn: Connection, channel: string, since: StreamPosition | undefined, checkAccess = true): Promise<PrepareResult> {
    const auth = conn.auth;
    if (!auth) return { ok: false, code: 'FORBIDDEN', message: 'not authenticated' };
    if (conn.channels.has(channel)) return this.prepareExisting(conn, channel, since);
    if (checkAccess) {
      let allowed: boolean;
      try {
        allowed = await this.ctx.access.canSubscribe(auth, channel);
      } catch (err) {
        // Cannot tell (membership service unreachable): refuse this channel, keep the others.
        this.ctx.logger.warn({ err, channel, connection_id: conn.id }, 'access check failed');
        return { ok: false, code: 'INTERNAL', message: `could not check access to ${channel}; try again` };
      }
      if (!allowed) return { ok: false, code: 'FORBIDDEN', message: `not allowed to subscribe to ${channel}` };
    }
    if (conn.channels.size >= this.ctx.tuning.maxSubscriptions) {
      return { ok: false, code: 'BAD_REQUEST', message: `at most ${this.ctx.tuning.maxSubscriptions} subscriptions per connection` };
    }
    if (!conn.isOpen) return { ok: false, code: 'BAD_REQUEST', message: 'connection closed' };
    conn.channels.add(channel);
    // A replay from `since` covers what the connection's patterns over this channel would send
    // while it is set up: they leave the channel to it at once. What they sent it until now is
    // not replayed again (a client's `since` may predate frames still on their way to it).
    let viaPatterns: Prepared['viaPatterns'];
    if (since && !isPattern(channel)) {
      viaPatterns = this.patternRange(conn, channel);
      conn.active.add(channel);
    }
    try {
      await this.ctx.registry.addPending(conn, channel);
      if (isPattern(channel)) {
        return { ok: true, prepared: { channel, position: PATTERN_POSITION, recovered: false, replay: [], existing: false } };
      }
      if (since) {
        const history = await this.ctx.bus.history(channel, since);
        const { position, recovered } = history;
        return {
          ok: true,
          prepared: { channel, position, recovered, replay: recovered ? history.publications : [], existing: false, sentAfter: recovered ? since : position, viaPatterns },
        };
      }
      const position = await this.ctx.bus.position(channel);
      return { ok: true, prepared: { channel, position, recovered: false, replay: [], existing: false, sentAfter: position } };
    } catch (err) {
      this.abandon(conn, channel);
      const { code, message } = wsErrorOf(err);
      this.ctx.logger.warn({ err, channel, connection_id: conn.id }, 'subscribe failed');
      return { ok: false, code: code === 'FORBIDDEN' || code === 'BAD_REQUEST' ? code : 'INTERNAL', message: code === 'INTERNAL' ? `could not subscribe to ${channel}` : message };
    }
  }

  /**
   * Already subscribed (`user:{self}` at the upgrade, then HELLO with `since`): the client may have
   * missed publications from before this subscription started. The subscription goes back to
   * pending, as a new one would be, for the history read; what the connection was already sent
   * live is left out of the replay. When something was already sent live and older ones were
   * missed, they cannot come before it: recovered false (a client resuming should authenticate
   * with the HELLO itself, as the SDK does, so nothing goes live before it).
   */
  private async prepareExisting(conn: Connection, channel: string, since: StreamPosition | undefined): Promise<PrepareResult> {
    const known = conn.positions.get(channel);
    const current = later(known, this.ctx.registry.lastPosition(channel));
    const unchanged: PrepareResult = {
      ok: true,
      prepared: { channel, position: isPattern(channel) ? PATTERN_POSITION : (current ?? PATTERN_POSITION), recovered: true, replay: [], existing: true },
    };
    // Nothing asked: answered as a fresh subscribe without `since` is (nothing was recovered).
    // A pattern has no history of its own, so nothing is ever recovered through it: answered as
    // its first subscribe with `since` was.
    if (!since || isPattern(channel)) return { ok: true, prepared: { ...unchanged.prepared, recovered: false } };
    const sentAfter = conn.sentAfter.get(channel);
    // Still being set up (the same channel twice in one frame): nothing to add.
    if (!known || !sentAfter) return unchanged;
    const live = this.ctx.registry.suspend(conn, channel);
    if (!live) return unchanged;
    const at = later(known, live.last)!;
    try {
      const history = await this.ctx.bus.history(channel, since);
      const replay = history.recovered ? history.publications.filter((p) => !wasSent(p, sentAfter, live.last)) : [];
      // Missed publications older than one the connection was already sent live could only
      // arrive behind it (an event's status going backwards): not recovered, the client resyncs.
      const sentLive = live.last !== null && live.last.epoch === sentAfter.epoch && live.last.offset > sentAfter.offset;
      if (history.recovered && !(sentLive && replay.length > 0)) {
        const from = sentAfter.epoch === since.epoch && sentAfter.offset <= since.offset ? sentAfter : since;
        return { ok: true, prepared: { channel, position: history.position, recovered: true, replay, existing: true, suspended: true, sentAfter: from } };
      }
    } catch (err) {
      // The subscription itself is fine: it goes live again, and the client resyncs.
      this.ctx.logger.warn({ err, channel, connection_id: conn.id }, 'history read failed');
    }
    return { ok: true, prepared: { channel, position: at, recovered: false, replay: [], existing: true, suspended: true } };
  }

  /**
   * Commits several, channels before patterns: a pattern committed first would send what it
   * received for a channel of the batch ahead of that channel's replay.
   */
  commitAll(conn: Connection, prepared: Prepared[]): void {
    for (const p of prepared) if (!isPattern(p.channel)) this.commit(conn, p);
    for (const p of prepared) if (isPattern(p.channel)) this.commit(conn, p);
  }

  /** Replays, then goes live. Call synchronously after sending SUBSCRIBED / HELLO_ACK. */
  commit(conn: Connection, prepared: Prepared): void {
    if (prepared.existing && !prepared.suspended) return;
    const { channel } = prepared;
    if (!conn.isOpen || !conn.channels.has(channel)) {
      this.abandon(conn, channel);
      return;
    }
    let last: StreamPosition | null = isPattern(channel) ? null : prepared.position;
    // Until now the connection's other subscriptions covering these channels (a pattern over
    // this channel, or channels and patterns under this pattern) went on delivering them: what
    // they sent is not sent again.
    // (Not for a channel already in place, being replayed from `since`: its patterns stopped.)
    const handover = !conn.active.has(channel);
    const unsent = (pub: Publication) => !handover || pub.ephemeral === true || !this.ctx.registry.sentThroughOthers(conn, channel, pub);
    let replayed: StreamPosition | undefined;
    const { viaPatterns } = prepared;
    const sentViaPatterns = (pub: Publication) =>
      viaPatterns !== undefined && pub.epoch === viaPatterns.from.epoch && pub.offset >= viaPatterns.from.offset && pub.offset <= viaPatterns.through.offset;
    // Delivered by name from now on: what patterns send later no longer counts.
    if (!isPattern(channel)) {
      conn.patternFrom.delete(channel);
      conn.handedBack.delete(channel);
    }
    for (const pub of prepared.replay) {
      if (!unsent(pub) || sentViaPatterns(pub)) continue;
      conn.deliver(eventFrame(pub));
      replayed = { offset: pub.offset, epoch: pub.epoch };
    }
    const tail = prepared.replay.at(-1);
    if (tail && last && (tail.epoch !== last.epoch || tail.offset > last.offset)) last = { offset: tail.offset, epoch: tail.epoch };
    // A pattern of the connection covering this channel sent it everything up to where it
    // stands: live publications after that are this subscription's to deliver, also those at or
    // before the position read for it, which the pattern did not get to yet.
    const viaPattern = isPattern(channel) || !handover ? undefined : this.ctx.registry.throughPatterns(conn, channel);
    const from = viaPattern === undefined ? last : (later(viaPattern ?? undefined, replayed ?? null) ?? null);
    const buffered = this.ctx.registry.activate(conn, channel, from);
    if (buffered === null) {
      // Too much arrived while history was read: the client must resubscribe and recover.
      this.fellBehind(conn, channel);
      return;
    }
    conn.active.add(channel);
    for (const pub of buffered) {
      if (unsent(pub)) conn.deliver(eventFrame(pub));
      if (!pub.ephemeral && !isPattern(channel)) last = { offset: pub.offset, epoch: pub.epoch };
    }
    if (last) conn.positions.set(channel, last);
    if (prepared.sentAfter) conn.sentAfter.set(channel, prepared.sentAfter);
    if (prepared.existing) return;
    if (!isPattern(channel) && namespaceOptions(this.ctx.config, channel).presence) this.presence.join(conn, channel);
  }

  /** Whether the connection receives `channel`: subscribed to it, or to a pattern covering it. */
  receives(conn: Connection, channel: string): boolean {
    if (conn.channels.has(channel)) return true;
    for (const sub of conn.channels) if (isPattern(sub) && matchesPattern(sub, channel)) return true;
    return false;
  }

  /** UNSUBSCRIBE: leaves the channels; presence entries go at once (an explicit leave). */
  unsubscribe(conn: Connection, channels: string[]): string[] {
    const left: string[] = [];
    for (const channel of channels) {
      if (!conn.channels.has(channel)) continue;
      if (channel === `user:${conn.userId}`) continue; // the user's own channel stays
      this.presence.leave(conn, channel);
      // The connection's patterns over what this delivered take it over: not from again.
      const back = this.ctx.registry.handedBack(conn, channel, MAX_HANDED_BACK - conn.handedBack.size);
      this.abandon(conn, channel);
      for (const [ch, pos] of back) conn.handedBack.set(ch, pos);
      left.push(channel);
    }
    if (conn.handedBack.size > 0 && ![...conn.channels].some(isPattern)) conn.handedBack.clear();
    this.stopTypingWhereGone(conn);
    return left;
  }

  /** Typing stops where the connection no longer is (a pattern may have covered several). */
  private stopTypingWhereGone(conn: Connection): void {
    for (const channel of this.typing.channelsOf(conn)) if (!this.receives(conn, channel)) this.typing.stop(conn, channel);
  }

  /** The connection is gone: leave every channel; presence entries expire by TTL. */
  dropAll(conn: Connection): void {
    for (const channel of [...conn.channels]) this.abandon(conn, channel);
  }

  /** Where the client is on each subscribed channel, for its session. */
  positionsOf(conn: Connection): Record<string, StreamPosition> {
    const out: Record<string, StreamPosition> = {};
    for (const channel of conn.channels) {
      if (isPattern(channel)) {
        out[channel] = PATTERN_POSITION;
        continue;
      }
      const known = conn.positions.get(channel);
      const last = this.ctx.registry.lastPosition(channel);
      // Live publications since subscribing were sent to this connection too.
      if (last && known && (last.epoch !== known.epoch || last.offset > known.offset)) out[channel] = last;
      else if (known) out[channel] = known;
    }
    return out;
  }

  /**
   * This node cannot bring `channel` up to date for the connection (too much arrived while it
   * read history, or what it missed is no longer in history): the subscription ends and the
   * client is told to subscribe again with `since`, which replays or says `recovered: false`.
   */
  fellBehind(conn: Connection, channel: string): void {
    this.abandon(conn, channel);
    if (!isPattern(channel)) this.presence.detach(conn, channel);
    this.stopTypingWhereGone(conn);
    conn.sendError(
      'INTERNAL',
      isPattern(channel)
        ? `subscription to ${channel} may have missed publications while this node was cut off from the bus; subscribe again and resync`
        : `subscription to ${channel} fell behind; subscribe again with since`,
      undefined,
      channel,
    );
  }

  /**
   * The publications on `channel` the connection's patterns sent it, from the first (patternFrom)
   * through the last one they fanned out on this node: every one in between reached it, through a
   * pattern or another of its subscriptions (a subscription that could not keep up ends and takes
   * its record with it).
   */
  private patternRange(conn: Connection, channel: string): Prepared['viaPatterns'] {
    const from = conn.patternFrom.get(channel);
    const through = from && this.ctx.registry.throughPatterns(conn, channel);
    if (!from || !through || through.epoch !== from.epoch || through.offset < from.offset) return undefined;
    return { from, through };
  }

  private abandon(conn: Connection, channel: string): void {
    // What the connection was sent through it may have a gap from here on.
    if (isPattern(channel)) conn.patternFrom.clear();
    else conn.patternFrom.delete(channel);
    conn.channels.delete(channel);
    conn.active.delete(channel);
    conn.positions.delete(channel);
    conn.sentAfter.delete(channel);
    this.ctx.registry.remove(conn, channel);
  }
}

/** Whether the connection was sent `pub`: it was sent everything after `from` up to `last`. */
function wasSent(pub: Publication, from: StreamPosition, last: StreamPosition | null): boolean {
  if (!last || pub.epoch !== last.epoch || pub.offset > last.offset) return false;
  return from.epoch !== pub.epoch || pub.offset > from.offset;
}
