/**
 * Public types of the client SDK: options, states and the typed event maps.
 */
import type { PresenceMember, PresenceStatus, StreamPosition } from '../protocol/index.js';
import type { BackoffOptions } from './backoff.js';
import type { TemClientError } from './errors.js';
import type { Timers } from './timers.js';

/**
 * The few members of a WebSocket the client uses: the browser's `WebSocket` and the `ws`
 * package's both fit. Handlers take `never` so that either implementation's event types are
 * accepted; the client narrows what it reads.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: never) => void) | null;
  onmessage: ((ev: never) => void) | null;
  onclose: ((ev: never) => void) | null;
  onerror: ((ev: never) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * Connection states.
 * - `disconnected`: not connected; the initial state, and the state while a reconnect is
 *   scheduled (the `disconnected` event says when).
 * - `connecting`: a socket is opening and the HELLO handshake is in flight.
 * - `connected`: HELLO_ACK received; subscriptions are (re)established.
 * - `closed`: stopped for good until `connect()` is called again: after `disconnect()`, or when
 *   the server refused the credentials (4001) and no new token could be had.
 */
export enum ClientState {
  Disconnected = 'disconnected',
  Connecting = 'connecting',
  Connected = 'connected',
  Closed = 'closed',
}

/** Subscription states: `unsubscribed` → `subscribing` → `subscribed` (back to `subscribing` while reconnecting). */
export enum SubscriptionState {
  Unsubscribed = 'unsubscribed',
  Subscribing = 'subscribing',
  Subscribed = 'subscribed',
}

export interface StateChange<S> {
  oldState: S;
  newState: S;
}

/** Why the token is being asked for. */
export type TokenReason = 'connect' | 'reconnect' | 'unauthorized' | 'expired';

export interface TokenContext {
  reason: TokenReason;
}

/** Returns a token (API key or JWT), or null/undefined when there is none (the client then closes). */
export type GetToken = (ctx: TokenContext) => Promise<string | null | undefined> | string | null | undefined;

export interface TemClientOptions {
  /** An API key (`tem_…`) or a JWT. */
  token?: string;
  /** Called before every connection attempt and when the server says the token is no longer good. */
  getToken?: GetToken;
  /** Send the token as `?token=` on the URL instead of in HELLO (it then shows up in access logs). */
  tokenInQuery?: boolean;
  /** WebSocket implementation; default `globalThis.WebSocket`. In Node pass the `ws` package's export. */
  websocket?: WebSocketConstructor;
  /** Injected time (tests). */
  timers?: Timers;
  /** Injected randomness for the backoff jitter (tests). */
  random?: () => number;
  /** Reconnect backoff (full jitter): minDelay 500 ms, maxDelay 20 s, factor 2 by default. */
  backoff?: Partial<BackoffOptions>;
  /** Request timeout in ms (default 10000). */
  timeout?: number;
  /**
   * The server's frame limit in bytes (its TEM_WS_MAX_FRAME_BYTES, default 65536). A request
   * whose frame would be larger fails at once with TOO_LARGE instead of being sent: the server
   * would close the connection (1009), failing every request in flight on it.
   */
  maxFrameBytes?: number;
  /** Time allowed for the socket to open and HELLO_ACK to arrive, in ms (default 10000). */
  connectTimeout?: number;
  /**
   * How long a probe PING may go unanswered before the connection is declared dead, in ms
   * (default 5000). The probe goes out once nothing has arrived for heartbeat_interval + pingGrace,
   * so a server gone silent is found after about heartbeat_interval + 2 × pingGrace (40 s by default).
   */
  pingGrace?: number;
  /** Least time between two TYPING_START frames while typing goes on, in ms (default 3000). */
  typingInterval?: number;
  /** Typing stops by itself after this much time without startTyping(), in ms (default 5000). */
  typingTimeout?: number;
}

/** The HELLO_ACK information, as the server sent it. */
export interface ConnectedContext {
  session_id: string;
  user_id: string;
  heartbeat_interval: number;
  resumed: boolean;
  recovered: boolean;
}

export interface DisconnectedContext {
  code: number;
  reason: string;
  /** Whether the client will try again by itself. */
  reconnect: boolean;
  /** When it will, in ms. */
  delay?: number;
}

export interface Publication {
  channel: string;
  offset: number;
  epoch: string;
  event: string;
  payload: unknown;
  /** The TEM event this publication delivers, when it comes from an ingested event. */
  event_id?: string;
}

export interface ResyncContext {
  channel: string;
  /** The position the client held, which the server could no longer serve. */
  lost?: StreamPosition;
}

export interface ClientEvents {
  state: StateChange<ClientState>;
  connected: ConnectedContext;
  disconnected: DisconnectedContext;
  error: TemClientError;
  /** Every publication on a channel this client subscribes to, by name or by pattern, and on the automatic `user:{self}`. */
  publication: Publication;
  /**
   * Messages were lost (outside the server's history) on a channel that has no Subscription
   * object — the automatic `user:{self}`: refetch from GET /api/events. A Subscription reports
   * the loss of its own channel on itself (`sub.on('resync')`), not here.
   */
  resync: ResyncContext;
}

export interface SubscribedContext {
  channel: string;
  offset: number;
  epoch: string;
  recovered: boolean;
  /** True when the subscription came back with a resumed session. */
  resumed: boolean;
}

export interface UnsubscribedContext {
  channel: string;
  /** `unsubscribe called`, an error code, or the server's reason when it ended the subscription (`access revoked`). */
  reason: string;
}

export interface PresenceEvent {
  channel: string;
  action: 'join' | 'leave' | 'update';
  user_id: string;
  status?: PresenceStatus | 'offline';
}

export interface TypingEvent {
  channel: string;
  user_id: string;
  is_typing: boolean;
}

export interface SubscriptionEvents {
  state: StateChange<SubscriptionState>;
  subscribed: SubscribedContext;
  unsubscribed: UnsubscribedContext;
  publication: Publication;
  error: TemClientError;
  resync: ResyncContext;
  presence: PresenceEvent;
  typing: TypingEvent;
}

export interface SubscriptionOptions {
  /** Start from a known position (e.g. the one the app's last fetch returned). */
  since?: StreamPosition;
}

export interface IngestRequest {
  type: string;
  payload: Record<string, unknown>;
  channel?: string;
  idempotency_key?: string;
  /** Another owner (needs events.post.event_ingest_on_behalf). */
  user_id?: string;
  /** When it happened, RFC 3339 (default: when it was accepted). */
  occurred_at?: string;
}

export interface IngestResult {
  event_id: string;
  status: string;
  replayed?: boolean;
}

export type { PresenceMember, PresenceStatus, StreamPosition };
