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
import { CLOSE_CODES, PRESENCE_STATUSES } from '../protocol/index.js';
import { backoffDelay, normalizeBackoff, STABLE_MS, type BackoffOptions } from './backoff.js';
import { Credentials, type TokenOutcome } from './credentials.js';
import { Emitter } from './emitter.js';
import { serverError, TemClientError } from './errors.js';
import { utf8Length } from './utf8.js';
import { Heartbeat } from './heartbeat.js';
import { REPLY_OF, RequestTracker, type ReplyOf, type RequestType } from './requests.js';
import { Registry } from './registry.js';
import type { Subscription } from './subscription.js';
import { defaultTimers, type TimerHandle, type Timers } from './timers.js';
import { Transport } from './transport.js';
import { waitFor } from './wait.js';
import {
  ClientState,
  type ClientEvents,
  type ConnectedContext,
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
  tokenInQuery: boolean;
  websocket: WebSocketConstructor;
  random: () => number;
  backoff: BackoffOptions;
  timeout: number;
  maxFrameBytes: number;
  connectTimeout: number;
  pingGrace: number;
}


/** What a request frame adds around its payload's JSON, at most. */
const FRAME_OVERHEAD_BYTES = 64;

export class TemClient extends Emitter<ClientEvents> {
  readonly url: string;
  private readonly settings: Settings;
  private readonly timers: Timers;
  private readonly requests: RequestTracker;
  private readonly registry: Registry;
  private _state = ClientState.Disconnected;
  private transport: Transport | undefined;
  private heartbeat: Heartbeat | undefined;
  private session: ConnectedContext | undefined;
  private attempt = 0;
  /** When the current connection was greeted (HELLO_ACK); undefined while not connected. */
  private connectedAt: number | undefined;
  /** Bumped by every attempt and by disconnect(): async work from an older one is dropped. */
  private generation = 0;
  private reconnectTimer: TimerHandle | undefined;
  private connectTimer: TimerHandle | undefined;
  private readonly credentials: Credentials;
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
      tokenInQuery: options.tokenInQuery ?? false,
      websocket,
      random: options.random ?? Math.random,
      backoff: normalizeBackoff(options.backoff),
      timeout: options.timeout ?? 10_000,
      maxFrameBytes: options.maxFrameBytes ?? 65_536,
      connectTimeout: options.connectTimeout ?? 10_000,
      pingGrace: options.pingGrace ?? 5_000,
    };
    this.credentials = new Credentials(options.token, options.getToken);
    this.requests = new RequestTracker(this.timers);
    this.registry = new Registry({
      timers: this.timers,
      timeout: this.settings.timeout,
      typingInterval: options.typingInterval ?? 3_000,
      typingTimeout: options.typingTimeout ?? 5_000,
      isConnected: () => this._state === ClientState.Connected,
      isClosed: () => this._state === ClientState.Closed,
      userChannel: () => this.userChannel(),
      prepare: (type, payload, handlers) => {
        const frame = this.requests.create(type, payload, this.settings.timeout, handlers);
        return { id: frame.id as number, send: () => this.write(frame, false) };
      },
      request: (type, payload) => this.request(type, payload),
      notify: (type, payload) => {
        if (this._state === ClientState.Connected) this.transport?.send({ type, id: this.requests.stamp(), payload });
      },
      retryDelay: (n) => backoffDelay(n, this.settings.backoff, this.settings.random),
      resync: (ctx) => this.emit('resync', ctx),
      publication: (pub) => this.emit('publication', pub),
    });
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
      this.credentials.clearRefused();
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
    this.credentials.set(token);
  }

  /** Resolves once connected; rejects on `closed` or after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void> {
    if (this._state === ClientState.Connected) return Promise.resolve();
    if (this._state === ClientState.Closed) return Promise.reject(new TemClientError('CLOSED', 'client is closed'));
    return waitFor(this.timers, timeoutMs, 'not connected', (done) =>
      this.on('state', ({ newState }) => {
        if (newState === ClientState.Connected) done();
        else if (newState === ClientState.Closed) done(new TemClientError('CLOSED', 'client closed before connecting'));
      }),
    );
  }

  /** A new subscription object (not yet subscribed). Throws if one exists for the channel. */
  newSubscription(channel: string, options?: SubscriptionOptions): Subscription {
    return this.registry.create(channel, options);
  }

  /** The channel's subscription (created if needed), subscribing. */
  subscribe(channel: string, options?: SubscriptionOptions): Subscription {
    const sub = this.registry.get(channel) ?? this.registry.create(channel, options);
    sub.subscribe();
    return sub;
  }

  getSubscription(channel: string): Subscription | undefined {
    return this.registry.get(channel);
  }

  subscriptions(): Subscription[] {
    return this.registry.list();
  }

  /** Unsubscribes and forgets the subscription. */
  removeSubscription(sub: Subscription): void {
    this.registry.remove(sub);
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
    // The same status again changes nothing: no frame (an app calling this on every input event
    // would otherwise run into the server's frame rate limit).
    if (status === (this.status ?? 'online')) return;
    this.status = status;
    if (this._state === ClientState.Connected) this.transport?.send({ type: 'SET_PRESENCE', payload: { status } });
  }

  private request<T extends RequestType>(type: T, payload: ClientFrameMap[T]): Promise<ServerFrameMap[ReplyOf<T>]> {
    if (this._state === ClientState.Closed) return Promise.reject(new TemClientError('CLOSED', 'client is closed; call connect() first'));
    // A payload JSON cannot carry (a BigInt, a cycle) fails now, not as a TIMEOUT of a frame
    // that could never be written.
    let json: string;
    try {
      json = JSON.stringify(payload);
    } catch (err) {
      return Promise.reject(new TemClientError('INVALID_ARGUMENT', `${type} payload cannot be sent as JSON: ${(err as Error).message}`, { cause: err }));
    }
    // The frame around the payload (`{"type":…,"id":…,"payload":…}`) adds well under 64 bytes.
    const bytes = utf8Length(json) + FRAME_OVERHEAD_BYTES;
    if (bytes > this.settings.maxFrameBytes) {
      return Promise.reject(new TemClientError('TOO_LARGE', `${type} frame of about ${bytes} bytes is over the server's frame limit of ${this.settings.maxFrameBytes} (maxFrameBytes); send it over HTTP`));
    }
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

  private async open(reason: TokenReason): Promise<void> {
    const gen = ++this.generation;
    this.setState(ClientState.Connecting);
    let outcome: TokenOutcome;
    try {
      outcome = await this.withinConnectTimeout(this.credentials.forAttempt(reason));
    } catch (err) {
      if (gen !== this.generation) return;
      this.emit('error', new TemClientError('TRANSPORT', 'getToken failed', { cause: err }));
      this.scheduleReconnect(ABNORMAL, 'getToken failed');
      return;
    }
    if (gen !== this.generation) return;
    if (!outcome.ok) {
      this.toClosed(CLOSE_CODES.UNAUTHORIZED, outcome.reason, new TemClientError('UNAUTHORIZED', outcome.reason));
      return;
    }
    const token = outcome.token;
    let url = this.url;
    // Not when a session is to be resumed: authenticated at the upgrade, the connection would
    // get live messages on user:{self} before the HELLO that replays the older ones it missed.
    if (this.queryToken() && token) url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
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
    const token = this.credentials.value;
    const inQuery = this.queryToken() && token !== undefined;
    if (inQuery) {
      // Authenticated at the upgrade: the server greets first, nothing to resume.
      this.awaitingGreeting = true;
      return;
    }
    const payload: ClientFrameMap['HELLO'] = {};
    if (token && !inQuery) payload.token = token;
    if (this.session) {
      payload.session_id = this.session.session_id;
      this.helloSince = this.registry.resumeSince();
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

  /** Whether this connection carries the token in its URL: only one with no session to resume. */
  private queryToken(): boolean {
    return this.settings.tokenInQuery && !this.session;
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
    // The backoff starts over only once this connection has lasted (scheduleReconnect): a
    // server that greets and then closes at once (1013: overloaded) must still be backed off.
    this.connectedAt = this.timers.now();
    this.credentials.clearRefused();
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
    this.registry.restore(ack, sentSince);
    for (const frame of this.requests.unsent()) this.write(frame, true);
    if (this.status) t.send({ type: 'SET_PRESENCE', payload: { status: this.status } });
  }

  private onFrame(t: Transport, frame: ServerFrame): void {
    if (this.transport !== t) return;
    this.heartbeat?.received();
    if (frame.ref !== undefined && this.requests.settle(frame)) return;
    switch (frame.type) {
      case 'EVENT':
        this.registry.onEvent((frame as ServerFrame<'EVENT'>).payload);
        break;
      case 'HELLO_ACK':
        // The greeting after an upgrade that carried the token. With a session to resume, the
        // reply to our HELLO (with `ref`) is the one that counts.
        if (this.awaitingGreeting) this.onHelloAck(t, (frame as ServerFrame<'HELLO_ACK'>).payload);
        break;
      case 'SUBSCRIBED':
        this.registry.onLateSubscribed((frame as ServerFrame<'SUBSCRIBED'>).payload);
        break;
      case 'UNSUBSCRIBED': {
        // With a ref it answers an UNSUBSCRIBE of ours that timed out, not the server ending
        // subscriptions: a subscription made again since must not be ended by it.
        if (frame.ref !== undefined) break;
        const { channels, reason } = (frame as ServerFrame<'UNSUBSCRIBED'>).payload;
        this.registry.onUnsubscribed(channels ?? [], typeof reason === 'string' ? reason : undefined);
        break;
      }
      case 'ERROR': {
        const payload = (frame as ServerFrame<'ERROR'>).payload as ServerFrameMap['ERROR'] & { channel?: unknown };
        const { code, channel } = payload;
        const err = serverError(payload);
        // With a ref it answers a frame of ours: a request that already timed out, or a typing
        // notice. It says nothing about the subscription to its channel, which must not end.
        if (frame.ref !== undefined) this.emit('error', err);
        else if (!this.registry.onChannelError(channel, err)) this.emit('error', err);
        if (code === 'UNAUTHORIZED') void this.refreshExpired(t);
        break;
      }
      default:
        break;
    }
  }

  /** The server says the token expired: get a new one and reconnect (resuming) with it. */
  private async refreshExpired(t: Transport): Promise<void> {
    const gen = this.generation;
    // On failure the server closes 4001 next, and that path asks again.
    const fresh = await this.credentials.replaceExpired().catch(() => false);
    if (!fresh || gen !== this.generation || this.transport !== t) return;
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
    const why = reason || 'unauthorized';
    const refused = () => this.toClosed(code, why, new TemClientError('UNAUTHORIZED', why, { fromServer: true }));
    if (!this.credentials.refreshable) {
      refused();
      return;
    }
    const gen = ++this.generation;
    this.setState(ClientState.Disconnected);
    let fresh: boolean;
    try {
      fresh = await this.withinConnectTimeout(this.credentials.replaceRefused());
    } catch (err) {
      if (gen !== this.generation) return;
      // The next attempt asks again (and stops if it gets the refused token back).
      this.emit('error', new TemClientError('TRANSPORT', 'getToken failed', { cause: err }));
      this.scheduleReconnect(code, why);
      return;
    }
    if (gen !== this.generation) return;
    if (fresh) this.scheduleReconnect(code, why);
    else refused();
  }

  /**
   * A getToken that never settles would leave the client connecting (or disconnected) for good,
   * with nothing scheduled: it gets the connect timeout, and then counts as a failed attempt.
   */
  private withinConnectTimeout<T>(pending: Promise<T>): Promise<T> {
    // A static token is at hand: nothing to wait for.
    if (!this.credentials.refreshable) return pending;
    const ms = this.settings.connectTimeout;
    return new Promise<T>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => reject(new Error(`getToken did not answer within ${ms} ms`)), ms);
      pending.then(
        (value) => {
          this.timers.clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          this.timers.clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  private scheduleReconnect(code: number, reason: string): void {
    if (this.connectedAt !== undefined && this.timers.now() - this.connectedAt >= STABLE_MS) this.attempt = 0;
    this.connectedAt = undefined;
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
    this.registry.clientClosed();
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
    this.registry.transportLost();
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== undefined) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  private userChannel(): string | undefined {
    return this.session ? `user:${this.session.user_id}` : undefined;
  }
}
