/**
 * The real-time gateway of one node: accepts WebSocket upgrades, runs each connection's protocol,
 * and fans publications from the Bus out to local subscribers. Stateless apart from its sockets:
 * sessions and presence live in the SessionStore / PresenceStore (Redis when distributed), so a
 * client may resume on any node.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AuthContext } from '../auth/types.js';
import type { Unsubscribe } from '../bus/types.js';
import { isTemError } from '../core/errors.js';
import { CLOSE_CODES } from '../protocol/codes.js';
import { AccessRecheck } from './access-recheck.js';
import { Connection } from './connection.js';
import { DEFAULT_TUNING, type GatewayContext, type GatewayDeps, type GatewayTuning } from './context.js';
import { createDispatcher } from './handlers.js';
import { Sessions } from './hello.js';
import { FlushScheduler } from './outbound.js';
import { PendingPerAddress } from './pending.js';
import { PresenceTracker } from './presence-tracker.js';
import { ConnectLimiter } from './rate.js';
import { Registry } from './registry.js';
import { Revocation, type ConnectionFilter } from './revocation.js';
import { Subscriptions } from './subscriptions.js';
import { PresenceOrder } from './presence-order.js';
import { TypingTracker, TypingWatch, watchDeadlineMs } from './typing.js';
import { UpdateOrder } from './update-order.js';
import { isGatewayPath, readUpgrade, rejectUpgrade, type EarlyClose } from './upgrade.js';

export type { ConnectionFilter } from './revocation.js';

export interface Gateway {
  /** Handles an HTTP upgrade; answers 404 for paths other than /ws and /api/v1/ws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Listens for upgrades on an HTTP server (e.g. fastify's `app.server`). */
  attach(server: Server): void;
  /** Re-authenticates matching connections; closes 4001 those no longer valid. Returns how many closed. */
  revalidate(filter?: ConnectionFilter): Promise<number>;
  /** Closes every connection (default 1012 server restart) and leaves the Bus channels. */
  close(code?: number): Promise<void>;
  /** Open connections on this node. */
  connectionCount(): number;
  /** Whether it receives control messages (revocations, notices): not while it cannot subscribe. */
  listeningForControl(): boolean;
  /** Runs presence refresh and expiry now (tests, and a clean shutdown path). */
  presenceTick(): Promise<void>;
}

