/**
 * Request/reply correlation: every request frame gets a fresh numeric `id`, the server's reply
 * carries it back as `ref`. Replies are delivered through synchronous callbacks, not promises,
 * so that protocol replies (HELLO_ACK, SUBSCRIBED) take effect before the next frame of the same
 * read is handled; the public promise API is built on top.
 *
 * A request made while the client is not connected waits (its timer already running) and is
 * sent once the connection is up. A request that was sent when the connection dropped is
 * rejected with DISCONNECTED: it may or may not have run, so retrying is the caller's choice
 * (INGEST with an idempotency_key is safe to retry).
 */
import type { ClientFrame, ClientFrameType, ServerFrame, ServerFrameType } from '../protocol/index.js';
import { serverError, TemClientError } from './errors.js';
import type { TimerHandle, Timers } from './timers.js';

/** The reply each request type expects. */
export const REPLY_OF = {
  HELLO: 'HELLO_ACK',
  SUBSCRIBE: 'SUBSCRIBED',
  UNSUBSCRIBE: 'UNSUBSCRIBED',
  PING: 'PONG',
  PUBLISH: 'PUBLISHED',
  INGEST: 'INGESTED',
  PRESENCE: 'PRESENCE_STATE',
} as const satisfies Partial<Record<ClientFrameType, ServerFrameType>>;
export type RequestType = keyof typeof REPLY_OF;
export type ReplyOf<T extends RequestType> = (typeof REPLY_OF)[T];

export interface ReplyHandlers {
  resolve(frame: ServerFrame): void;
  reject(err: TemClientError): void;
}

interface Pending extends ReplyHandlers {
  frame: ClientFrame;
  sent: boolean;
  timer: TimerHandle;
}

export class RequestTracker {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly timers: Timers) {}

  get size(): number {
    return this.pending.size;
  }

  /** Registers a request and starts its timer; returns the frame with its `id` set. */
  create<T extends ClientFrameType>(type: T, payload: ClientFrame<T>['payload'], timeoutMs: number, handlers: ReplyHandlers): ClientFrame<T> {
    const id = this.nextId++;
    const frame: ClientFrame<T> = payload === undefined ? { type, id } : { type, id, payload };
    const timer = this.timers.setTimeout(() => {
      const entry = this.pending.get(id);
      if (!entry) return;
      this.pending.delete(id);
      // Sent and unanswered, it may still have run (an INGEST stored): say so, as DISCONNECTED does.
      const doubt = entry.sent ? '; it may or may not have run (an INGEST with an idempotency_key is safe to send again)' : '; it was never sent';
      handlers.reject(new TemClientError('TIMEOUT', `no reply to ${type} within ${timeoutMs} ms${doubt}`));
    }, timeoutMs);
    this.pending.set(id, { ...handlers, frame: frame as ClientFrame, sent: false, timer });
    return frame;
  }

  /**
   * An id for a frame that expects no reply (typing): an ERROR the server answers it with then
   * carries it as `ref`, so it is not taken for an unprompted error about the channel.
   */
  stamp(): number {
    return this.nextId++;
  }

  markSent(id: number): void {
    const p = this.pending.get(id);
    if (p) p.sent = true;
  }

  /** Requests still waiting for a connection, oldest first. */
  unsent(): ClientFrame[] {
    return [...this.pending.values()].filter((p) => !p.sent).map((p) => p.frame);
  }

  /** Delivers a reply by its `ref`. Returns false when no request is waiting for it. */
  settle(frame: ServerFrame): boolean {
    if (typeof frame.ref !== 'number') return false;
    const p = this.pending.get(frame.ref);
    if (!p) return false;
    this.pending.delete(frame.ref);
    this.timers.clearTimeout(p.timer);
    if (frame.type === 'ERROR') {
      p.reject(serverError((frame as ServerFrame<'ERROR'>).payload));
    } else {
      p.resolve(frame);
    }
    return true;
  }

  /** Rejects one request (e.g. when it could not be written). */
  fail(id: number, err: TemClientError): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.timers.clearTimeout(p.timer);
    p.reject(err);
  }

  /** Rejects what was sent on a connection that is gone; unsent requests keep waiting. */
  rejectSent(err: TemClientError): void {
    for (const [id, p] of [...this.pending]) if (p.sent) this.fail(id, err);
  }

  rejectAll(err: TemClientError): void {
    for (const id of [...this.pending.keys()]) this.fail(id, err);
  }
}
