/**
 * The client's subscriptions and stream positions, and what happens to them as the connection
 * comes and goes: SUBSCRIBE with `since`, taking back what a resumed session restored, routing
 * EVENTs, and `resync` when the server could not recover a channel. The connection itself
 * (socket, handshake, reconnects, auth) is TemClient's; this side only sees a narrow port.
 */
import type { ClientFrameMap, ServerFrame, ServerFrameMap, StreamPosition } from '../protocol/index.js';
import { isValidChannel } from '../protocol/index.js';
import { TemClientError } from './errors.js';
import { insertByOffset, MAX_HELD, nextInLine, replayOver, type EventPayload, type Held } from './held.js';
import { Positions } from './positions.js';
import { UpdateVersions } from './update-versions.js';
import type { ReplyHandlers, ReplyOf } from './requests.js';
import { covered, isEphemeral, pickSince, resumeSince, routeEvent, subscribedByName } from './routing.js';
import { Subscription, type SubscriptionHost } from './subscription.js';
import type { TimerHandle, Timers } from './timers.js';
import { SubscriptionState, type Publication, type ResyncContext, type SubscribedContext, type SubscriptionOptions } from './types.js';

/** What the registry needs from the connection. */
export interface ConnectionPort {
  readonly timers: Timers;
  readonly timeout: number;
  readonly typingInterval: number;
  readonly typingTimeout: number;
  isConnected(): boolean;
  /** Stopped for good or by disconnect(): nothing is retried until connect(). */
  isClosed(): boolean;
  userChannel(): string | undefined;
  /**
   * Registers a request (its timer starts) and returns its id and a `send` that writes it now;
   * if it cannot be written it fails at once with DISCONNECTED.
   */
  prepare<T extends 'SUBSCRIBE' | 'UNSUBSCRIBE'>(type: T, payload: ClientFrameMap[T], handlers: ReplyHandlers): { id: number; send(): void };
  request<T extends 'PUBLISH' | 'PRESENCE'>(type: T, payload: ClientFrameMap[T]): Promise<ServerFrameMap[ReplyOf<T>]>;
  notify(type: 'TYPING_START' | 'TYPING_STOP', payload: { channel: string }): void;
  retryDelay(attempt: number): number;
  /** A channel with no subscription object (the automatic `user:{self}`) lost messages. */
  resync(ctx: ResyncContext): void;
  /** A publication for the client-wide `publication` event. */
  publication(pub: Publication): void;
}

const ignore: ReplyHandlers = { resolve: () => undefined, reject: () => undefined };

export class Registry {
  readonly positions = new Positions();
  private readonly versions = new UpdateVersions();
  private readonly subs = new Map<string, Subscription>();
  private readonly host: SubscriptionHost;
  /** The next attempt at the user's own channel after the server refused it (resubscribeOwn). */
  private ownRetry: TimerHandle | undefined;
  /** Publications on channels whose SUBSCRIBE is not answered, or its replay not over, yet (held.ts). */
  private readonly held = new Map<string, Held>();

  constructor(private readonly port: ConnectionPort) {
    this.host = {
      timers: port.timers,
      isClosed: () => port.isClosed(),
      positions: this.positions,
      typingInterval: port.typingInterval,
      typingTimeout: port.typingTimeout,
      subscribeNow: (sub) => this.sendSubscribe(sub),
      unsubscribeNow: (sub) => {
        if (port.isConnected()) port.prepare('UNSUBSCRIBE', { channels: [sub.channel] }, ignore).send();
      },
      request: (type, payload) => port.request(type, payload),
      notify: (type, payload) => port.notify(type, payload),
      retryDelay: (n) => port.retryDelay(n),
      ended: (sub) => this.ended(sub),
    };
  }

  create(channel: string, options?: SubscriptionOptions): Subscription {
    if (!isValidChannel(channel)) throw new TemClientError('INVALID_ARGUMENT', `invalid channel name: ${channel}`);
    if (this.subs.has(channel)) throw new TemClientError('INVALID_ARGUMENT', `already subscribed to ${channel}; use getSubscription()`);
    const sub = new Subscription(this.host, channel, options);
    this.subs.set(channel, sub);
    return sub;
  }

