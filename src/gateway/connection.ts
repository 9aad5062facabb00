/**
 * One WebSocket connection: its state machine (connecting → authenticated → closed, each
 * transition logged with connection_id, user_id, node and, at the end, the close code), its
 * outgoing queue, its frame rate and the order in which its frames are handled.
 *
 * Frames are handled one after another (a SUBSCRIBE is done before the PUBLISH that follows it),
 * except PING, answered at once so a slow request cannot make a live client look dead.
 */
import type { WebSocket, RawData } from 'ws';
import type { AuthContext } from '../auth/types.js';
import { newId } from '../core/ids.js';
import { CLOSE_CODES, type ClientFrame, type PresenceStatus, type ServerFrameMap, type ServerFrameType, type StreamPosition, type WsErrorCode } from '../protocol/index.js';
import type { GatewayContext } from './context.js';
import { wsErrorOf } from './errors.js';
import type { Subscriber } from './fanout.js';
import { parseClientFrame } from './frames.js';
import { encodeFrame, OutboundQueue } from './outbound.js';
import type { ReleaseSlot } from './pending.js';
import { MessageRate } from './rate.js';
import type { Publication } from '../bus/types.js';

/** Channels per connection whose first publication through a pattern is kept (patternFrom). */
const MAX_PATTERN_FROM = 1000;
/** Channels per connection whose hand-back from a left subscription is kept (handedBack). */
export const MAX_HANDED_BACK = 1000;

export type ConnectionState = 'connecting' | 'authenticated' | 'closed';

export type FrameDispatcher = (conn: Connection, frame: ClientFrame) => Promise<void>;

export interface ConnectionHooks {
  dispatch: FrameDispatcher;
  /** Called once, when the connection reaches `closed` (whoever closed it). */
  onClosed: (conn: Connection, code: number) => void;
}

/** Close reasons are limited to 123 bytes by RFC 6455. */
function closeReason(reason: string): string {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}

export class Connection implements Subscriber {
  readonly id = newId('conn');
  state: ConnectionState = 'connecting';
  auth: AuthContext | null = null;
  /** The credential, kept to check it again on revocation. */
  token: string | null = null;
  sessionId: string | null = null;
  /** Closed for a full send buffer: frames the node counted as sent never reached the client. */
  overflowed = false;
  status: PresenceStatus = 'online';
  /** Subscribed channels and patterns (including ones still being set up). */
  readonly channels = new Set<string>();
  /** Those of `channels` in place (committed): the ones fan-out counts as delivering. */
  readonly active = new Set<string>();
  /** Position the client was last told per channel (SUBSCRIBED or the last replayed). */
  readonly positions = new Map<string, StreamPosition>();
  /** Per channel: every publication after this position was sent to the client (replayed or live). */
  readonly sentAfter = new Map<string, StreamPosition>();
  /**
   * Per channel the connection receives through a pattern and not by name: the first publication
   * a pattern sent it (in the current epoch). From there on it was sent every one, through the
   * pattern or another of its subscriptions, so a SUBSCRIBE with `since` to the channel need not
   * replay them again (Subscriptions.prepare). Bounded; a channel past the bound is not tracked.
   */
  readonly patternFrom = new Map<string, StreamPosition>();
  /** What subscriptions left a moment ago sent it, for its patterns to skip (Subscriber.handedBack). */
  readonly handedBack = new Map<string, StreamPosition>();
  /** Last time anything (a frame or a pong) came from the client. */
  lastSeen: number;
  closeCode: number | null = null;
  private readonly out: OutboundQueue;
  private readonly rate: MessageRate;
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private helloTimer: NodeJS.Timeout | null = null;
  /** When reading was paused for backpressure (ms), or null. */
  private pausedAt: number | null = null;
  /** The pending-per-address slot held while waiting for HELLO. */
  private pendingSlot: ReleaseSlot | null = null;