export function createGateway(deps: GatewayDeps, tuning: Partial<GatewayTuning> = {}): Gateway {
  const ctx: GatewayContext = {
    ...deps,
    tuning: { ...DEFAULT_TUNING, ...tuning },
    scheduler: new FlushScheduler(),
    registry: undefined as unknown as Registry,
  };
  // Updates repeated by history that started over are not passed on (UpdateOrder).
  const updateOrder = new UpdateOrder(() => deps.clock.nowMs());
  ctx.registry = new Registry(
    deps.bus,
    {
      onSubscriptionCount: (delta) => deps.metrics.wsSubscriptions.inc(delta),
      onBusError: (channel, err) => deps.logger.warn({ err, channel }, 'bus subscription error'),
      onGapFilled: (channel, count) => deps.logger.info({ channel, count }, 'publications missed during a bus outage sent from history'),
      onUnrecoverableGap: (channel, subscribers) => {
        deps.logger.warn({ channel, connections: subscribers.length }, 'publications missed during a bus outage are gone from history; subscribers must resync');
        // `subs` is made below; the registry calls this only once subscribers exist.
        for (const conn of subscribers) subs.fellBehind(conn as Connection, channel);
      },
      onStaleUpdate: (channel, eventId) => deps.logger.info({ channel, event_id: eventId }, 'an event update repeated by history that started over was not passed on'),
    },
    updateOrder,
  );
  const { config, logger, clock } = deps;
  const presence = new PresenceTracker(ctx);
  const typing = new TypingTracker(ctx);
  const presenceOrder = new PresenceOrder(() => clock.nowMs());
  const typingWatch = new TypingWatch((channel, payload) => ctx.registry.deliverNotice(channel, 'typing', payload), watchDeadlineMs(ctx.tuning.typingTimeoutMs));
  const subs = new Subscriptions(ctx, presence, typing);
  const sessions = new Sessions(ctx, subs, presence);
  const connectLimiter = new ConnectLimiter(config.wsConnectLimit, config.wsConnectWindowMs, deps.bus);
  const pending = new PendingPerAddress(config.wsPendingPerIp, (delta) => deps.metrics.wsPending.inc(delta));
  const dispatch = createDispatcher({ ctx, subs, sessions, presence, typing, connectLimiter });
  const connections = new Set<Connection>();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: config.wsMaxFrameBytes, clientTracking: false });
  let closing = false;

  function onClosed(conn: Connection): void {
    connections.delete(conn);
    // A slow consumer's session would claim frames it never got: not resumable (the client
    // subscribes again with `since` and recovers from history, or learns it must resync).
    if (conn.auth && conn.overflowed) sessions.discard(conn);
    else if (conn.auth) sessions.save(conn);
    typing.stopAll(conn);
    presence.forget(conn);
    subs.dropAll(conn);
    ctx.registry.removeUser(conn);
  }

  function open(ws: WebSocket, req: IncomingMessage, path: string, early: EarlyClose | null, auth: AuthContext | null, token: string | null): void {
    const remote = req.socket.remoteAddress;
    const conn = new Connection(ctx, ws, { dispatch, onClosed }, { remote, path });
    connections.add(conn);
    if (closing) conn.close(CLOSE_CODES.SERVER_RESTART, 'server shutting down');
    else if (early) conn.close(early.code, early.reason);
    else if (auth && token) conn.runExclusive(() => sessions.establish(conn, auth, token, {}));
    else awaitHello(conn, remote);
  }

  /** No credentials at the upgrade: wait for HELLO, holding one of the address's pending slots. */
  function awaitHello(conn: Connection, remote: string | undefined): void {
    const address = remote ?? 'unknown';
    const slot = pending.acquire(address);
    if (slot) return conn.expectHello(config.wsHelloTimeoutMs, slot);
    deps.metrics.wsPendingLimitCloses.inc();
    conn.logEvent('debug', { remote: address, pending: pending.countOf(address), limit: config.wsPendingPerIp }, 'ws refused: too many connections waiting for HELLO');
    conn.close(CLOSE_CODES.TRY_AGAIN_LATER, 'too many unauthenticated connections from this address');
  }

  async function authenticateEarly(token: string): Promise<{ auth: AuthContext | null; early: EarlyClose | null }> {
    if (!(await connectLimiter.attempt(token))) return { auth: null, early: { code: CLOSE_CODES.TRY_AGAIN_LATER, reason: 'too many connection attempts' } };
    try {
      return { auth: await deps.auth.authenticate(token), early: null };
    } catch (err) {
      if (isTemError(err) && err.code === 'UNAUTHORIZED') return { auth: null, early: { code: CLOSE_CODES.UNAUTHORIZED, reason: 'invalid token' } };
      logger.warn({ err }, 'authentication unavailable at upgrade');
      return { auth: null, early: { code: CLOSE_CODES.TRY_AGAIN_LATER, reason: 'authentication unavailable' } };
    }
  }

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const info = readUpgrade(req);
    if (!isGatewayPath(info.path)) return rejectUpgrade(socket, 404);
    if (closing) return rejectUpgrade(socket, 503);
    // The socket may fail while the token is checked; ws takes over error handling after.
    const onError = () => socket.destroy();
    socket.on('error', onError);
    let early: EarlyClose | null = info.problem ? { code: CLOSE_CODES.UNAUTHORIZED, reason: info.problem } : null;
    let auth: AuthContext | null = null;
    if (!early && info.token) ({ auth, early } = await authenticateEarly(info.token));
    socket.off('error', onError);
    if (socket.destroyed) return;
    wss.handleUpgrade(req, socket, head, (ws) => open(ws, req, info.path, early, auth, info.token));
  }

  // ── periodic work ─────────────────────────────────────────────────────────
  const timers: NodeJS.Timeout[] = [];
  // A run still going when the next is due is not doubled: with many connections and a slow API
  // the access sweeps would otherwise pile up, each holding a snapshot of every connection.
  const every = (ms: number, fn: () => void | Promise<void>) => {
    let running = false;
    const t = setInterval(() => {
      if (running) return;
      running = true;
      Promise.resolve()
        .then(fn)
        .catch((err: unknown) => logger.warn({ err }, 'gateway periodic task failed'))
        .finally(() => (running = false));
    }, ms);
    t.unref?.();
    timers.push(t);
  };

  const hb = config.heartbeatIntervalMs;
  // WebSocket pings, so dead TCP peers are found (their sends fail and the socket closes).
  every(Math.max(50, hb), () => {
    for (const conn of connections) {
      try {
        conn.ws.ping();
      } catch {
        /* closing already */
      }
    }
  });

  // Silence past 2 × the heartbeat interval (4008), and a key or JWT that expires (4001), end a
  // connection within a second (a tenth of the interval when that is shorter), not at the next
  // heartbeat round: a pass over the connections is a comparison or two each.
  every(Math.max(50, Math.min(1000, Math.floor(hb / 10))), () => {
    const now = clock.nowMs();
    for (const conn of connections) {
      // A connection paused for backpressure is not read, so its PINGs wait: it is not silent.
      // Before HELLO, the HELLO deadline governs (4001), however short the heartbeat.
      if (conn.auth && now - conn.lastSeen > 2 * hb && !conn.paused) {
        conn.close(CLOSE_CODES.HEARTBEAT_TIMEOUT, 'heartbeat timeout');
        continue;
      }
      const exp = conn.auth?.expiresAt;
      if (exp && exp.getTime() <= now) conn.close(CLOSE_CODES.UNAUTHORIZED, 'credential expired');
    }
  });

  async function presenceTick(): Promise<void> {
    await presence.refreshAll();
    await presence.expire();
  }
  every(ctx.tuning.presenceRefreshMs || Math.max(50, Math.floor(config.presenceTtlMs / 3)), () => presence.refreshAll());
  // Redis restarted empty (or a replica promoted without the last writes) holds none of this
  // node's entries: its connected users would show offline, to `GET /api/presence` and
  // `PRESENCE`, until the next refresh, up to a third of the TTL later. Written again as soon as
  // the presence connection is back.
  const offPresenceReconnect = ctx.presence.onReconnect?.(() => {
    presence.refreshAll().catch((err: unknown) => logger.warn({ err }, 'presence refresh after a reconnect failed'));
  });
  // Swept far more often than refreshed: a user turns offline (and `presence.leave` goes out)
  // within a few seconds of the TTL running out, not up to a refresh interval later.
  const sweepMs = ctx.tuning.presenceSweepMs || Math.min(5000, Math.max(100, Math.floor(config.presenceTtlMs / 20)));
  every(sweepMs, () => {
    // Versions of presence notices are needed only while notices may still cross.
    presenceOrder.prune();
    return presence.expire();
  });
  every(Math.max(1000, Math.floor(config.sessionTtlMs / 3)), () => {
    for (const conn of connections) if (conn.auth) sessions.save(conn);
  });
  // ── revocation and control messages ──────────────────────────────────────
  const accessRecheck = new AccessRecheck(ctx, subs, sessions, connections);
  const revocation = new Revocation({
    connections,
    auth: deps.auth,
    logger,
    deliverNotice: (c, e, p) => {
      if (e === 'typing') return typingWatch.notice(c, p);
      if (!e.startsWith('presence.')) return ctx.registry.deliverNotice(c, e, p);
      const admitted = presenceOrder.admit(c, p);
      if (admitted.pass) ctx.registry.deliverNotice(c, e, admitted.payload);
    },
    membershipRemoved: (channel, userId) => accessRecheck.membershipRemoved(channel, userId),
    membershipAdded: (channel, userId) => ctx.access.forget?.(channel, userId),
    // A withdrawn permission ends the subscriptions it allowed now, not at the periodic sweep.
    permissionsChanged: (filter) => void accessRecheck.sweep(filter).catch((err: unknown) => logger.warn({ err }, 'access re-check after a permission change failed')),
  });
  const revalidate = (filter?: ConnectionFilter) => revocation.revalidate(filter);
  every(ctx.tuning.revalidateMs, async () => {
    await revalidate();
    // Permissions just refreshed; a lost membership_removed message is caught here too.
    await accessRecheck.sweep();
  });
  // Revocations, role edits, membership changes, typing and presence notices all arrive as
  // control messages: a node that could not subscribe (Redis unreachable at its start) tries
  // again until it can, and is not ready meanwhile. Once it listens, what it may have missed is
  // checked as after a reconnect.
  // Control messages published while this node could not hear them (its bus connection down, or
  // not yet subscribed) never reach it: a revoked key, an edited role, a removed membership. As
  // after a role edit, every cached answer is dropped and every connection checked again now and
  // once more shortly after; and memberships are swept. A revoked key then closes within
  // seconds, not at the periodic re-check.
  const recheckMissedControl = () => {
    revocation.onControl({ kind: 'roles_changed' });
    accessRecheck.sweep().catch((err: unknown) => logger.warn({ err }, 'membership sweep after missed control messages failed'));
  };
  let listeningForControl = false;
  let wakeControlRetry: (() => void) | null = null;
  const listenForControl = (attempt: number): Promise<Unsubscribe | null> =>
    deps.bus.onControl((m) => revocation.onControl(m)).then(
      (unsub) => {
        listeningForControl = true;
        if (attempt > 0) {
          logger.info({ attempts: attempt + 1 }, 'gateway listening for control messages');
          recheckMissedControl();
        }
        return unsub;
      },
      async (err: unknown) => {
        if (attempt === 0) logger.error({ err }, 'gateway could not listen for control messages; trying again until it can');
        if (closing) return null;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(5000, 250 * 2 ** Math.min(attempt, 5)));
          wakeControlRetry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wakeControlRetry = null;
        return closing ? null : listenForControl(attempt + 1);
      },
    );
  let controlUnsub: Promise<Unsubscribe | null> = listenForControl(0);
  const stopInvalidations = revocation.listenToAuthenticator();
  const offResubscribed = deps.bus.onResubscribed(recheckMissedControl);

  // ── the handle ────────────────────────────────────────────────────────────
  return {
    handleUpgrade(req, socket, head) {
      upgrade(req, socket, head).catch((err: unknown) => {
        logger.error({ err }, 'upgrade failed');
        socket.destroy();
      });
    },
    attach(server) {
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head));
    },
    revalidate,
    listeningForControl: () => listeningForControl,
    connectionCount: () => connections.size,
    presenceTick,
    async close(code = CLOSE_CODES.SERVER_RESTART) {
      if (closing) return;
      closing = true;
      for (const t of timers) clearInterval(t);
      offPresenceReconnect?.();
      typingWatch.close();
      stopInvalidations();
      await offResubscribed();
      wakeControlRetry?.();
      const unsub = await controlUnsub;
      controlUnsub = Promise.resolve(null);
      await unsub?.().catch(() => undefined);
      const sockets = [...connections].map((c) => c.ws);
      for (const conn of [...connections]) conn.close(code, 'server shutting down');
      ctx.scheduler.flushAll();
      await Promise.all(
        sockets.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === ws.CLOSED) return resolve();
              ws.once('close', () => resolve());
            }),
        ),
      );
      await sessions.drain();
      // The closed connections' presence entries were stamped at their close: let those writes
      // land before the presence store closes.
      await presence.settle();
      await ctx.registry.clear();
      wss.close();
    },
  };
}
