/**
 * Establishing a session: after authentication (at the upgrade or by HELLO), the connection gets
 * a session, its own `user:{id}` channel and — when HELLO names a saved session of the same user —
 * the session's channels back, each recovered from `since` (the client's positions, which win) or
 * replayed from the positions saved with the session (then not `recovered`: see below). HELLO_ACK
 * goes out once every channel is ready, and the replays follow it, so the client hears about its
 * session before any EVENT.
 */
import type { AuthContext } from '../auth/types.js';
import { newId } from '../core/ids.js';
import { CLOSE_CODES } from '../protocol/codes.js';
import { PRESENCE_STATUSES, type ServerFrameMap, type StreamPosition } from '../protocol/frames.js';
import type { SessionState } from '../presence/types.js';
import type { Connection } from './connection.js';
import type { GatewayContext } from './context.js';
import type { PresenceTracker } from './presence-tracker.js';
import type { Prepared, Subscriptions } from './subscriptions.js';

export interface HelloRequest {
  session_id?: string;
  since?: Record<string, StreamPosition>;
}

function usable(pos: StreamPosition | undefined): StreamPosition | undefined {
  return pos && pos.epoch !== '' ? pos : undefined;
}

export class Sessions {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly ctx: GatewayContext,
    private readonly subs: Subscriptions,
    private readonly presence: PresenceTracker,
  ) {}

  /** Authenticates `conn` as `auth` and sends HELLO_ACK (with `ref` when answering a HELLO). */
  async establish(conn: Connection, auth: AuthContext, token: string, req: HelloRequest, ref?: string | number): Promise<void> {
    let sessionId = conn.sessionId ?? newId('sess');
    let saved: SessionState | null = null;
    if (req.session_id && req.session_id !== conn.sessionId) {
      saved = await this.ctx.sessions.load(req.session_id).catch((err: unknown) => {
        this.ctx.logger.warn({ err, connection_id: conn.id }, 'session load failed');
        return null;
      });
      if (saved && saved.userId !== auth.userId) saved = null;
      if (saved) {
        if (conn.sessionId) void this.ctx.sessions.delete(conn.sessionId, conn.id).catch(() => undefined);
        sessionId = saved.sessionId;
      }
    }
    const firstTime = conn.state === 'connecting';
    conn.authenticated(auth, token, sessionId);
    if (firstTime) this.ctx.registry.addUser(conn);
    // The status the client set stays with its session: channels restored below join with it,
    // and entries this connection already has (a ?token= connect) are updated.
    const savedStatus = saved?.status ?? 'online';
    if (saved && PRESENCE_STATUSES.includes(savedStatus) && savedStatus !== conn.status) {
      conn.status = savedStatus;
      this.presence.setStatus(conn);
    }

    const since = req.since ?? {};
    const wanted = new Map<string, StreamPosition | undefined>();
    const own = `user:${auth.userId}`;
    wanted.set(own, usable(since[own] ?? saved?.channels[own]));
    for (const [channel, pos] of Object.entries(saved?.channels ?? {})) wanted.set(channel, usable(since[channel] ?? pos));
    // A connection already authenticated (at the upgrade) may be on channels already: HELLO_ACK
    // lists them too, and a `since` naming one replays what it missed, as for a restored one.
    for (const channel of conn.channels) if (!wanted.has(channel)) wanted.set(channel, usable(since[channel]));

    const results = await Promise.all(
      [...wanted].map(async ([channel, pos]) => ({
        channel,
        // A position saved with the session is the last one the server wrote to the old
        // connection, not the last one its client received: what was in flight when it dropped
        // may be lost. Replaying from it is the best the server can do, but only the client's own
        // `since` can make the replay gap-free, so only that counts as recovered.
        fromClient: usable(since[channel]) !== undefined,
        result: await this.subs.prepare(conn, channel, pos, channel !== own),
      })),
    );
    // Without its own channel a connection would get none of its user's updates, and nothing
    // subscribes it later: it closes "try again later" instead, and the client's reconnect (once
    // the bus is back) gets it. Other channels that fail are named in ERROR frames below.
    const ownResult = results.find((r) => r.channel === own)?.result;
    const ownLost = conn.isOpen && ownResult !== undefined && !ownResult.ok ? ownResult.message : null;
    if (!conn.isOpen || ownLost !== null) {
      // Committed all the same: the close takes them down with the connection.
      for (const r of results) if (r.result.ok) this.subs.commit(conn, r.result.prepared);
      if (ownLost !== null) {
        this.ctx.logger.warn({ connection_id: conn.id, user_id: auth.userId, reason: ownLost }, 'own channel unavailable; closing');
        conn.close(CLOSE_CODES.TRY_AGAIN_LATER, `could not subscribe to ${own}; reconnect`);
      }
      return;
    }
    const channels: NonNullable<ServerFrameMap['HELLO_ACK']['channels']> = {};
    const ready: Prepared[] = [];
    // Positions for channels that do not come back (the session is unknown, expired or another
    // user's) were asked for and not recovered: the client must resync those.
    let asked = Object.keys(since).filter((channel) => !wanted.has(channel)).length;
    let recovered = 0;
    for (const r of results) {
      if (!r.result.ok) {
        // Asked for and not restored (access withdrawn meanwhile, a failed read): not recovered.
        if (r.fromClient) asked++;
        continue;
      }
      const p = r.result.prepared;
      ready.push(p);
      // `recovered` overall answers the client's `since`; a channel replayed from the session's
      // saved position alone says in its own entry that it is not known to be gap-free.
      const gapFree = p.recovered && r.fromClient;
      channels[p.channel] = { offset: p.position.offset, epoch: p.position.epoch, recovered: gapFree };
      if (r.fromClient) {
        asked++;
        if (gapFree) recovered++;
      }
    }
    conn.send(
      'HELLO_ACK',
      {
        session_id: sessionId,
        user_id: auth.userId,
        heartbeat_interval: this.ctx.config.heartbeatIntervalMs,
        resumed: saved !== null,
        recovered: asked > 0 && recovered === asked,
        channels,
      },
      ref,
    );
    this.subs.commitAll(conn, ready);
    for (const r of results) {
      if (!r.result.ok) conn.sendError(r.result.code, `could not restore ${r.channel}: ${r.result.message}`, undefined, r.channel);
    }
    // A resume takes the session over: the connection that held it, if still open somewhere,
    // no longer writes it.
    this.save(conn, saved !== null);
  }

  /**
   * Saves the connection's session so it can be resumed here or on another node; nothing is
   * written once another connection has resumed it.
   */
  save(conn: Connection, takeOver = false): void {
    // An overflowed connection's session is discarded at its close (its positions claim what
    // never reached the client): a write still to come, after a replay say, must not bring it back.
    if (!conn.sessionId || !conn.auth || conn.overflowed) return;
    const state: SessionState = { sessionId: conn.sessionId, userId: conn.auth.userId, channels: this.subs.positionsOf(conn), owner: conn.id };
    if (conn.status !== 'online') state.status = conn.status;
    this.track(conn, 'session save failed', this.ctx.sessions.save(state, this.ctx.config.sessionTtlMs, { takeOver }));
  }

  /** Forgets the connection's saved session (while it holds it): a resume answers `resumed: false`. */
  discard(conn: Connection): void {
    if (!conn.sessionId) return;
    this.track(conn, 'session delete failed', this.ctx.sessions.delete(conn.sessionId, conn.id));
  }

  /** A session write in flight: logged if it fails, awaited by drain(). */
  private track(conn: Connection, failure: string, write: Promise<void>): void {
    const p: Promise<void> = write
      .catch((err: unknown) => {
        this.ctx.logger.warn({ err, connection_id: conn.id }, failure);
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Waits for session writes in flight (shutdown, before the session store closes). */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }
}
