/**
 * Outgoing bytes. A message is serialized and framed once (`encodeFrame`) and the same Buffer is
 * queued on every connection that receives it; each connection's queue is written once per tick
 * as one buffer. A plain `ws.send` per message per socket frames and writes every copy
 * separately, which caps fan-out around 100k messages/s; this path does one write per socket
 * per tick whatever the number of messages.
 *
 * The frames go to the socket underneath the WebSocket. That is safe because they are complete
 * frames (ws writes whole frames too, so nothing interleaves within one) and permessage-deflate is
 * off, so ws never holds frames back in its own queue. Nothing is written once the socket is
 * closing.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/** Queued bytes that make a connection write before the end of the tick. */
const EARLY_FLUSH_BYTES = 64 * 1024;

/** A complete, unmasked, final WebSocket text frame (RFC 6455 §5.2) around `payload`. */
export function encodeFrame(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const len = body.length;
  let header: Buffer;
  if (len < 126) {
    header = Buffer.allocUnsafe(2);
    header[1] = len;
  } else if (len < 65536) {
    header = Buffer.allocUnsafe(4);
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.allocUnsafe(10);
    header[1] = 127;
    header.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    header.writeUInt32BE(len >>> 0, 6);
  }
  header[0] = 0x81; // FIN + text
  return Buffer.concat([header, body], header.length + len);
}

/** Batches writes: connections with queued frames are flushed together on the next tick. */
export class FlushScheduler {
  private readonly dirty = new Set<OutboundQueue>();
  private scheduled = false;

  mark(queue: OutboundQueue): void {
    this.dirty.add(queue);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flushAll());
    }
  }

  forget(queue: OutboundQueue): void {
    this.dirty.delete(queue);
  }

  flushAll(): void {
    this.scheduled = false;
    const queues = [...this.dirty];
    this.dirty.clear();
    for (const q of queues) q.flush();
  }
}

export interface OutboundOptions {
  /** Bytes the connection may have in flight (ws buffer + socket buffer + this queue). */
  limitBytes: number;
  /** Called once when the limit is passed; the queue is dropped and accepts nothing more. */
  onOverflow: () => void;
  /** Counts frames sent and dropped. */
  onSent?: (frames: number) => void;
  onDropped?: (frames: number) => void;
}

export class OutboundQueue {
  private frames: Buffer[] = [];
  private bytes = 0;
  private closed = false;
  private readonly socket: Duplex;

  constructor(
    private readonly ws: WebSocket,
    private readonly scheduler: FlushScheduler,
    private readonly options: OutboundOptions,
  ) {
    this.socket = (ws as unknown as { _socket: Duplex })._socket;
  }

  /** Bytes queued here and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** Queues one pre-framed message. Returns false when it was dropped. */
  push(frame: Buffer): boolean {
    if (this.closed) {
      this.options.onDropped?.(1);
      return false;
    }
    this.frames.push(frame);
    this.bytes += frame.length;
    // A burst within one tick goes to the socket early: the kernel takes what a reading client
    // can absorb, so only bytes the client really leaves unread count against its limit.
    if (this.bytes >= EARLY_FLUSH_BYTES) this.flush();
    if (this.bytes + this.ws.bufferedAmount > this.options.limitBytes) {
      this.overflow();
      return false;
    }
    if (this.frames.length === 1) this.scheduler.mark(this);
    return true;
  }

  /** Writes what is queued now, as one buffer. */
  flush(): void {
    if (this.frames.length === 0) return;
    const frames = this.frames;
    const bytes = this.bytes;
    this.frames = [];
    this.bytes = 0;
    if (this.closed || this.ws.readyState !== this.ws.OPEN || this.socket.destroyed) {
      this.options.onDropped?.(frames.length);
      return;
    }
    this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes));
    this.options.onSent?.(frames.length);
  }

  /** Stops accepting frames; what is queued is dropped (the connection is going away). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.scheduler.forget(this);
    if (this.frames.length) this.options.onDropped?.(this.frames.length);
    this.frames = [];
    this.bytes = 0;
  }

  private overflow(): void {
    this.close();
    this.options.onOverflow();
  }
}
