/**
 * Presence and sessions in Redis (distributed mode): every gateway node sees the same members,
 * and a node that dies simply stops refreshing its entries, so its users turn offline when the
 * next expire() on any node runs past their TTL. Time comes from the callers' `nowMs` (expiries
 * are sorted-set scores), so tests drive it with a ManualClock.
 *
 * Presence channels are spread over `buckets` (redis-keys.ts): each bucket's keys share one hash
 * tag, so on a Redis Cluster every script runs on one slot (a script touching several fails with
 * CROSSSLOT). A channel's calls touch its own bucket; expire() sweeps the buckets one by one.
 * On a single Redis one bucket (the default) is enough; every node must use the same number.
 */
import { randomBase62 } from '../core/ids.js';
import type { PresenceMember, PresenceStatus } from '../protocol/frames.js';
import { closeRedis, defineScript, onReconnected, openRedis, withRedis, type RedisConnection, type RedisConnectionOptions } from '../bus/connection.js';
import { PresenceKeys } from './redis-keys.js';
import { EXPIRE_LUA, MEMBERS_LUA, REMOVE_LUA, SESSION_DELETE_LUA, SESSION_SAVE_LUA, LINGER_LUA, UPSERT_LUA } from './redis-scripts.js';
import { assertStatus, assertTtl, bestStatus, changeOf, sortMembers } from './status.js';
import type { PresenceChange, PresenceEntry, PresenceStore, SessionState, SessionStore } from './types.js';

export interface RedisStoreOptions {
  url: string;
  /** `url` names one node of a Redis Cluster. */
  cluster?: boolean;
  /** Prefix of every key (default `tem:`). */
  prefix?: string;
  /** Name in CLIENT LIST (`{prefix}presence:{name}` / `{prefix}sessions:{name}`). */
  name?: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  logger?: RedisConnectionOptions['logger'];
  /**
   * Presence only: how many buckets (hash slots on a Redis Cluster) channels are spread over,
   * 1 to 1024 (default 1). Every node of a deployment must use the same number.
   */
  buckets?: number;
}

type Script<T> = (keys: string[], args: (string | number)[]) => Promise<T>;

/**
 * Expired entries handled per script call, over all its channels (of one bucket): bounds how
 * long one call holds Redis (100 channels of 1,000 entries each took 1–2.5 s, past the command
 * timeout). At most EXPIRE_MAX_ROUNDS calls per bucket per expire().
 */
const EXPIRE_BATCH_CHANNELS = 100;
const EXPIRE_BATCH_ENTRIES = 1000;
const EXPIRE_MAX_ROUNDS = 100;

const orNull = (s: string): PresenceStatus | null => (s === '' ? null : (s as PresenceStatus));
/** Keys are a safety net for when no node sweeps at all; they outlive every entry they hold. */
const keyTtl = (ttlMs: number): number => ttlMs * 2 + 60_000;

export class RedisPresenceStore implements PresenceStore {
  private readonly conn: RedisConnection;
  private readonly keys: PresenceKeys;
  private readonly upsertScript: Script<[string, string, string]>;
  private readonly removeScript: Script<[string, string, string]>;
  private readonly lingerScript: Script<[string, string, string]>;
  private readonly membersScript: Script<string[]>;
  private readonly expireScript: Script<(string | number)[]>;
  private readonly reconnectHandlers = new Set<() => void>();