  constructor(
    private readonly ctx: GatewayContext,
    readonly ws: WebSocket,
    private readonly hooks: ConnectionHooks,
    meta: { remote?: string; path: string },
  ) {
    this.lastSeen = ctx.clock.nowMs();
    this.rate = new MessageRate(ctx.config.wsMessageRate);
    this.out = new OutboundQueue(ws, ctx.scheduler, {
      limitBytes: ctx.config.wsSendBufferBytes,
      onOverflow: () => {
        this.overflowed = true;
        ctx.metrics.wsSlowConsumerCloses.inc();
        this.close(CLOSE_CODES.TRY_AGAIN_LATER, 'slow consumer: send buffer full');
      },
      onSent: (n) => ctx.metrics.wsMessagesOut.inc(n),
      onDropped: (n) => ctx.metrics.wsDropped.inc(n),
    });
    // Only frames the client sends count against the heartbeat timeout (contract: nothing from
    // the client for 2 × heartbeat_interval → 4008). WebSocket pongs do not: every client library
    // answers pings by itself, so a client that never sends PING would never time out.
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('close', (code: number) => this.onSocketClosed(code));
    ws.on('error', (err: Error & { code?: string }) => {
      // ws reports an oversized frame as an error and then closes 1009 itself.
      this.logEvent('debug', { err: err.message, code: err.code }, 'websocket error');
    });
    ctx.metrics.wsConnections.inc();
    this.logEvent('info', { state: 'connecting', remote: meta.remote, path: meta.path }, 'ws connecting');
  }

  /**
   * One log line with the connection's bindings. No pino child logger per connection: two of
   * them (before and after authentication) were a measurable share of an idle connection's memory.
   */
  logEvent(level: 'debug' | 'info' | 'error', fields: Record<string, unknown>, msg: string): void {
    const logger = this.ctx.logger;
    if (!logger.isLevelEnabled(level)) return;
    // `node` and `role` come with the process logger's own bindings.
    logger[level]({ connection_id: this.id, ...(this.auth ? { user_id: this.auth.userId } : {}), ...fields }, msg);
  }

  get userId(): string {
    return this.auth?.userId ?? '';
  }

  get isOpen(): boolean {
    return this.state !== 'closed';
  }

  /**
   * Waits for HELLO; closes 4001 when it does not come in time. `slot` is released when the wait
   * ends, however it ends (authenticated or closed).
   */
  expectHello(timeoutMs: number, slot?: ReleaseSlot): void {
    this.pendingSlot = slot ?? null;
    this.helloTimer = setTimeout(() => {
      if (this.state === 'connecting') this.close(CLOSE_CODES.UNAUTHORIZED, 'authentication timeout: send HELLO {token}');
    }, timeoutMs);
    this.helloTimer.unref?.();
  }

  /** The one way out of waiting for HELLO; safe to call more than once. */
  private stopWaitingForHello(): void {
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
    this.pendingSlot?.();
    this.pendingSlot = null;
  }

  /** connecting → authenticated. */
  authenticated(auth: AuthContext, token: string, sessionId: string): void {
    this.stopWaitingForHello();
    this.auth = auth;
    this.token = token;
    this.sessionId = sessionId;
    if (this.state === 'connecting') {
      this.state = 'authenticated';
      this.logEvent('info', { state: 'authenticated', principal_id: auth.principalId, via: auth.via, session_id: sessionId }, 'ws authenticated');
    }
  }

  // ── sending ───────────────────────────────────────────────────────────────
  deliveredViaPattern(pub: Publication): void {
    const from = this.patternFrom.get(pub.channel);
    if (from && from.epoch === pub.epoch) return;
    if (!from && this.patternFrom.size >= MAX_PATTERN_FROM) return;
    this.patternFrom.set(pub.channel, { offset: pub.offset, epoch: pub.epoch });
  }

  deliver(frame: Buffer): void {
    this.out.push(frame);
  }

  send<T extends ServerFrameType>(type: T, payload: ServerFrameMap[T], ref?: string | number): void {
    if (this.state === 'closed') return;
    const frame: Record<string, unknown> = { type };
    if (ref !== undefined) frame.ref = ref;
    frame.payload = payload;
    this.out.push(encodeFrame(JSON.stringify(frame)));
  }

  /** ERROR {code, message} (and `channel` when the error is about one channel). */
  sendError(code: WsErrorCode, message: string, ref?: string | number, channel?: string, reason?: string): void {
    const payload: ServerFrameMap['ERROR'] = { code, message };
    if (channel !== undefined) payload.channel = channel;
    if (reason !== undefined) payload.reason = reason;
    this.send('ERROR', payload, ref);
  }

  /** Sends what is queued now instead of at the end of the tick. */
  flush(): void {
    this.out.flush();
  }

