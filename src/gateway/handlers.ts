/**
 * What each client frame does (contract §4). Replies carry the frame's `id` as `ref`; errors are
 * ERROR frames and the connection stays open, except authentication failures (close 4001).
 */
import { can } from '../auth/policy.js';
import { namespaceOptions } from '../config/index.js';
import { isTemError } from '../core/errors.js';
import { checkPayload } from '../core/payload-check.js';
import { CLOSE_CODES, isPattern, type ClientFrame, type ClientFrameMap } from '../protocol/index.js';
import type { Connection } from './connection.js';
import type { GatewayContext } from './context.js';
import { wsErrorOf } from './errors.js';
import type { Sessions } from './hello.js';
import { withOfflineMembers } from '../presence/status.js';
import type { PresenceTracker } from './presence-tracker.js';
import type { ConnectLimiter } from './rate.js';
import type { Prepared, Subscriptions } from './subscriptions.js';
import type { TypingTracker } from './typing.js';

export interface HandlerParts {
  ctx: GatewayContext;
  subs: Subscriptions;
  sessions: Sessions;
  presence: PresenceTracker;
  typing: TypingTracker;
  connectLimiter: ConnectLimiter;
}

type Ref = string | number | undefined;

export function createDispatcher(parts: HandlerParts): (conn: Connection, frame: ClientFrame) => Promise<void> {
  const { ctx, subs, sessions, presence, typing, connectLimiter } = parts;

  async function hello(conn: Connection, p: ClientFrameMap['HELLO'], ref: Ref): Promise<void> {
    if (conn.state === 'connecting') {
      if (!p.token) {
        conn.close(CLOSE_CODES.UNAUTHORIZED, 'missing token: send HELLO {token}');
        return;
      }
      if (!(await connectLimiter.attempt(p.token))) {
        conn.close(CLOSE_CODES.TRY_AGAIN_LATER, 'too many connection attempts');
        return;
      }
    }
    let auth = conn.auth;
    let token = conn.token;
    if (p.token && p.token !== conn.token) {
      try {
        auth = await ctx.auth.authenticate(p.token);
        token = p.token;
      } catch (err) {
        if (conn.state === 'connecting') {
          const unauthorized = isTemError(err) && err.code === 'UNAUTHORIZED';
          if (unauthorized) conn.close(CLOSE_CODES.UNAUTHORIZED, 'invalid token');
          else conn.close(CLOSE_CODES.TRY_AGAIN_LATER, 'authentication unavailable');
          return;
        }
        const e = wsErrorOf(err);
        conn.sendError(e.code, e.message, ref, undefined, e.reason);
        return;
      }
      if (conn.auth && auth.userId !== conn.auth.userId) {
        conn.sendError('FORBIDDEN', 'the token belongs to another user', ref);
        return;
      }
    }
    if (!conn.isOpen || !auth || !token) return;
    await sessions.establish(conn, auth, token, { session_id: p.session_id, since: p.since }, ref);
  }

  async function subscribe(conn: Connection, p: ClientFrameMap['SUBSCRIBE'], ref: Ref): Promise<void> {
    const since = p.since ?? {};
    const results = await Promise.all(p.channels.map((channel) => subs.prepare(conn, channel, since[channel])));
    const ready: Prepared[] = [];
    results.forEach((r, i) => {
      const channel = p.channels[i]!;
      if (!r.ok) {
        conn.sendError(r.code, r.message, ref, channel);
        return;
      }
      const { position, recovered } = r.prepared;
      conn.send('SUBSCRIBED', { channel, offset: position.offset, epoch: position.epoch, recovered }, ref);
      ready.push(r.prepared);
    });
    subs.commitAll(conn, ready);
    sessions.save(conn);
  }

  async function publish(conn: Connection, p: ClientFrameMap['PUBLISH'], ref: Ref): Promise<void> {
    if (!namespaceOptions(ctx.config, p.channel).clientPublish) {
      conn.sendError('FORBIDDEN', `clients may not publish to ${p.channel}`, ref, p.channel);
      return;
    }
    if (!(await ctx.access.canSubscribe(conn.auth!, p.channel))) {
      conn.sendError('FORBIDDEN', `not allowed to publish to ${p.channel}`, ref, p.channel);
      return;
    }
    checkPayload(p.payload, 'payload.payload');
    // The limit POST /api/publish applies: a client must not put more in a channel's history
    // than a service may.
    const size = Buffer.byteLength(JSON.stringify(p.payload) ?? '', 'utf8');
    if (size > ctx.config.maxPayloadBytes) {
      conn.sendError('TOO_LARGE', `payload.payload is ${size} bytes; the limit is ${ctx.config.maxPayloadBytes}`, ref, p.channel);
      return;
    }
    const pub = await ctx.bus.publish(p.channel, p.event, p.payload);
    conn.send('PUBLISHED', { offset: pub.offset, epoch: pub.epoch }, ref);
  }

  async function ingest(conn: Connection, p: ClientFrameMap['INGEST'], ref: Ref): Promise<void> {
    if (!can(conn.auth!, 'events.post.event_ingest')) {
      conn.sendError('FORBIDDEN', 'missing permission events.post.event_ingest', ref);
      return;
    }
    if (!ctx.ingest) {
      conn.sendError('INTERNAL', 'ingest is not available on this gateway', ref);
      return;
    }
    // Checked here too: sent on to the API (distributed), a payload too deep to serialize would
    // fail as if the API were unreachable.
    checkPayload(p.payload, 'payload.payload');
    const reply = await ctx.ingest.ingest(conn.auth!, conn.token!, p as unknown as Record<string, unknown>);
    // Logged as POST /api/events logs it (the gateway is where the request came in).
    if (!reply.replayed) conn.logEvent('info', { event_id: reply.event_id, type: p.type, principal: conn.auth!.principalId, status: 'queued' }, 'event accepted');
    conn.send('INGESTED', reply, ref);
  }

  async function presenceState(conn: Connection, p: ClientFrameMap['PRESENCE'], ref: Ref): Promise<void> {
    if (!conn.channels.has(p.channel) && !(await ctx.access.canSubscribe(conn.auth!, p.channel))) {
      conn.sendError('FORBIDDEN', `not allowed to see presence on ${p.channel}`, ref, p.channel);
      return;
    }
    if (!namespaceOptions(ctx.config, p.channel).presence) {
      conn.send('PRESENCE_STATE', { channel: p.channel, members: [] }, ref);
      return;
    }
    const live = await presence.members(p.channel);
    // As GET /api/presence: registered members not connected are listed as offline.
    let registered: string[] = [];
    try {
      registered = (await ctx.access.listMembers?.(p.channel)) ?? [];
    } catch (err) {
      ctx.logger.warn({ err, channel: p.channel }, 'member list unavailable; presence shows connected users only');
    }
    conn.send('PRESENCE_STATE', { channel: p.channel, members: withOfflineMembers(live, registered) }, ref);
  }

  function typingFrame(conn: Connection, channel: string, start: boolean, ref: Ref): void {
    if (isPattern(channel)) {
      conn.sendError('BAD_REQUEST', `typing is on one channel, not a pattern (${channel})`, ref, channel);
      return;
    }
    if (!subs.receives(conn, channel)) {
      conn.sendError('BAD_REQUEST', `subscribe to ${channel} (or a pattern covering it) before typing there`, ref, channel);
      return;
    }
    // A pattern covers any number of channels: typing (a timer and a notice each) is bounded as
    // subscriptions are.
    if (start && !typing.isTyping(conn, channel) && typing.count(conn) >= ctx.tuning.maxSubscriptions) {
      conn.sendError('BAD_REQUEST', `typing on more than ${ctx.tuning.maxSubscriptions} channels at once`, ref, channel);
      return;
    }
    if (start) typing.start(conn, channel);
    else typing.stop(conn, channel);
  }

  return async function dispatch(conn, frame) {
    const ref = frame.id;
    if (frame.type === 'HELLO') return hello(conn, frame.payload as ClientFrameMap['HELLO'], ref);
    if (conn.state !== 'authenticated' || !conn.auth) {
      // The first frame of a connection without a token must be HELLO (contract §4): anything
      // else is a missing token, which closes 4001 (the ERROR first says why).
      conn.sendError('UNAUTHORIZED', 'send HELLO {token} first', ref);
      conn.close(CLOSE_CODES.UNAUTHORIZED, 'HELLO with a token expected first');
      return;
    }
    switch (frame.type) {
      case 'SUBSCRIBE':
        return subscribe(conn, frame.payload as ClientFrameMap['SUBSCRIBE'], ref);
      case 'UNSUBSCRIBE': {
        const requested = (frame.payload as ClientFrameMap['UNSUBSCRIBE']).channels;
        subs.unsubscribe(conn, requested);
        // Idempotent: every named channel the connection is no longer on (its own stays).
        conn.send('UNSUBSCRIBED', { channels: requested.filter((c) => !conn.channels.has(c)) }, ref);
        sessions.save(conn);
        return;
      }
      case 'PUBLISH':
        return publish(conn, frame.payload as ClientFrameMap['PUBLISH'], ref);
      case 'INGEST':
        return ingest(conn, frame.payload as ClientFrameMap['INGEST'], ref);
      case 'TYPING_START':
      case 'TYPING_STOP':
        return typingFrame(conn, (frame.payload as ClientFrameMap['TYPING_START']).channel, frame.type === 'TYPING_START', ref);
      case 'SET_PRESENCE':
        conn.status = (frame.payload as ClientFrameMap['SET_PRESENCE']).status;
        presence.setStatus(conn);
        // Kept with the session, so a resume (on any node) comes back with it.
        sessions.save(conn);
        return;
      case 'PRESENCE':
        return presenceState(conn, frame.payload as ClientFrameMap['PRESENCE'], ref);
      case 'PING':
        conn.send('PONG', { timestamp: ctx.clock.nowMs() }, ref);
        return;
      default:
        conn.sendError('UNKNOWN_TYPE', `unknown frame type ${String(frame.type)}`, ref);
    }
  };
}
