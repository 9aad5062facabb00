/**
 * WebSocket frames (contract §4). Client → server: `{type, id?, payload?}`; a reply carries
 * `ref` = the request's `id`. Server → client unprompted: EVENT and ERROR.
 * No Node imports: shared with the browser SDK.
 */
import type { WsErrorCode } from './codes.js';

export const CHANNEL_RE = /^[A-Za-z0-9_.@=-]+(:[A-Za-z0-9_.@=*-]+)+$/;
export const CHANNEL_MAX = 255;

export type PresenceStatus = 'online' | 'idle' | 'dnd';
export const PRESENCE_STATUSES: readonly PresenceStatus[] = ['online', 'idle', 'dnd'];

export interface StreamPosition {
  offset: number;
  epoch: string;
}

export interface ClientFrameMap {
  HELLO: { token?: string; session_id?: string; since?: Record<string, StreamPosition> };
  SUBSCRIBE: { channels: string[]; since?: Record<string, StreamPosition> };
  UNSUBSCRIBE: { channels: string[] };
  PING: Record<string, never> | undefined;
  PUBLISH: { channel: string; event: string; payload: unknown };
  INGEST: { type: string; payload: Record<string, unknown>; channel?: string; idempotency_key?: string; user_id?: string };
  TYPING_START: { channel: string };
  TYPING_STOP: { channel: string };
  SET_PRESENCE: { status: PresenceStatus };
  PRESENCE: { channel: string };
}
export type ClientFrameType = keyof ClientFrameMap;
export const CLIENT_FRAME_TYPES = [
  'HELLO',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'PING',
  'PUBLISH',
  'INGEST',
  'TYPING_START',
  'TYPING_STOP',
  'SET_PRESENCE',
  'PRESENCE',
] as const satisfies readonly ClientFrameType[];

export interface ClientFrame<T extends ClientFrameType = ClientFrameType> {
  type: T;
  id?: string | number;
  payload?: ClientFrameMap[T];
}

export interface PresenceMember {
  user_id: string;
  status: PresenceStatus | 'offline';
}

export interface ServerFrameMap {
  HELLO_ACK: {
    session_id: string;
    user_id: string;
    heartbeat_interval: number;
    resumed: boolean;
    recovered: boolean;
    /** Channels restored by a resume, with their positions. */
    channels?: Record<string, StreamPosition & { recovered: boolean }>;
  };
  SUBSCRIBED: { channel: string; offset: number; epoch: string; recovered: boolean };
  /** The reply to UNSUBSCRIBE; unprompted (no `ref`, with `reason`) when the server ended them. */
  UNSUBSCRIBED: { channels: string[]; reason?: string };
  PONG: { timestamp: number };
  PUBLISHED: { offset: number; epoch: string };
  INGESTED: { event_id: string; status: string; replayed?: boolean };
  PRESENCE_STATE: { channel: string; members: PresenceMember[] };
  EVENT: { channel: string; offset: number; epoch: string; event: string; payload: unknown };
  /** `channel` when the error is about one channel (a refused SUBSCRIBE, a channel that could not be restored). */
  /** `reason`: the precise error code when `code` is a broader one (see gateway/errors.ts). */
  ERROR: { code: WsErrorCode; message: string; channel?: string; reason?: string };
}
export type ServerFrameType = keyof ServerFrameMap;

export interface ServerFrame<T extends ServerFrameType = ServerFrameType> {
  type: T;
  ref?: string | number;
  payload: ServerFrameMap[T];
}

/** Whether a string is a valid channel name or `prefix:*` pattern. */
export function isValidChannel(name: string): boolean {
  if (name.length === 0 || name.length > CHANNEL_MAX || !CHANNEL_RE.test(name)) return false;
  const star = name.indexOf('*');
  // `*` only as the whole last segment: `server:1:*`.
  return star === -1 || (star === name.length - 1 && name.endsWith(':*'));
}

/**
 * Event names the gateway emits itself (typing and presence notices, status updates): neither a
 * client PUBLISH nor an event delivered to a channel may carry one and pass for a real notice.
 */
export const RESERVED_EVENT_NAMES = /^(presence\.|typing$|event\.update$)/;

/** Publication event names (`POST /api/publish`, `PUBLISH`): like event types, plus upper case and `:`. */
export const EVENT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
/** What a 400 or an ERROR says an event name must be, instead of the regular expression. */
export const EVENT_NAME_DESCRIPTION = 'an event name: 1–128 of A-Z, a-z, 0-9, "_", ".", ":" and "-", starting with a letter or digit (order.created)';

export function isPattern(name: string): boolean {
  return name.endsWith(':*');
}

/** Whether a string names one channel that can be published to: a valid name, not a pattern. */
export function isChannelName(name: string): boolean {
  return isValidChannel(name) && !isPattern(name);
}

/** Whether `channel` falls under `pattern` (`a:*` matches `a:b` and `a:b:c`). */
export function matchesPattern(pattern: string, channel: string): boolean {
  if (!isPattern(pattern)) return pattern === channel;
  return channel.startsWith(pattern.slice(0, -1));
}