  get(channel: string): Subscription | undefined {
    return this.subs.get(channel);
  }

  list(): Subscription[] {
    return [...this.subs.values()];
  }

  remove(sub: Subscription): void {
    sub.unsubscribe();
    if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
  }

  /** The positions to send with HELLO when resuming. */
  resumeSince(): Record<string, StreamPosition> | undefined {
    return resumeSince(this.subs.values(), this.positions, this.port.userChannel());
  }

  /** After HELLO_ACK: take back what the session restored, re-subscribe the rest. */
  restore(ack: ServerFrameMap['HELLO_ACK'], sentSince: Record<string, StreamPosition> | undefined): void {
    const restored = (ack.resumed && ack.channels) || {};
    const own = this.port.userChannel();
    // The user's own channel is subscribed on every connection, resumed or not, and recovered
    // from its `since` either way: its entry counts even when the session was not resumed.
    const ownAck = own ? ack.channels?.[own] : undefined;
    // Exact channels before patterns: a pattern live first would deliver a channel's new
    // publications, moving its position, before that channel's SUBSCRIBE with `since` is sent.
    const inOrder = this.list().sort((a, b) => Number(a.isPattern) - Number(b.isPattern));
    for (const sub of inOrder) {
      if (sub.state !== SubscriptionState.Subscribing) continue;
      const r = restored[sub.channel];
      if (r) this.settle(sub, { channel: sub.channel, offset: r.offset, epoch: r.epoch, recovered: r.recovered, resumed: true }, pickSince(sentSince, sub.channel));
      else this.sendSubscribe(sub);
    }
    // A resumed session may bring back channels unsubscribed while offline: leave them.
    const unwanted = Object.keys(restored).filter((ch) => ch !== own && !this.wants(ch));
    // At most 100 channels per frame, as the server takes them.
    for (let i = 0; i < unwanted.length; i += 100) this.port.prepare('UNSUBSCRIBE', { channels: unwanted.slice(i, i + 100) }, ignore).send();
    // The channel with no subscription object (the automatic user:{self}) can only be recovered
    // by the resume. Any other channel in `since` that no subscription covers was left between
    // HELLO and its reply: it is the application's no more (no position brought back, no
    // resync), and UNSUBSCRIBE ends it.
    const lost = own ? sentSince?.[own] : undefined;
    if (own && lost && !covered(this.subs.values(), own)) {
      const ok = ownAck ? ownAck.recovered : ack.resumed && ack.recovered;
      if (ownAck) this.positions.onSubscribed(own, ownAck, ownAck.recovered, lost);
      if (!ok) {
        this.positions.delete(own);
        this.port.resync({ channel: own, lost });
      }
    }
    // No position yet on the user's own channel (nothing has arrived there): start from where the
    // server says it stands, so the next resume asks for whatever is published while away.
    if (own && ownAck && !this.positions.get(own)) this.positions.set(own, ownAck);
  }

  sendSubscribe(sub: Subscription): void {
    if (!this.port.isConnected() || sub._inflight !== undefined || sub.state !== SubscriptionState.Subscribing) return;
    const since = sub._since();
    const payload = since ? { channels: [sub.channel], since } : { channels: [sub.channel] };
    const req = this.port.prepare('SUBSCRIBE', payload, {
      resolve: (f) => {
        if (sub._inflight !== req.id) return;
        if (f.type === 'SUBSCRIBED') this.settle(sub, { ...(f as ServerFrame<'SUBSCRIBED'>).payload, resumed: false }, since);
        else sub._onSubscribeError(new TemClientError('INTERNAL', `unexpected ${f.type} in reply to SUBSCRIBE`));
      },
      reject: (err) => {
        if (sub._inflight === req.id) sub._onSubscribeError(err);
      },
    });
    // A stale reply (to a SUBSCRIBE before an unsubscribe/subscribe) must not count.
    sub._inflight = req.id;
    sub._sentSince = since;
    req.send();
  }