  // ── closing ───────────────────────────────────────────────────────────────
  /** → closed: sends what is queued, then the close frame; destroys the socket if it lingers. */
  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.out.flush();
    this.out.close();
    // A socket paused for backpressure must be read again to see the client's close frame.
    if (this.pausedAt !== null) {
      this.pausedAt = null;
      this.ws.resume();
    }
    try {
      this.ws.close(code, closeReason(reason));
    } catch {
      this.ws.terminate();
    }
    const timer = setTimeout(() => this.ws.terminate(), this.ctx.tuning.closeGraceMs);
    timer.unref?.();
    this.ws.once('close', () => clearTimeout(timer));
    this.finish(code, reason, 'server');
  }

  private onSocketClosed(code: number): void {
    if (this.state === 'closed') return;
    this.out.close();
    this.finish(code, 'closed by client', 'client');
  }

  private finish(code: number, reason: string, by: 'server' | 'client'): void {
    this.stopWaitingForHello();
    this.state = 'closed';
    this.closeCode = code;
    this.ctx.metrics.wsConnections.dec();
    this.logEvent('info', { state: 'closed', close_code: code, reason, by }, 'ws closed');
    this.hooks.onClosed(this, code);
  }

  // ── receiving ─────────────────────────────────────────────────────────────
  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.state === 'closed') return;
    const now = this.ctx.clock.nowMs();
    this.lastSeen = now;
    this.ctx.metrics.wsMessagesIn.inc();
    const verdict = this.rate.check(now);
    if (verdict === 'abuse') {
      this.close(CLOSE_CODES.POLICY, 'message rate limit exceeded');
      return;
    }
    const parsed = parseClientFrame(data as Buffer | ArrayBuffer | Buffer[], isBinary);
    if (verdict === 'limited') {
      this.sendError('RATE_LIMITED', `more than ${this.ctx.config.wsMessageRate} frames per second`, parsed.ok ? parsed.frame.id : parsed.ref);
      return;
    }
    if (!parsed.ok) {
      this.sendError(parsed.code, parsed.message, parsed.ref);
      return;
    }
    const frame = parsed.frame;
    if (frame.type === 'PING') {
      this.send('PONG', { timestamp: this.ctx.clock.nowMs() }, frame.id);
      return;
    }
    this.inFlight++;
    // Backpressure, not errors: with this many frames waiting behind a slow operation (INGEST
    // commits, history reads), the socket stops being read until half of them are done. The
    // client's frames wait in TCP buffers, and its own writes slow down, as with any server.
    if (this.inFlight >= this.ctx.tuning.maxPendingFrames && this.pausedAt === null) {
      this.pausedAt = now;
      this.ws.pause();
    }
    this.runExclusive(() => this.hooks.dispatch(this, frame), { label: frame.type, ref: frame.id, counted: true });
  }

  /** Whether reading is paused for backpressure: the client is busy, not silent. */
  get paused(): boolean {
    return this.pausedAt !== null;
  }

  /**
   * Reads the socket again. Frames the client sent while it was paused arrive at once: they count
   * against the rate as if read when sent, and the connection was alive all along (heartbeat).
   */
  private resumeReading(): void {
    const now = this.ctx.clock.nowMs();
    this.rate.resumeAfter(now, now - (this.pausedAt ?? now));
    this.lastSeen = now;
    this.pausedAt = null;
    this.ws.resume();
  }

  /** Runs `task` after the connection's earlier frames are handled (and before later ones). */
  runExclusive(task: () => Promise<void>, opts: { label?: string; ref?: string | number; counted?: boolean } = {}): void {
    const { label = 'task', ref, counted = false } = opts;
    this.chain = this.chain
      .then(() => (this.state === 'closed' ? undefined : task()))
      .catch((err: unknown) => {
        const { code, message, reason } = wsErrorOf(err);
        if (code === 'INTERNAL') this.logEvent('error', { err, frame_type: label }, 'frame handler failed');
        this.sendError(code, message, ref, undefined, reason);
      })
      .finally(() => {
        if (!counted) return;
        this.inFlight--;
        if (this.pausedAt !== null && this.inFlight <= this.ctx.tuning.maxPendingFrames / 2 && this.state !== 'closed') this.resumeReading();
      });
  }
}