  constructor(options: RedisStoreOptions) {
    const prefix = options.prefix ?? 'tem:';
    this.keys = new PresenceKeys(prefix, options.buckets);
    this.conn = openRedis({ ...options, name: `${prefix}presence:${options.name ?? randomBase62(8)}` });
    const redis = this.conn.redis;
    this.upsertScript = defineScript(redis, 'temPresenceUpsert', 3, UPSERT_LUA);
    this.removeScript = defineScript(redis, 'temPresenceRemove', 3, REMOVE_LUA);
    this.lingerScript = defineScript(redis, 'temPresenceLinger', 3, LINGER_LUA);
    this.membersScript = defineScript(redis, 'temPresenceMembers', 1, MEMBERS_LUA);
    this.expireScript = defineScript(redis, 'temPresenceExpire', 1, EXPIRE_LUA);
    onReconnected(this.conn, () => {
      for (const handler of [...this.reconnectHandlers]) handler();
    });
  }

  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => void this.reconnectHandlers.delete(handler);
  }

  async upsert(entry: PresenceEntry, ttlMs: number, nowMs: number): Promise<PresenceChange | null> {
    assertStatus(entry.status);
    assertTtl(ttlMs);
    const { channel, userId, connectionId, status } = entry;
    const [before, after, version] = await withRedis(this.conn, () =>
      this.upsertScript(this.keys.entry(channel, userId), [JSON.stringify([userId, connectionId]), status, nowMs + ttlMs, nowMs, channel, keyTtl(ttlMs)]),
    );
    return changeOf(channel, userId, orNull(before), orNull(after), Number(version));
  }

  async linger(entry: Omit<PresenceEntry, 'status'>, ttlMs: number, nowMs: number): Promise<PresenceChange | null> {
    assertTtl(ttlMs);
    const { channel, userId, connectionId } = entry;
    const [before, after, version] = await withRedis(this.conn, () =>
      this.lingerScript(this.keys.entry(channel, userId), [JSON.stringify([userId, connectionId]), nowMs, nowMs + ttlMs, channel, keyTtl(ttlMs)]),
    );
    return changeOf(channel, userId, orNull(before), orNull(after), Number(version));
  }

  async remove(channel: string, userId: string, connectionId: string, nowMs: number): Promise<PresenceChange | null> {
    const [before, after, version] = await withRedis(this.conn, () => this.removeScript(this.keys.entry(channel, userId), [JSON.stringify([userId, connectionId]), nowMs, channel]));
    return changeOf(channel, userId, orNull(before), orNull(after), Number(version));
  }

  async members(channel: string, nowMs: number): Promise<PresenceMember[]> {
    const flat = await withRedis(this.conn, () => this.membersScript([this.keys.expiry(channel)], [nowMs, this.keys.userPrefix(channel)]));
    const byUser = new Map<string, string[]>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const user = flat[i]!;
      byUser.set(user, [...(byUser.get(user) ?? []), flat[i + 1]!]);
    }
    return sortMembers([...byUser].map(([user_id, statuses]) => ({ user_id, status: bestStatus(statuses)! })));
  }

  async expire(nowMs: number): Promise<PresenceChange[]> {
    const changes: PresenceChange[] = [];
    let failure: { err: unknown } | undefined;
    for (let bucket = 0; bucket < this.keys.buckets; bucket++) {
      try {
        await this.expireBucket(bucket, nowMs, changes);
      } catch (err) {
        // The entries of the rounds that answered (this bucket's and the others') are gone from
        // Redis: their leaves must still be told. The rest waits for the next sweep; the other
        // buckets are still swept (on a cluster they may live on nodes that answer).
        failure ??= { err };
      }
    }
    if (failure && changes.length === 0) throw failure.err;
    return changes;
  }

  /** One bucket's expired entries, their changes added to `changes` round by round. */
  private async expireBucket(bucket: number, nowMs: number, changes: PresenceChange[]): Promise<void> {
    const keys = [this.keys.index(bucket)];
    const args = [nowMs, this.keys.channelPrefix(bucket), EXPIRE_BATCH_CHANNELS, EXPIRE_BATCH_ENTRIES];
    // Bounded: whatever is left (a huge backlog) is picked up by the next call.
    for (let more = true, round = 0; more && round < EXPIRE_MAX_ROUNDS; round++) {
      const out = await withRedis(this.conn, () => this.expireScript(keys, args));
      more = Number(out[0]) === 1;
      const version = Number(out[1]);
      for (let i = 2; i + 3 < out.length; i += 4) {
        const change = changeOf(String(out[i]), String(out[i + 1]), orNull(String(out[i + 2])), orNull(String(out[i + 3])), version);
        if (change) changes.push(change);
      }
    }
  }

  async close(): Promise<void> {
    await closeRedis(this.conn);
  }
}

export class RedisSessionStore implements SessionStore {
  private readonly conn: RedisConnection;
  private readonly prefix: string;

  private readonly saveScript: (keys: string[], args: (string | number)[]) => Promise<number>;
  private readonly deleteScript: (keys: string[], args: (string | number)[]) => Promise<number>;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.prefix ?? 'tem:';
    this.conn = openRedis({ ...options, name: `${this.prefix}sessions:${options.name ?? randomBase62(8)}` });
    this.saveScript = defineScript(this.conn.redis, 'temSessionSave', 1, SESSION_SAVE_LUA);
    this.deleteScript = defineScript(this.conn.redis, 'temSessionDelete', 1, SESSION_DELETE_LUA);
  }

  private key(sessionId: string): string {
    return `${this.prefix}sess:${sessionId}`;
  }

  async save(state: SessionState, ttlMs: number, options: { takeOver?: boolean } = {}): Promise<void> {
    const args = [JSON.stringify(state), Math.max(1, Math.floor(ttlMs)), state.owner ?? '', options.takeOver ? '1' : '0'];
    await withRedis(this.conn, () => this.saveScript([this.key(state.sessionId)], args));
  }

  async load(sessionId: string): Promise<SessionState | null> {
    const json = await withRedis(this.conn, (redis) => redis.get(this.key(sessionId)));
    return json === null ? null : (JSON.parse(json) as SessionState);
  }

  async delete(sessionId: string, owner?: string): Promise<void> {
    if (owner === undefined) await withRedis(this.conn, (redis) => redis.del(this.key(sessionId)));
    else await withRedis(this.conn, () => this.deleteScript([this.key(sessionId)], [owner]));
  }

  async close(): Promise<void> {
    await closeRedis(this.conn);
  }
}