  /** An EVENT: delivered (or dropped as a duplicate), or held until its channel's SUBSCRIBED. */
  onEvent(payload: EventPayload): void {
    const sub = this.holding(payload);
    if (!sub) {
      this.route(payload);
      return;
    }
    const held = this.held.get(sub.channel) ?? { events: [] };
    this.held.set(sub.channel, held);
    insertByOffset(held.events, payload);
    if (held.events.length > MAX_HELD) this.release(sub.channel);
    else this.drain(sub);
  }

  private route(payload: EventPayload): void {
    const pub = routeEvent(this.list(), this.positions, this.versions, payload, this.port.userChannel());
    if (pub) this.port.publication(pub);
  }

  /**
   * The subscription by name that must see `payload` in order, if it is still waiting for its
   * SUBSCRIBED or for the replay after it. Not the user's own channel: the server has it live
   * on every connection, so its publications are never older than a replay.
   */
  private holding(p: EventPayload): Subscription | undefined {
    if (typeof p.channel !== 'string' || typeof p.offset !== 'number' || typeof p.epoch !== 'string' || p.epoch === '') return undefined;
    if (typeof p.event !== 'string' || isEphemeral(p.event) || p.channel === this.port.userChannel()) return undefined;
    const sub = this.subs.get(p.channel);
    if (!sub || sub.isPattern) return undefined;
    return sub.state === SubscriptionState.Subscribing || this.held.has(p.channel) ? sub : undefined;
  }

  /** Sends out the held publications that are next in line, or all once no replay can come. */
  private drain(sub: Subscription): void {
    const held = this.held.get(sub.channel);
    if (!held) return;
    if (sub.state === SubscriptionState.Subscribed && replayOver(held, this.positions.get(sub.channel))) {
      this.release(sub.channel);
      return;
    }
    while (held.events.length > 0 && nextInLine(held.events[0]!, this.positions.get(sub.channel))) this.route(held.events.shift()!);
    if (held.events.length === 0) this.dropHeld(sub.channel);
  }

  /** Sends out everything held on `channel`, in order: nothing more will fill its gaps. */
  private release(channel: string): void {
    const held = this.held.get(channel);
    if (!held) return;
    this.dropHeld(channel);
    for (const p of held.events) this.route(p);
  }

  private dropHeld(channel: string): void {
    const held = this.held.get(channel);
    if (held?.timer !== undefined) this.port.timers.clearTimeout(held.timer);
    this.held.delete(channel);
  }

  /**
   * A SUBSCRIBED (or a channel a resumed session restored). Not recovered: no replay follows,
   * so what was held goes out first, as it came. Recovered: the replay follows up to the head
   * the reply names, and the held publications go out as it reaches them.
   */
  private settle(sub: Subscription, ctx: SubscribedContext, since: Record<string, StreamPosition> | undefined): void {
    if (!ctx.recovered) this.release(sub.channel);
    sub._onSubscribed(ctx, since);
    const held = this.held.get(sub.channel);
    if (!held) return;
    held.until = { offset: ctx.offset, epoch: ctx.epoch };
    if (held.timer === undefined) held.timer = this.port.timers.setTimeout(() => this.release(sub.channel), this.port.timeout);
    this.drain(sub);
  }

  /** A SUBSCRIBED nobody waits for: a late reply to a SUBSCRIBE that timed out, still good news. */
  onLateSubscribed(p: ServerFrameMap['SUBSCRIBED']): void {
    const sub = this.subs.get(p.channel);
    // With the `since` that SUBSCRIBE carried: a late `recovered: false` is still a gap to report.
    if (sub && sub._inflight === undefined) this.settle(sub, { ...p, resumed: false }, sub._sentSince);
  }

  /** An unprompted UNSUBSCRIBED: the server ended these subscriptions (e.g. `access revoked`). */
  onUnsubscribed(channels: string[], reason = 'unsubscribed by the server'): void {
    for (const ch of channels) this.subs.get(ch)?._unsubscribe(reason, false);
  }

