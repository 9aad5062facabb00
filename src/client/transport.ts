/**
 * One WebSocket and nothing else: JSON frames out, parsed frames in, one close notification.
 * Closing from our side detaches the handlers first and reports the close at once, without
 * waiting for the closing handshake, which never completes on a dead connection.
 */
import type { ClientFrame, ServerFrame } from '../protocol/index.js';
import type { WebSocketConstructor, WebSocketLike } from './types.js';

const OPEN = 1;

export interface TransportHandlers {
  onOpen(): void;
  onFrame(frame: ServerFrame): void;
  /** A frame that was not JSON or not a frame. */
  onBadFrame(raw: string): void;
  onClose(code: number, reason: string): void;
}

let decoder: TextDecoder | undefined;

function toText(data: unknown): string | undefined {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    decoder ??= new TextDecoder();
    return decoder.decode(data as ArrayBuffer | ArrayBufferView);
  }
  return undefined;
}

export function parseFrame(text: string): ServerFrame | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object' || typeof (value as { type?: unknown }).type !== 'string') return undefined;
  const frame = value as ServerFrame;
  if (frame.payload === undefined || frame.payload === null) (frame as { payload: unknown }).payload = {};
  return frame;
}

export class Transport {
  private readonly ws: WebSocketLike;
  private done = false;

  /** Throws what the WebSocket constructor throws (e.g. a malformed URL). */
  constructor(Ctor: WebSocketConstructor, url: string, private readonly handlers: TransportHandlers) {
    this.ws = new Ctor(url);
    this.ws.onopen = () => {
      if (!this.done) this.handlers.onOpen();
    };
    this.ws.onmessage = (ev: { data: unknown }) => {
      if (this.done) return;
      const text = toText(ev.data);
      const frame = text === undefined ? undefined : parseFrame(text);
      if (frame) this.handlers.onFrame(frame);
      else this.handlers.onBadFrame(text ?? '');
    };
    // The close event follows an error event; it alone carries the code.
    this.ws.onerror = () => undefined;
    this.ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.done) return;
      this.finish();
      this.handlers.onClose(ev.code ?? 1006, ev.reason ?? '');
    };
  }

  get isOpen(): boolean {
    return !this.done && this.ws.readyState === OPEN;
  }

  /** Writes a frame; false when the socket is not open (nothing was written). */
  send(frame: ClientFrame): boolean {
    if (!this.isOpen) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes from our side; handlers are not called afterwards. */
  close(code = 1000, reason = ''): void {
    if (this.done) return;
    this.finish();
    try {
      this.ws.close(code, reason);
    } catch {
      /* already closing, or a code the implementation refuses: the socket is abandoned either way */
    }
  }

  private finish(): void {
    this.done = true;
    this.ws.onopen = null;
    this.ws.onmessage = null;
    this.ws.onclose = null;
    // Keep a no-op error handler: the `ws` package throws on an unhandled 'error' event.
    this.ws.onerror = () => undefined;
  }
}
