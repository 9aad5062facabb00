/**
 * A subscription to one channel or `prefix:*` pattern, with its own state and events.
 * Created by `client.newSubscription(channel)` (or `client.subscribe(channel)`); it outlives
 * connections: while the client reconnects it goes back to `subscribing`, and comes back with
 * the position it held so that missed publications are replayed (or `resync` says they are lost).
 */
import type { ClientFrameMap, PresenceMember, ServerFrameMap, StreamPosition } from '../protocol/index.js';
import { isPattern } from '../protocol/index.js';
import { STABLE_MS } from './backoff.js';
import { Emitter } from './emitter.js';
import { TemClientError } from './errors.js';
import type { Positions } from './positions.js';
import type { ReplyOf } from './requests.js';
import type { TimerHandle, Timers } from './timers.js';
import { TypingThrottle } from './typing.js';
import { waitFor } from './wait.js';
import {
  SubscriptionState,
  type PresenceEvent,
  type Publication,
  type SubscribedContext,
  type SubscriptionEvents,
  type SubscriptionOptions,
  type TypingEvent,
} from './types.js';

/** What a subscription needs from its client (kept narrow so the two stay decoupled). */
export interface SubscriptionHost {
  readonly timers: Timers;
  /** The client is closed: a ready() asked now would wait for a connect() that may never come. */
  isClosed(): boolean;
  readonly positions: Positions;
  readonly typingInterval: number;
  readonly typingTimeout: number;
  /** Sends SUBSCRIBE now if connected; otherwise the client does it once connected. */
  subscribeNow(sub: Subscription): void;
  /** Sends UNSUBSCRIBE if connected. */
  unsubscribeNow(sub: Subscription): void;
  request<T extends 'PUBLISH' | 'PRESENCE'>(type: T, payload: ClientFrameMap[T]): Promise<ServerFrameMap[ReplyOf<T>]>;
  /** Sends a frame without a reply if connected; dropped otherwise. */
  notify(type: 'TYPING_START' | 'TYPING_STOP', payload: { channel: string }): void;
  retryDelay(attempt: number): number;
  /**
   * The subscription ended: forgets the positions only it needed, so a later subscribe() starts
   * afresh rather than replaying from an old position, and hands on what was held for it.
   */
  ended(sub: Subscription): void;
}

/** Server errors after which retrying the same SUBSCRIBE cannot help. */
const PERMANENT = new Set(['FORBIDDEN', 'BAD_REQUEST', 'NOT_FOUND', 'UNAUTHORIZED', 'UNKNOWN_TYPE', 'TOO_LARGE', 'INVALID_ARGUMENT', 'CLOSED']);

export class Subscription extends Emitter<SubscriptionEvents> {
  readonly channel: string;
  readonly isPattern: boolean;
  private _state = SubscriptionState.Unsubscribed;
  /** @internal id of the SUBSCRIBE in flight. */
  _inflight: number | undefined;
  /** @internal the `since` the last SUBSCRIBE carried, for a reply that comes after its timeout. */
  _sentSince: Record<string, StreamPosition> | undefined;
  private retryTimer: TimerHandle | undefined;
  /** ready() calls waiting: the client closing ends their wait. */
  private readonly closeWaiters = new Set<() => void>();
  private retryAttempt = 0;
  /** When the last SUBSCRIBED came, and how many drops by the server followed soon after one. */
  private subscribedAt = 0;
  private dropAttempt = 0;
  private readonly typing: TypingThrottle;
  private initialSince: StreamPosition | undefined;
  /**
   * A pattern delivered something: the server recovers no pattern, so after a reconnect what it
   * delivered meanwhile is lost and the application is told (`resync`). Patterns keep no
   * per-channel positions: a long-lived `prefix:*` would collect one per channel ever seen and
   * send them all in every HELLO, which the server ignores for patterns anyway.
   */
  private patternDelivered = false;

  /** @internal use client.newSubscription() */
  constructor(
    private readonly host: SubscriptionHost,
    channel: string,
    options: SubscriptionOptions = {},
  ) {
    super();
    this.channel = channel;
    this.isPattern = isPattern(channel);
    this.initialSince = options.since;
    this.typing = new TypingThrottle(host.timers, {
      interval: host.typingInterval,
      timeout: host.typingTimeout,
      send: (type) => host.notify(type, { channel }),
    });
  }