  /**
   * An unprompted ERROR naming a channel: the server dropped it (it fell behind while being
   * restored, or could not be restored). Subscribe again from the position held — the user's
   * own channel too, which has no Subscription. Returns false when no subscription has that
   * channel (the caller then emits the error).
   */
  onChannelError(channel: unknown, err: TemClientError): boolean {
    const sub = typeof channel === 'string' ? this.subs.get(channel) : undefined;
    const own = this.port.userChannel();
    // Still reported to the application (false), which may want to know the channel blinked.
    if (!sub && own !== undefined && channel === own) {
      this.resubscribeOwn(own);
      return false;
    }
    if (!sub) return false;
    sub._onChannelError(err);
    if (sub.state === SubscriptionState.Subscribing && !sub._retryPending) this.sendSubscribe(sub);
    return true;
  }

  /**
   * The server dropped the user's own channel (it could not be restored, or fell behind): it
   * has no Subscription to retry it, so subscribe again here, from the position held. Not
   * recovered → `resync`, as for any channel.
   */
  private resubscribeOwn(channel: string, attempt = 0): void {
    this.clearOwnRetry();
    const lost = this.positions.get(channel);
    const payload = lost ? { channels: [channel], since: { [channel]: lost } } : { channels: [channel] };
    this.port
      .prepare('SUBSCRIBE', payload, {
        resolve: (f) => {
          if (f.type !== 'SUBSCRIBED') return;
          const p = (f as ServerFrame<'SUBSCRIBED'>).payload;
          // Not recovered: the position is now the reply's head, where the resync leaves the
          // application, and the next resume asks for what comes after it. (Deleted, the next
          // HELLO carried no `since` for it and the replays of that resume were taken for
          // duplicates.)
          this.positions.onSubscribed(channel, p, p.recovered, lost);
          if (lost && !p.recovered) this.port.resync({ channel, lost });
        },
        // Refused or timed out (the bus down, a rate limit): try again with backoff, or this
        // connection would never again hear the user's own updates. A dropped connection gets
        // it back with the next HELLO instead.
        reject: (err) => {
          if (err.code === 'DISCONNECTED' || !this.port.isConnected()) return;
          this.ownRetry = this.port.timers.setTimeout(() => {
            this.ownRetry = undefined;
            if (this.port.isConnected() && this.port.userChannel() === channel) this.resubscribeOwn(channel, attempt + 1);
          }, this.port.retryDelay(attempt));
        },
      })
      .send();
  }

  private clearOwnRetry(): void {
    if (this.ownRetry !== undefined) this.port.timers.clearTimeout(this.ownRetry);
    this.ownRetry = undefined;
  }

  /** The connection is gone: everything waits for the next one. */
  transportLost(): void {
    this.clearOwnRetry();
    // What was held comes back with the resume's replay: the positions never moved past it.
    for (const channel of [...this.held.keys()]) this.dropHeld(channel);
    for (const sub of this.subs.values()) sub._onTransportLost();
  }

  /** The client closed: no subscription retries on, no ready() waits on. */
  clientClosed(): void {
    this.clearOwnRetry();
    for (const sub of this.subs.values()) sub._onClientClosed();
  }

  private wants(channel: string): boolean {
    const sub = this.subs.get(channel);
    return sub !== undefined && sub.state !== SubscriptionState.Unsubscribed;
  }

  /** The subscription ended: what it held goes to whatever else covers the channel. */
  private ended(sub: Subscription): void {
    this.release(sub.channel);
    const own = this.port.userChannel();
    // Only a subscription by name keeps a position moving (routeEvent): one a pattern still
    // covers would go stale, and a later subscribe() would replay from it.
    for (const ch of Object.keys(this.positions.covered(sub.channel))) {
      if (ch !== own && !subscribedByName(this.subs.values(), ch, sub)) this.positions.delete(ch);
    }
  }
}
