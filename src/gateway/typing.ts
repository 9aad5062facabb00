/**
 * Typing notices: TYPING_START / TYPING_STOP become an ephemeral `typing {user_id, is_typing}`
 * event on the channel, which fan-out gives to everyone there except the typist's connections.
 * A start with no stop ends by itself after the timeout (contract: 10 s), and so does typing on a
 * channel the connection leaves.
 *
 * Two sides. The typist's node (TypingTracker) owns the timeout; repeated starts extend it and
 * are passed on again at most every quarter timeout, as a keep-alive. Every node (TypingWatch)
 * passes each typist's start on to its subscribers once, and ends it itself when neither a stop
 * nor a keep-alive came for watchDeadlineMs(): the typist's node may have died, and its stop with
 * it. The typist's node stops at most a timeout after the last start, which came at most a
 * quarter timeout after the last keep-alive; the watch waits that long and a second more (for the
 * stop on its way), so typing shown through a node that died ends 11–13.5 s after the last
 * start with the default 10 s timeout, not long after the 10 s of the contract.
 * Notices name the node they come from: a user typing on a phone on one node and a desktop on
 * another has stopped only when both nodes say so.
 */
import type { Connection } from './connection.js';
import type { GatewayContext } from './context.js';

/** How often a start that goes on is passed on again, as a fraction of the timeout. */
const KEEP_ALIVE_FRACTION = 4;
/** Time for a stop already sent to arrive before a watching node ends the typing itself. */
const STOP_GRACE_MS = 1000;

/** How long a node waits without a stop or keep-alive before it ends a typist's typing itself. */
export function watchDeadlineMs(timeoutMs: number): number {
  return timeoutMs + timeoutMs / KEEP_ALIVE_FRACTION + STOP_GRACE_MS;
}

interface Typing {
  timer: NodeJS.Timeout;
  /** When the start was last passed on (the keep-alive's clock). */
  publishedAt: number;
}

export class TypingTracker {
  private readonly timers = new Map<Connection, Map<string, Typing>>();

  constructor(private readonly ctx: GatewayContext) {}

  start(conn: Connection, channel: string): void {
    let mine = this.timers.get(conn);
    if (!mine) this.timers.set(conn, (mine = new Map()));
    const existing = mine.get(channel);
    if (existing) clearTimeout(existing.timer);
    const timeoutMs = this.ctx.tuning.typingTimeoutMs;
    const timer = setTimeout(() => this.stop(conn, channel), timeoutMs);
    timer.unref?.();
    const now = this.ctx.clock.nowMs();
    const due = !existing || now - existing.publishedAt >= timeoutMs / KEEP_ALIVE_FRACTION;
    mine.set(channel, { timer, publishedAt: due ? now : existing.publishedAt });
    if (due) this.publish(conn.userId, channel, true);
  }

  stop(conn: Connection, channel: string): void {
    const mine = this.timers.get(conn);
    const typing = mine?.get(channel);
    if (!mine || !typing) return;
    clearTimeout(typing.timer);
    mine.delete(channel);
    if (mine.size === 0) this.timers.delete(conn);
    // Another of the user's connections here still typing there: the user has not stopped.
    if (this.userTyping(conn.userId, channel)) return;
    this.publish(conn.userId, channel, false);
  }

  private userTyping(userId: string, channel: string): boolean {
    for (const [other, typing] of this.timers) if (other.userId === userId && typing.has(channel)) return true;
    return false;
  }

  /** The connection closed: whatever it was typing stops. */
  stopAll(conn: Connection): void {
    for (const channel of this.channelsOf(conn)) this.stop(conn, channel);
  }

  /** How many channels the connection is typing on. */
  count(conn: Connection): number {
    return this.timers.get(conn)?.size ?? 0;
  }

  /** The channels the connection is typing on. */
  channelsOf(conn: Connection): string[] {
    return [...(this.timers.get(conn)?.keys() ?? [])];
  }

  isTyping(conn: Connection, channel: string): boolean {
    return this.timers.get(conn)?.has(channel) ?? false;
  }

  private publish(userId: string, channel: string, isTyping: boolean): void {
    const payload = { user_id: userId, is_typing: isTyping, node: this.ctx.nodeId };
    this.ctx.bus.publishControl({ kind: 'ephemeral', channel, event: 'typing', payload }).catch((err: unknown) => {
      this.ctx.logger.warn({ err, channel }, 'typing notice failed');
    });
  }
}

/**
 * The receiving side, on every node: `typing` notices from the bus go to this node's subscribers
 * through here. A start already passed on (a keep-alive) is not passed on again; a typist not
 * heard from for `deadlineMs` gets a stop made here.
 */
export class TypingWatch {
  /** `channel\nuser_id` → the deadline of that typist's start, per node it is typing through. */
  private readonly typing = new Map<string, Map<string, NodeJS.Timeout>>();

  constructor(
    private readonly deliver: (channel: string, payload: { user_id: string; is_typing: boolean }) => void,
    private readonly deadlineMs: number,
  ) {}

  notice(channel: string, payload: unknown): void {
    const p = payload as { user_id?: unknown; is_typing?: unknown; node?: unknown } | null;
    if (!p || typeof p.user_id !== 'string' || typeof p.is_typing !== 'boolean') return;
    const userId = p.user_id;
    const node = typeof p.node === 'string' ? p.node : '';
    const key = `${channel}\n${userId}`;
    const nodes = this.typing.get(key) ?? new Map<string, NodeJS.Timeout>();
    const wasTyping = nodes.size > 0;
    const pending = nodes.get(node);
    if (pending) clearTimeout(pending);
    if (!p.is_typing) {
      // A stop for a start this node never passed on (or already ended itself) is no news.
      if (pending) this.end(key, nodes, node, channel, userId);
      return;
    }
    const timer = setTimeout(() => this.end(key, nodes, node, channel, userId), this.deadlineMs);
    timer.unref?.();
    nodes.set(node, timer);
    this.typing.set(key, nodes);
    if (!wasTyping) this.deliver(channel, { user_id: userId, is_typing: true });
  }

  /** That node's typing ended; the user has stopped once no node is left typing. */
  private end(key: string, nodes: Map<string, NodeJS.Timeout>, node: string, channel: string, userId: string): void {
    nodes.delete(node);
    if (nodes.size > 0) return;
    this.typing.delete(key);
    this.deliver(channel, { user_id: userId, is_typing: false });
  }

  close(): void {
    for (const nodes of this.typing.values()) for (const timer of nodes.values()) clearTimeout(timer);
    this.typing.clear();
  }
}