  get state(): SubscriptionState {
    return this._state;
  }

  /** The last position delivered on this channel (exact channels only). */
  get position(): StreamPosition | undefined {
    return this.isPattern ? undefined : this.host.positions.get(this.channel);
  }

  subscribe(): void {
    if (this._state !== SubscriptionState.Unsubscribed) return;
    this.retryAttempt = 0;
    this.setState(SubscriptionState.Subscribing);
    this.host.subscribeNow(this);
  }

  unsubscribe(): void {
    this._unsubscribe('unsubscribe called', true);
  }

  /** Resolves once subscribed; rejects if the subscription ends first or `timeoutMs` passes. */
  ready(timeoutMs?: number): Promise<void> {
    if (this._state === SubscriptionState.Subscribed) return Promise.resolve();
    if (this._state === SubscriptionState.Unsubscribed) return Promise.reject(new TemClientError('CLOSED', `not subscribed to ${this.channel}`));
    if (this.host.isClosed()) return Promise.reject(new TemClientError('CLOSED', `${this.channel}: client closed`));
    return waitFor(this.host.timers, timeoutMs, `not subscribed to ${this.channel}`, (done) => {
      const offSub = this.on('subscribed', () => done());
      const offUnsub = this.on('unsubscribed', (ctx) => done(new TemClientError('CLOSED', `${this.channel}: ${ctx.reason}`)));
      const onClose = () => done(new TemClientError('CLOSED', `${this.channel}: client closed`));
      this.closeWaiters.add(onClose);
      return () => {
        offSub();
        offUnsub();
        this.closeWaiters.delete(onClose);
      };
    });
  }

  /** Publishes to this channel (where the namespace allows client publish). */
  publish(event: string, payload: unknown): Promise<ServerFrameMap['PUBLISHED']> {
    if (this.isPattern) return Promise.reject(new TemClientError('INVALID_ARGUMENT', 'cannot publish to a pattern'));
    return this.host.request('PUBLISH', { channel: this.channel, event, payload });
  }

  /** Current members of the channel and their status. */
  async presence(): Promise<PresenceMember[]> {
    if (this.isPattern) throw new TemClientError('INVALID_ARGUMENT', 'presence of a pattern is not defined');
    const state = await this.host.request('PRESENCE', { channel: this.channel });
    return state.members;
  }

  /** Call on every keystroke; sends TYPING_START at most every `typingInterval` ms. */
  startTyping(): void {
    if (!this.isPattern) this.typing.start();
  }

  stopTyping(): void {
    this.typing.stop();
  }

  /** @internal the `since` to send with SUBSCRIBE. */
  _since(): Record<string, StreamPosition> | undefined {
    if (this.isPattern) return undefined;
    const known = this.host.positions.covered(this.channel);
    if (!known[this.channel] && this.initialSince) known[this.channel] = { ...this.initialSince };
    return Object.keys(known).length ? known : undefined;
  }

  /** @internal a SUBSCRIBED reply, or a channel restored by a resumed session. */
  _onSubscribed(ctx: SubscribedContext, sentSince: Record<string, StreamPosition> | undefined): void {
    this._inflight = undefined;
    if (this._state !== SubscriptionState.Subscribing) return;
    // A reply that came after its timeout: the retry it scheduled is not needed.
    this.clearRetry();
    this.retryAttempt = 0;
    this.subscribedAt = this.host.timers.now();
    this.initialSince = undefined;
    const lost = sentSince?.[this.channel];
    if (!this.isPattern) this.host.positions.onSubscribed(this.channel, { offset: ctx.offset, epoch: ctx.epoch }, ctx.recovered, lost);
    this.setState(SubscriptionState.Subscribed);
    this.emit('subscribed', ctx);
    // A channel the resumed session brought back was live on the old connection: without a
    // position of the client's own (the SUBSCRIBED reply was lost in the drop) what it missed
    // cannot be told, and the server says so with recovered false.
    const askedToRecover = this.isPattern ? this.patternDelivered : lost !== undefined || ctx.resumed;
    if (askedToRecover && !ctx.recovered) this.emit('resync', { channel: this.channel, lost });
  }

