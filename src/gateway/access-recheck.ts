/**
 * Access to a channel can end while a connection is subscribed to it: a membership is removed,
 * or a principal loses a permission. The subscription then ends as if the client had sent
 * UNSUBSCRIBE (bus subscription, presence and the saved session follow), and the client is told
 * with an unprompted `UNSUBSCRIBED {channels, reason}` (decision 0013).
 *
 * Two triggers: the `membership_removed` control message, checked at once with the cached
 * membership answer forgotten; and the periodic sweep, the backstop for a control message lost
 * while a node was cut off from the bus. Only a definite "no" ends a subscription: a check that
 * fails (API unreachable) leaves it alone, as a token check does.
 */
import type { Connection } from './connection.js';
import type { GatewayContext } from './context.js';
import type { Sessions } from './hello.js';
import type { Subscriptions } from './subscriptions.js';
import { matches, type ConnectionFilter } from './revocation.js';

const ACCESS_REVOKED = 'access revoked';

export class AccessRecheck {
  constructor(
    private readonly ctx: GatewayContext,
    private readonly subs: Subscriptions,
    private readonly sessions: Sessions,
    private readonly connections: ReadonlySet<Connection>,
  ) {}

  /** `userId` is no longer a member of `channel`: their subscriptions to it here are checked again. */
  membershipRemoved(channel: string, userId: string): void {
    // Every node forgets, including those with no such subscription: a resume or SUBSCRIBE here
    // must not be answered from before the removal either.
    this.ctx.access.forget?.(channel, userId);
    // Each of the user's connections, subscribed yet or not: a SUBSCRIBE whose check was answered
    // just before the removal is queued ahead of this one and is looked at once it is done.
    for (const conn of this.connections) {
      if (conn.auth && conn.userId === userId) this.endLost(conn, [channel]);
    }
  }

  /**
   * Every subscription of every connection (or those matching `filter`: after a role edit or a
   * principal change, once their permissions are refreshed), apart from the user's own channels.
   * Connections one after another, so the membership lookups come as a trickle, not a burst;
   * only channels that look lost take a turn in the connection's queue.
   */
  async sweep(filter?: ConnectionFilter): Promise<void> {
    for (const conn of [...this.connections]) {
      // `matches` leaves out connections not yet authenticated.
      if (!matches(conn, filter)) continue;
      const own = `user:${conn.userId}`;
      const channels = [...conn.channels].filter((ch) => ch !== own && !ch.startsWith(`${own}:`));
      const lost = await Promise.all(channels.map((ch) => this.lost(conn, ch)));
      const suspects = channels.filter((_, i) => lost[i]);
      if (suspects.length > 0) this.endLost(conn, suspects);
    }
  }

  /**
   * Ends the subscriptions to `channels` that access no longer allows. Runs in the connection's
   * queue, after any SUBSCRIBE or UNSUBSCRIBE already received, so the subscription looked at is
   * the one the client holds when the answer comes.
   */
  private endLost(conn: Connection, channels: string[]): void {
    conn.runExclusive(async () => {
      let ended = 0;
      for (const channel of channels) {
        if (await this.lost(conn, channel)) {
          this.end(conn, channel);
          ended++;
        }
      }
      if (ended > 0) this.sessions.save(conn);
    });
  }

  private async lost(conn: Connection, channel: string): Promise<boolean> {
    const auth = conn.auth;
    if (!conn.isOpen || !auth || !conn.channels.has(channel)) return false;
    try {
      return !(await this.ctx.access.canSubscribe(auth, channel));
    } catch (err) {
      this.ctx.logger.warn({ err, channel, connection_id: conn.id }, 'access re-check failed; subscription kept');
      return false;
    }
  }

  private end(conn: Connection, channel: string): void {
    if (this.subs.unsubscribe(conn, [channel]).length === 0) return;
    conn.send('UNSUBSCRIBED', { channels: [channel], reason: ACCESS_REVOKED });
    this.ctx.logger.info({ channel, connection_id: conn.id, user_id: conn.userId }, 'subscription ended: access revoked');
  }
}
