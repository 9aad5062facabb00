/**
 * Presence for this node's connections: one entry per (channel, connection) in namespaces with
 * presence, refreshed while the connection lives and left to expire when it closes — so a user
 * who reconnects within the TTL never flickers offline, and one whose node died turns offline
 * once the TTL runs out (every node sweeps expired entries, whoever owned them).
 *
 * Visible changes (join, leave, status update) are broadcast on the channel as ephemeral
 * `presence.join` / `presence.leave` / `presence.update` events where the namespace has joinLeave.
 */
import { namespaceOptions } from '../config/index.js';
import type { PresenceChange } from '../presence/types.js';
import type { PresenceMember } from '../protocol/frames.js';
import type { Connection } from './connection.js';
import type { GatewayContext } from './context.js';

/** Presence refreshes in flight at once per node. */
const REFRESH_LANES = 64;

export class PresenceTracker {
  private readonly entries = new Map<Connection, Set<string>>();
  /** Per-connection order of presence writes (a leave never overtakes its join). */
  private readonly chains = new WeakMap<Connection, Promise<void>>();
  /** Writes not yet done, so a closing node can wait for them before its store closes. */
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly ctx: GatewayContext) {}

  get ttlMs(): number {
    return this.ctx.config.presenceTtlMs;
  }

  join(conn: Connection, channel: string): void {
    let set = this.entries.get(conn);
    if (!set) this.entries.set(conn, (set = new Set()));
    set.add(channel);
    this.enqueue(conn, () => this.upsert(conn, channel));
  }

  leave(conn: Connection, channel: string): void {
    const set = this.entries.get(conn);
    if (!set?.delete(channel)) return;
    const userId = conn.userId;
    this.enqueue(conn, async () => {
      const change = await this.ctx.presence.remove(channel, userId, conn.id, this.ctx.clock.nowMs());
      if (change) await this.broadcast(change);
    });
  }

  /** SET_PRESENCE: the connection's entries take the new status. */
  setStatus(conn: Connection): void {
    for (const channel of this.entries.get(conn) ?? []) this.enqueue(conn, () => this.upsert(conn, channel));
  }

  /**
   * The connection closed: its entries are stamped once more and then left to expire, so the
   * TTL counts from the close, not from the last periodic refresh (up to a third of it earlier).
   * Only live entries: one that expired while this node could not refresh it (Redis away for
   * longer than the TTL) has had its leave announced, and a closed connection must not rejoin.
   */
  forget(conn: Connection): void {
    const channels = this.entries.get(conn);
    if (!channels) return;
    this.entries.delete(conn);
    for (const channel of channels) this.stamp(conn, channel);
  }

  /**
   * The connection no longer receives `channel` but did not leave it (its subscription fell
   * behind): the entry is stamped once more and no longer refreshed, so it expires by TTL unless
   * the client subscribes again (the SDK does at once), which refreshes it — no leave and join
   * flicker for others, and no user shown online for as long as the connection lives.
   */
  detach(conn: Connection, channel: string): void {
    if (this.entries.get(conn)?.delete(channel)) this.stamp(conn, channel);
  }

  /**
   * Stamps the entry once more, without joining: its TTL counts from now, and it is left to
   * expire. It no longer hides the status of the user's open connections (a `dnd` tab left
   * open shows once the `online` one closes): that change is told.
   */
  private stamp(conn: Connection, channel: string): void {
    const { userId, id: connectionId } = conn;
    this.enqueue(conn, async () => {
      const change = await this.ctx.presence.linger({ channel, userId, connectionId }, this.ttlMs, this.ctx.clock.nowMs());
      if (change) await this.broadcast(change);
    });
  }

  /**
   * Refreshes every live entry of this node (run well within the TTL), a bounded number at a
   * time: tens of thousands of script calls sent at once ran past the command timeout while
   * queued, and each timeout reset the connection under the joins and leaves in flight.
   */
  async refreshAll(): Promise<void> {
    const all: [Connection, string][] = [];
    for (const [conn, channels] of this.entries) for (const channel of channels) all.push([conn, channel]);
    let next = 0;
    let failed = 0;
    let firstError: unknown;
    const lane = async (): Promise<void> => {
      while (next < all.length) {
        const [conn, channel] = all[next++]!;
        await this.upsert(conn, channel).catch((err: unknown) => {
          firstError ??= err;
          failed++;
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(REFRESH_LANES, all.length) }, lane));
    // One line for the round, not one per entry (all of them fail while Redis is away).
    if (failed > 0) this.ctx.logger.warn({ err: firstError, failed, entries: all.length }, 'presence refresh failed');
  }

  /** Sweeps expired entries (any node's) and announces who left. */
  async expire(): Promise<void> {
    const changes = await this.ctx.presence.expire(this.ctx.clock.nowMs());
    await Promise.all(changes.map((c) => this.broadcast(c)));
  }

  members(channel: string): Promise<PresenceMember[]> {
    return this.ctx.presence.members(channel, this.ctx.clock.nowMs());
  }

  private async upsert(conn: Connection, channel: string): Promise<void> {
    if (!this.entries.get(conn)?.has(channel)) return;
    const change = await this.ctx.presence.upsert(
      { channel, userId: conn.userId, connectionId: conn.id, status: conn.status },
      this.ttlMs,
      this.ctx.clock.nowMs(),
    );
    if (change) await this.broadcast(change);
  }

  private enqueue(conn: Connection, op: () => Promise<void>): void {
    const prev = this.chains.get(conn) ?? Promise.resolve();
    const next = prev.then(op).catch((err: unknown) => {
      this.ctx.logger.warn({ err, connection_id: conn.id }, 'presence update failed');
    });
    this.chains.set(conn, next);
    this.pending.add(next);
    void next.then(() => this.pending.delete(next));
  }

  /** Resolves once every presence write queued so far is done (the node is closing). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private async broadcast(change: PresenceChange): Promise<void> {
    if (!namespaceOptions(this.ctx.config, change.channel).joinLeave) return;
    try {
      await this.ctx.bus.publishControl({
        kind: 'ephemeral',
        channel: change.channel,
        event: `presence.${change.kind}`,
        payload: { user_id: change.userId, status: change.status, version: change.version },
      });
    } catch (err) {
      this.ctx.logger.warn({ err, channel: change.channel }, 'presence broadcast failed');
    }
  }
}
