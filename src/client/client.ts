/**
 * TemClient: one logical connection to a TEM gateway that survives reconnects.
 *
 * One `setState` drives the connection states (see ClientState); everything the application
 * sees is an event on this object or on a Subscription. The client keeps the session id and
 * the per-channel positions, so after a drop it resumes (HELLO {session_id, since}) and
 * re-subscribes with `since`: missed publications arrive once, in order, or `resync` says
 * they are gone.
 */
import type { ClientFrame, ClientFrameMap, PresenceStatus, ServerFrame, ServerFrameMap, StreamPosition } from '../protocol/index.js';
import { CLOSE_CODES, PRESENCE_STATUSES, isValidChannel } from '../protocol/index.js';
import { backoffDelay, normalizeBackoff, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { TemClientError } from './errors.js';
import { Heartbeat } from './heartbeat.js';
import { Positions } from './positions.js';
import { REPLY_OF, RequestTracker, type ReplyOf, type RequestType } from './requests.js';
import { covered, pickSince, resumeSince, routeEvent } from './routing.js';
import { Subscription, type SubscriptionHost } from './subscription.js';
import { defaultTimers, type TimerHandle, type Timers } from './timers.js';
import { Transport } from './transport.js';
import {
  ClientState,
  SubscriptionState,
  type ClientEvents,
  type ConnectedContext,
  type GetToken,
  type IngestRequest,
  type IngestResult,
  type PresenceMember,
  type SubscriptionOptions,
  type TemClientOptions,
  type TokenReason,
  type WebSocketConstructor,
} from './types.js';

/** Code reported when the client itself gives up on a socket (dead heartbeat, connect timeout). */
const ABNORMAL = 1006;

interface Settings {
  token?: string;
  getToken?: GetToken;
  tokenInQuery: boolean;
  websocket: WebSocketConstructor;
  random: () => number;
  backoff: BackoffOptions;
  timeout: number;
  connectTimeout: number;
  pingGrace: number;
}

export class TemClient extends Emitter<ClientEvents> {
  readonly url: string;
  private readonly settings: Settings;
  private readonly timers: Timers;
  private readonly requests: RequestTracker;
  private readonly positions = new Positions();
  private readonly subs = new Map<string, Subscription>();
  private readonly host: SubscriptionHost;
  private _state = ClientState.Disconnected;
  private transport: Transport | undefined;
  private heartbeat: Heartbeat | undefined;
  private session: ConnectedContext | undefined;
  private attempt = 0;
  /** Bumped by every attempt and by disconnect(): async work from an older one is dropped. */
  private generation = 0;
  private reconnectTimer: TimerHandle | undefined;
  private connectTimer: TimerHandle | undefined;
  private token: string | undefined;
  private rejectedToken: string | undefined;
  private nextToken: string | undefined;
  private helloSince: Record<string, StreamPosition> | undefined;
  private awaitingGreeting = false;
  private status: PresenceStatus | undefined;
  private everConnected = false;

  constructor(url: string, options: TemClientOptions = {}) {
    super();
    const websocket = options.websocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!websocket) throw new TemClientError('INVALID_ARGUMENT', 'no WebSocket implementation: pass options.websocket');
    this.url = url;
    this.timers = options.timers ?? defaultTimers;
    this.settings = {
      token: options.token,
      getToken: options.getToken,
      tokenInQuery: options.tokenInQuery ?? false,
      websocket,
      random: options.random ?? Math.random,
      backoff: normalizeBackoff(options.backoff),
      timeout: options.timeout ?? 10_000,
      connectTimeout: options.connectTimeout ?? 10_000,
      pingGrace: options.pingGrace ?? 5_000,
    };
    this.requests = new RequestTracker(this.timers);
    this.host = {
      timers: this.timers,
      positions: this.positions,
      typingInterval: options.typingInterval ?? 3_000,
      typingTimeout: options.typingTimeout ?? 5_000,
      subscribeNow: (sub) => this.sendSubscribe(sub),
      unsubscribeNow: (sub) => {
        if (this._state !== ClientState.Connected) return;
        const frame = this.requests.create('UNSUBSCRIBE', { channels: [sub.channel] }, this.settings.timeout, { resolve: () => undefined, reject: () => undefined });
        this.write(frame, false);
      },
      request: (type, payload) => this.request(type, payload),
      notify: (type, payload) => {
        if (this._state === ClientState.Connected) this.transport?.send({ type, payload });
      },
      retryDelay: (n) => backoffDelay(n, this.settings.backoff, this.settings.random),
      releasePositions: (sub) => this.releasePositions(sub),
    };
  }

  get state(): ClientState {
    return this._state;
  }

  /** The HELLO_ACK of the current (or last) connection. */
  get connection(): ConnectedContext | undefined {
    return this.session && { ...this.session };
  }

  /** Opens the connection (or, while waiting to reconnect, tries again now). */
  connect(): void {
    if (this._state === ClientState.Connected || this._state === ClientState.Connecting) return;
    if (this._state === ClientState.Closed) {
      this.rejectedToken = undefined;
      this.attempt = 0;
    }
    this.clearReconnect();
    void this.open(this.everConnected ? 'reconnect' : 'connect');
  }

  /** Closes the connection and stays closed: no reconnect until connect() is called again. */
  disconnect(): void {
    if (this._state === ClientState.Closed) return;
    this.toClosed(CLOSE_CODES.NORMAL, 'disconnect called');
  }

  /** Replaces the static token (used from the next connection attempt). */
  setToken(token: string): void {
    this.settings.token = token;
    if (this.rejectedToken === token) this.rejectedToken = undefined;
  }

  /** Resolves once connected; rejects on `closed` or after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void> {
    if (this._state === ClientState.Connected) return Promise.resolve();
    if (this._state === ClientState.Closed) return Promise.reject(new TemClientError('CLOSED', 'client is closed'));
    return new Promise((resolve, reject) => {
      let timer: TimerHandle | undefined;
      const off = this.on('state', ({ newState }) => {
        if (newState === ClientState.Connected) done();
        else if (newState === ClientState.Closed) done(new TemClientError('CLOSED', 'client closed before connecting'));
      });
      const done = (err?: TemClientError) => {
        off();
        if (timer !== undefined) this.timers.clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      if (timeoutMs !== undefined) timer = this.timers.setTimeout(() => done(new TemClientError('TIMEOUT', `not connected within ${timeoutMs} ms`)), timeoutMs);
    });
  }

  /** A new subscription object (not yet subscribed). Throws if one exists for the channel. */
  newSubscription(channel: string, options?: SubscriptionOptions): Subscription {
    if (!isValidChannel(channel)) throw new TemClientError('INVALID_ARGUMENT', `invalid channel name: ${channel}`);
    if (this.subs.has(channel)) throw new TemClientError('INVALID_ARGUMENT', `already subscribed to ${channel}; use getSubscription()`);
    const sub = new Subscription(this.host, channel, options);
    this.subs.set(channel, sub);
    return sub;
  }

  /** The channel's subscription (created if needed), subscribing. */
  subscribe(channel: string, options?: SubscriptionOptions): Subscription {
    const sub = this.subs.get(channel) ?? this.newSubscription(channel, options);
    sub.subscribe();
    return sub;
  }

  getSubscription(channel: string): Subscription | undefined {
    return this.subs.get(channel);
  }

  subscriptions(): Subscription[] {
    return [...this.subs.values()];
  }

  /** Unsubscribes and forgets the subscription. */
  removeSubscription(sub: Subscription): void {
    sub.unsubscribe();
    if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
  }

  /** Ingests an event over the socket: resolves with {event_id, status}, rejects with the server's ERROR code. */
  ingest(event: IngestRequest): Promise<IngestResult> {
    return this.request('INGEST', event);
  }

  publish(channel: string, event: string, payload: unknown): Promise<ServerFrameMap['PUBLISHED']> {
    return this.request('PUBLISH', { channel, event, payload });
  }

  async presence(channel: string): Promise<PresenceMember[]> {
    return (await this.request('PRESENCE', { channel })).members;
  }

  /** Sets this user's presence status; remembered and sent again after a reconnect. */
  setStatus(status: PresenceStatus): void {
    if (!PRESENCE_STATUSES.includes(status)) throw new TemClientError('INVALID_ARGUMENT', `status must be one of ${PRESENCE_STATUSES.join(', ')}`);
    this.status = status;
    if (this._state === ClientState.Connected) this.transport?.send({ type: 'SET_PRESENCE', payload: { status } });
  }

  private request<T extends RequestType>(type: T, payload: ClientFrameMap[T]): Promise<ServerFrameMap[ReplyOf<T>]> {
    if (this._state === ClientState.Closed) return Promise.reject(new TemClientError('CLOSED', 'client is closed; call connect() first'));
    return new Promise((resolve, reject) => {
      const frame = this.requests.create(type, payload, this.settings.timeout, {
        resolve: (f) => {
          if (f.type === REPLY_OF[type]) resolve(f.payload as ServerFrameMap[ReplyOf<T>]);
          else reject(new TemClientError('INTERNAL', `unexpected ${f.type} in reply to ${type}`));
        },
        reject,
      });
      if (this._state === ClientState.Connected) this.write(frame, true);
    });
  }

  /** Sends a request frame; one that cannot wait for the next connection fails at once. */
  private write(frame: ClientFrame, canWait: boolean): void {
    const id = frame.id as number;
    if (this.transport?.send(frame)) this.requests.markSent(id);
    else if (!canWait) this.requests.fail(id, new TemClientError('DISCONNECTED', 'not connected'));
  }

  private setState(newState: ClientState): void {
    const oldState = this._state;
    if (oldState === newState) return;
    this._state = newState;
    this.emit('state', { oldState, newState });
  }

  private async resolveToken(reason: TokenReason): Promise<string | undefined> {
    if (this.nextToken !== undefined) {
      const t = this.nextToken;
      this.nextToken = undefined;
      return t;
    }
    if (this.settings.getToken) return (await this.settings.getToken({ reason })) ?? undefined;
    return this.settings.token;
  }

  private async open(reason: TokenReason): Promise<void> {
    const gen = ++this.generation;
    this.setState(ClientState.Connecting);
    let token: string | undefined;
    try {
      token = await this.resolveToken(reason);
    } catch (err) {
      if (gen !== this.generation) return;
      this.emit('error', new TemClientError('TRANSPORT', 'getToken failed', { cause: err }));
      this.scheduleReconnect(ABNORMAL, 'getToken failed');
      return;
    }
    if (gen !== this.generation) return;
    if (this.settings.getToken && !token) {
      this.toClosed(CLOSE_CODES.UNAUTHORIZED, 'no token', new TemClientError('UNAUTHORIZED', 'getToken returned no token'));
      return;
    }
    if (token !== undefined && token === this.rejectedToken) {
      this.toClosed(CLOSE_CODES.UNAUTHORIZED, 'token rejected', new TemClientError('UNAUTHORIZED', 'the server rejected the token and no new one was given'));
      return;
    }
    this.token = token;
    let url = this.url;
    if (this.settings.tokenInQuery && token) url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
    let t: Transport | undefined = undefined;
    try {
      t = new Transport(this.settings.websocket, url, {
        onOpen: () => this.onOpen(t!),
        onFrame: (frame) => this.onFrame(t!, frame),
        onBadFrame: () => this.emit('error', new TemClientError('BAD_REQUEST', 'the server sent a frame that is not valid JSON')),
        onClose: (code, why) => this.onClose(t!, code, why),
      });
    } catch (err) {
      this.toClosed(ABNORMAL, 'cannot open a WebSocket', new TemClientError('TRANSPORT', `cannot open a WebSocket to ${this.url}`, { cause: err }));
      return;
    }
    this.transport = t;
    this.connectTimer = this.timers.setTimeout(() => {
      this.connectTimer = undefined;
      if (this.transport !== t) return;
      this.teardown();
      this.scheduleReconnect(ABNORMAL, 'connect timeout');
    }, this.settings.connectTimeout);
  }

  private onOpen(t: Transport): void {
    if (this.transport !== t) return;
    this.helloSince = undefined;
    this.awaitingGreeting = false;
    const inQuery = this.settings.tokenInQuery && this.token !== undefined;
    if (inQuery && !this.session) {
      // Authenticated at the upgrade: the server greets first, nothing to resume.
      this.awaitingGreeting = true;
      return;
    }
    const payload: ClientFrameMap['HELLO'] = {};
    if (this.token && !inQuery) payload.token = this.token;
    if (this.session) {
      payload.session_id = this.session.session_id;
      this.helloSince = resumeSince(this.subs.values(), this.positions, this.userChannel());
      if (this.helloSince) payload.since = this.helloSince;
    }
    const frame = this.requests.create('HELLO', payload, this.settings.connectTimeout, {
      resolve: (f) => {
        if (f.type === 'HELLO_ACK') this.onHelloAck(t, (f as ServerFrame<'HELLO_ACK'>).payload);
      },
      reject: (err) => this.onHelloError(t, err),
    });
    this.write(frame, false);
  }

  private onHelloError(t: Transport, err: TemClientError): void {
    // Already greeted at the upgrade: a refused second HELLO does not undo the connection.
    if (this.transport !== t || this._state === ClientState.Connected) return;
    this.teardown();
    if (err.code === 'UNAUTHORIZED') void this.onUnauthorized(CLOSE_CODES.UNAUTHORIZED, err.message);
    else this.scheduleReconnect(ABNORMAL, `handshake failed: ${err.message}`);
  }

  private onHelloAck(t: Transport, ack: ServerFrameMap['HELLO_ACK']): void {
    if (this.transport !== t || this._state !== ClientState.Connecting) return;
    if (this.connectTimer !== undefined) this.timers.clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const sentSince = this.helloSince;
    this.helloSince = undefined;
    const { session_id, user_id, heartbeat_interval, resumed, recovered } = ack;
    this.session = { session_id, user_id, heartbeat_interval, resumed, recovered };
    this.attempt = 0;
    this.rejectedToken = undefined;
    this.everConnected = true;
    this.heartbeat = new Heartbeat(this.timers, {
      interval: heartbeat_interval > 0 ? heartbeat_interval : 30_000,
      grace: this.settings.pingGrace,
      sendPing: () => t.send({ type: 'PING', payload: {} }),
      onDead: (ms) => {
        if (this.transport !== t) return;
        this.teardown();
        this.scheduleReconnect(ABNORMAL, `no frame from the server for ${ms} ms`);
      },
    });
    this.heartbeat.start();
    this.setState(ClientState.Connected);
    this.emit('connected', { ...this.session });
    if (this.transport !== t) return; // a listener disconnected
    this.restore(ack, sentSince);
    for (const frame of this.requests.unsent()) this.write(frame, true);
    if (this.status) t.send({ type: 'SET_PRESENCE', payload: { status: this.status } });
  }

  /** After HELLO_ACK: take back what the session restored, re-subscribe the rest. */
  private restore(ack: ServerFrameMap['HELLO_ACK'], sentSince: Record<string, StreamPosition> | undefined): void {
    const restored = (ack.resumed && ack.channels) || {};
    for (const sub of [...this.subs.values()]) {
      if (sub.state !== SubscriptionState.Subscribing) continue;
      const r = restored[sub.channel];
      if (r) sub._onSubscribed({ channel: sub.channel, offset: r.offset, epoch: r.epoch, recovered: r.recovered, resumed: true }, pickSince(sentSince, sub.channel));
      else this.sendSubscribe(sub);
    }
    // A resumed session may bring back channels unsubscribed while offline: leave them.
    const unwanted = Object.keys(restored).filter((ch) => ch !== this.userChannel() && !this.wants(ch));
    if (unwanted.length) {
      const frame = this.requests.create('UNSUBSCRIBE', { channels: unwanted }, this.settings.timeout, { resolve: () => undefined, reject: () => undefined });
      this.write(frame, false);
    }
    // Channels with no subscription object (the automatic user:{self}) can only be recovered by the resume.
    for (const [channel, lost] of Object.entries(sentSince ?? {})) {
      if (covered(this.subs.values(), channel)) continue;
      const r = restored[channel];
      const ok = r ? r.recovered : ack.resumed && ack.recovered;
      if (r) this.positions.onSubscribed(channel, r, r.recovered);
      if (!ok) {
        this.positions.delete(channel);
        this.emit('resync', { channel, lost });
      }
    }
  }

  private sendSubscribe(sub: Subscription): void {
    if (this._state !== ClientState.Connected || sub._inflight !== undefined || sub.state !== SubscriptionState.Subscribing) return;
    const since = sub._since();
    const frame = this.requests.create('SUBSCRIBE', since ? { channels: [sub.channel], since } : { channels: [sub.channel] }, this.settings.timeout, {
      resolve: (f) => {
        if (sub._inflight !== frame.id) return;
        if (f.type === 'SUBSCRIBED') sub._onSubscribed({ ...(f as ServerFrame<'SUBSCRIBED'>).payload, resumed: false }, since);
        else sub._onSubscribeError(new TemClientError('INTERNAL', `unexpected ${f.type} in reply to SUBSCRIBE`));
      },
      reject: (err) => {
        if (sub._inflight === frame.id) sub._onSubscribeError(err);
      },
    });
    sub._inflight = frame.id as number;
    this.write(frame, false);
  }

  private onFrame(t: Transport, frame: ServerFrame): void {
    if (this.transport !== t) return;
    this.heartbeat?.received();
    if (frame.ref !== undefined && this.requests.settle(frame)) return;
    switch (frame.type) {
      case 'EVENT': {
        const pub = routeEvent([...this.subs.values()], this.positions, (frame as ServerFrame<'EVENT'>).payload, this.userChannel());
        if (pub) this.emit('publication', pub);
        break;
      }
      case 'HELLO_ACK':
        // The greeting after an upgrade that carried the token. With a session to resume, the
        // reply to our HELLO (with `ref`) is the one that counts.
        if (this.awaitingGreeting) this.onHelloAck(t, (frame as ServerFrame<'HELLO_ACK'>).payload);
        break;
      case 'SUBSCRIBED': {
        // A late reply to a SUBSCRIBE that timed out: still good news.
        const p = (frame as ServerFrame<'SUBSCRIBED'>).payload;
        const sub = this.subs.get(p.channel);
        if (sub && sub._inflight === undefined) sub._onSubscribed({ ...p, resumed: false }, undefined);
        break;
      }
      case 'UNSUBSCRIBED':
        for (const ch of (frame as ServerFrame<'UNSUBSCRIBED'>).payload.channels ?? []) this.subs.get(ch)?._unsubscribe('unsubscribed by the server', false);
        break;
      case 'ERROR': {
        const { code, message, channel } = (frame as ServerFrame<'ERROR'>).payload as ServerFrameMap['ERROR'] & { channel?: unknown };
        const err = new TemClientError(code, message, { fromServer: true });
        const sub = typeof channel === 'string' ? this.subs.get(channel) : undefined;
        if (sub) this.onChannelError(sub, err);
        else this.emit('error', err);
        if (code === 'UNAUTHORIZED') void this.refreshExpired(t);
        break;
      }
      default:
        break;
    }
  }

  /**
   * An unprompted ERROR about one channel: the server dropped it (it fell behind while being
   * restored, or could not be restored). Subscribe again from the position held.
   */
  private onChannelError(sub: Subscription, err: TemClientError): void {
    sub._onChannelError(err);
    if (sub.state === SubscriptionState.Subscribing) this.sendSubscribe(sub);
  }

  /** The server says the token expired: get a new one and reconnect (resuming) with it. */
  private async refreshExpired(t: Transport): Promise<void> {
    if (!this.settings.getToken) return;
    const gen = this.generation;
    let token: string | null | undefined;
    try {
      token = await this.settings.getToken({ reason: 'expired' });
    } catch {
      return; // the server closes 4001 next, and that path asks again
    }
    if (gen !== this.generation || this.transport !== t || !token || token === this.token) return;
    this.nextToken = token;
    this.teardown();
    this.setState(ClientState.Disconnected);
    this.emit('disconnected', { code: CLOSE_CODES.NORMAL, reason: 'token refreshed', reconnect: true, delay: 0 });
    if (this._state === ClientState.Disconnected) void this.open('reconnect');
  }

  private onClose(t: Transport, code: number, reason: string): void {
    if (this.transport !== t) return;
    this.teardown();
    if (code === CLOSE_CODES.UNAUTHORIZED) void this.onUnauthorized(code, reason);
    else this.scheduleReconnect(code, reason);
  }

  /** 4001: reconnect only if getToken gives a token other than the one just refused. */
  private async onUnauthorized(code: number, reason: string): Promise<void> {
    const refused = this.token;
    const why = reason || 'unauthorized';
    if (!this.settings.getToken) {
      this.toClosed(code, why, new TemClientError('UNAUTHORIZED', why, { fromServer: true }));
      return;
    }
    const gen = ++this.generation;
    this.setState(ClientState.Disconnected);
    let token: string | null | undefined;
    try {
      token = await this.settings.getToken({ reason: 'unauthorized' });
    } catch (err) {
      if (gen !== this.generation) return;
      this.emit('error', new TemClientError('TRANSPORT', 'getToken failed', { cause: err }));
      this.rejectedToken = refused;
      this.scheduleReconnect(code, why);
      return;
    }
    if (gen !== this.generation) return;
    if (!token || token === refused) {
      this.toClosed(code, why, new TemClientError('UNAUTHORIZED', why, { fromServer: true }));
      return;
    }
    this.nextToken = token;
    this.scheduleReconnect(code, why);
  }

  private scheduleReconnect(code: number, reason: string): void {
    const delay = backoffDelay(this.attempt++, this.settings.backoff, this.settings.random);
    this.setState(ClientState.Disconnected);
    this.emit('disconnected', { code, reason, reconnect: true, delay });
    if (this._state !== ClientState.Disconnected || this.reconnectTimer !== undefined) return; // a listener took over
    const gen = this.generation;
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (gen === this.generation && this._state === ClientState.Disconnected) void this.open('reconnect');
    }, delay);
  }

  private toClosed(code: number, reason: string, error?: TemClientError): void {
    this.generation++;
    this.clearReconnect();
    this.teardown();
    this.requests.rejectAll(new TemClientError('CLOSED', 'client closed'));
    this.setState(ClientState.Closed);
    if (error) this.emit('error', error);
    this.emit('disconnected', { code, reason, reconnect: false });
  }

  /** Drops the socket and everything tied to it; subscriptions wait for the next connection. */
  private teardown(): void {
    const t = this.transport;
    this.transport = undefined;
    t?.close(CLOSE_CODES.NORMAL, 'client closed');
    this.heartbeat?.stop();
    this.heartbeat = undefined;
    if (this.connectTimer !== undefined) this.timers.clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.helloSince = undefined;
    this.requests.rejectSent(new TemClientError('DISCONNECTED', 'the connection was lost before a reply came'));
    for (const sub of this.subs.values()) sub._onTransportLost();
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== undefined) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  private wants(channel: string): boolean {
    const sub = this.subs.get(channel);
    return sub !== undefined && sub.state !== SubscriptionState.Unsubscribed;
  }

  private userChannel(): string | undefined {
    return this.session ? `user:${this.session.user_id}` : undefined;
  }

  private releasePositions(sub: Subscription): void {
    const own = this.userChannel();
    for (const ch of Object.keys(this.positions.covered(sub.channel))) {
      if (ch !== own && !covered(this.subs.values(), ch, sub)) this.positions.delete(ch);
    }
  }
}
