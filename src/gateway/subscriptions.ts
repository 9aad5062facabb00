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
import { isPattern, type StreamPosition } from '../protocol/frames.js';
import type { Connection } from './connection.js';
import type { GatewayContext } from './context.js';
import { wsErrorOf } from './errors.js';
import { eventFrame } from './fanout.js';
import type { PresenceTracker } from './presence-tracker.js';
import type { TypingTracker } from './typing.js';

export interface Prepared {
  channel: string;
  position: StreamPosition;
  recovered: boolean;
  replay: Publication[];
  /** Already subscribed: nothing to replay or activate. */
  existing: boolean;
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
    if (conn.channels.has(channel)) {
      const position = isPattern(channel) ? PATTERN_POSITION : (conn.positions.get(channel) ?? PATTERN_POSITION);
      const last = this.ctx.registry.lastPosition(channel);
      return { ok: true, prepared: { channel, position: last ?? position, recovered: true, replay: [], existing: true } };
    }
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
    try {
      await this.ctx.registry.addPending(conn, channel);
      if (isPattern(channel)) {
        return { ok: true, prepared: { channel, position: PATTERN_POSITION, recovered: false, replay: [], existing: false } };
      }
      if (since) {
        const history = await this.ctx.bus.history(channel, since);
        return {
          ok: true,
          prepared: { channel, position: history.position, recovered: history.recovered, replay: history.recovered ? history.publications : [], existing: false },
        };
      }
      const position = await this.ctx.bus.position(channel);
      return { ok: true, prepared: { channel, position, recovered: false, replay: [], existing: false } };
    } catch (err) {
      this.abandon(conn, channel);
      const { code, message } = wsErrorOf(err);
      this.ctx.logger.warn({ err, channel, connection_id: conn.id }, 'subscribe failed');
      return { ok: false, code: code === 'FORBIDDEN' || code === 'BAD_REQUEST' ? code : 'INTERNAL', message: code === 'INTERNAL' ? `could not subscribe to ${channel}` : message };
    }
  }

  /** Replays, then goes live. Call synchronously after sending SUBSCRIBED / HELLO_ACK. */
  commit(conn: Connection, prepared: Prepared): void {
    if (prepared.existing) return;
    const { channel } = prepared;
    if (!conn.isOpen || !conn.channels.has(channel)) {
      this.abandon(conn, channel);
      return;
    }
    let last: StreamPosition | null = isPattern(channel) ? null : prepared.position;
    for (const pub of prepared.replay) {
      conn.deliver(eventFrame(pub));
    }
    const tail = prepared.replay.at(-1);
    if (tail && last && (tail.epoch !== last.epoch || tail.offset > last.offset)) last = { offset: tail.offset, epoch: tail.epoch };
    const buffered = this.ctx.registry.activate(conn, channel, last);
    if (buffered === null) {
      // Too much arrived while history was read: the client must resubscribe and recover.
      this.abandon(conn, channel);
      conn.sendError('INTERNAL', `subscription to ${channel} fell behind; subscribe again with since`, undefined, channel);
      return;
    }
    for (const pub of buffered) {
      conn.deliver(eventFrame(pub));
      if (!pub.ephemeral && !isPattern(channel)) last = { offset: pub.offset, epoch: pub.epoch };
    }
    if (last) conn.positions.set(channel, last);
    if (!isPattern(channel) && namespaceOptions(this.ctx.config, channel).presence) this.presence.join(conn, channel);
  }

  /** UNSUBSCRIBE: leaves the channels; presence entries go at once (an explicit leave). */
  unsubscribe(conn: Connection, channels: string[]): string[] {
    const left: string[] = [];
    for (const channel of channels) {
      if (!conn.channels.has(channel)) continue;
      if (channel === `user:${conn.userId}`) continue; // the user's own channel stays
      this.typing.stop(conn, channel);
      this.presence.leave(conn, channel);
      this.abandon(conn, channel);
      left.push(channel);
    }
    return left;
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

  private abandon(conn: Connection, channel: string): void {
    conn.channels.delete(channel);
    conn.positions.delete(channel);
    this.ctx.registry.remove(conn, channel);
  }
}