  /** @internal the SUBSCRIBE failed. */
  _onSubscribeError(err: TemClientError): void {
    this._inflight = undefined;
    if (this._state !== SubscriptionState.Subscribing) return;
    // A dropped connection is not this subscription's failure: it resubscribes on reconnect.
    if (err.code === 'DISCONNECTED') return;
    this.emit('error', err);
    if (PERMANENT.has(err.code)) {
      this._unsubscribe(err.code, false);
      return;
    }
    this.subscribeLater(this.host.retryDelay(this.retryAttempt++));
  }

  /** SUBSCRIBE again after `delay` ms, if still subscribing then. */
  private subscribeLater(delay: number): void {
    this.clearRetry();
    this.retryTimer = this.host.timers.setTimeout(() => {
      this.retryTimer = undefined;
      if (this._state === SubscriptionState.Subscribing) this.host.subscribeNow(this);
    }, delay);
  }

  /** @internal a resubscribe is waiting for its timer (the registry does not send one now). */
  get _retryPending(): boolean {
    return this.retryTimer !== undefined;
  }

  /** @internal an unprompted ERROR naming this channel. */
  _onChannelError(err: TemClientError): void {
    this.emit('error', err);
    if (this._state === SubscriptionState.Subscribed && err.code === 'INTERNAL') {
      // A pattern dropped by the server may have missed publications (on channels it never
      // delivered before, too): the subscription that comes back says `resync`.
      if (this.isPattern) this.patternDelivered = true;
      this._inflight = undefined;
      this.setState(SubscriptionState.Subscribing);
      // The first drop is answered at once (the server asks for exactly that). Drops that keep
      // coming soon after each SUBSCRIBED back off as failed subscribes do, so a server that
      // cannot keep the channel up is not asked again and again.
      if (this.host.timers.now() - this.subscribedAt >= STABLE_MS) this.dropAttempt = 0;
      if (this.dropAttempt++ > 0) this.subscribeLater(this.host.retryDelay(this.dropAttempt - 2));
    } else if (this._state !== SubscriptionState.Unsubscribed && PERMANENT.has(err.code)) {
      this._unsubscribe(err.code, false);
    }
  }

  /**
   * @internal the client closed (disconnect(), or for good): no retry runs on, and a ready()
   * waiting gives up with CLOSED. The subscription itself stays, for a later connect().
   */
  _onClientClosed(): void {
    this.clearRetry();
    for (const onClose of [...this.closeWaiters]) onClose();
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) this.host.timers.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** @internal the connection is gone; come back on reconnect. */
  _onTransportLost(): void {
    this._inflight = undefined;
    this.typing.reset();
    if (this._state === SubscriptionState.Subscribed) this.setState(SubscriptionState.Subscribing);
  }

  /** @internal */
  _deliver(pub: Publication): void {
    if (this.isPattern) this.patternDelivered = true;
    this.emit('publication', pub);
  }

  /** @internal */
  _presence(ev: PresenceEvent): void {
    this.emit('presence', ev);
  }

  /** @internal */
  _typing(ev: TypingEvent): void {
    this.emit('typing', ev);
  }

  /** @internal the server ended it (UNSUBSCRIBED without a request), or the client was removed. */
  _unsubscribe(reason: string, tellServer: boolean): void {
    if (this._state === SubscriptionState.Unsubscribed) return;
    this.clearRetry();
    if (tellServer) {
      this.typing.stop();
      this.host.unsubscribeNow(this);
    } else {
      this.typing.reset();
    }
    this._inflight = undefined;
    this.setState(SubscriptionState.Unsubscribed);
    this.host.ended(this);
    this.emit('unsubscribed', { channel: this.channel, reason });
  }

  private setState(newState: SubscriptionState): void {
    const oldState = this._state;
    if (oldState === newState) return;
    this._state = newState;
    this.emit('state', { oldState, newState });
  }
}
