/**
 * telemetry-event-mesh/client: the TypeScript client SDK for browsers and Node.
 *
 *   import { TemClient } from 'telemetry-event-mesh/client';
 *   const client = new TemClient('wss://tem.example.com/ws', { getToken: fetchToken });
 *   client.on('publication', (p) => console.log(p.channel, p.event, p.payload));
 *   const sub = client.subscribe('live:42:chat');
 *   sub.on('resync', () => refetch());
 *   client.connect();
 *
 * In Node pass a WebSocket implementation: `new TemClient(url, { websocket: WebSocket })` with
 * `import WebSocket from 'ws'`.
 */
export { TemClient } from './client.js';
export { Subscription } from './subscription.js';
export { TemClientError, isTemClientError, type ClientErrorCode, type LocalErrorCode } from './errors.js';
export { Emitter } from './emitter.js';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { defaultTimers, type Timers, type TimerHandle } from './timers.js';
export {
  ClientState,
  SubscriptionState,
  type ClientEvents,
  type ConnectedContext,
  type DisconnectedContext,
  type GetToken,
  type IngestRequest,
  type IngestResult,
  type PresenceEvent,
  type PresenceMember,
  type PresenceStatus,
  type Publication,
  type ResyncContext,
  type StateChange,
  type StreamPosition,
  type SubscribedContext,
  type SubscriptionEvents,
  type SubscriptionOptions,
  type TemClientOptions,
  type TokenContext,
  type TokenReason,
  type TypingEvent,
  type UnsubscribedContext,
  type WebSocketConstructor,
  type WebSocketLike,
} from './types.js';
export { CLOSE_CODES, WS_ERROR_CODES, type WsErrorCode } from '../protocol/index.js';
