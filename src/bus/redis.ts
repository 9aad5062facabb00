/**
 * The bus over Redis (distributed mode). Two connections per node:
 * - commands (publish, history, control): fails fast while Redis is away (see connection.ts);
 * - one subscriber connection, which SUBSCRIBEs/PSUBSCRIBEs only the channels and patterns this
 *   node has local handlers for, and re-subscribes them itself after a reconnect.
 *
 * Key layout (prefix default `tem:`): `{prefix}bus:{channel}:pos` (hash epoch/offset),
 * `{prefix}bus:{channel}:hist` (list of publication JSON). Pub/sub: `{prefix}bus:{channel}`,
 * control messages on `{prefix}bus-control` (no channel pattern can match it).
 */
import { Cluster, type Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { createError } from '../core/errors.js';
import { randomBase62 } from '../core/ids.js';
import type { NamespaceOptions } from '../config/index.js';
import type { StreamPosition } from '../protocol/frames.js';
import { BaseBus, type BaseBusOptions, type TopicKind } from './base.js';
import { knownNodes } from './cluster-connection.js';
import { closeRedis, defineScript, escapeGlob, onReconnected, openRedis, withRedis, type RedisClient, type RedisConnection } from './connection.js';
import { decodeStored, emptyPositionTtl, positionTtl, toPublication, type StreamRead } from './history.js';
import { LimiterCache, redisLimiter } from './limits.js';
import { SuspectNodes } from './suspect-nodes.js';
import { CONTROL_LUA, publishLua, readLua } from './redis-scripts.js';
import { RECEIPT_TTL_MS, type AppendFailure, type AppendGroup, type AppendResult, type ControlMessage, type SharedLimiter, type SharedLimiterOptions } from './types.js';

export interface RedisBusOptions extends BaseBusOptions {
  url: string;
  /** `url` names one node of a Redis Cluster (see the class comment). */
  cluster?: boolean;
  /** Prefix of every key and pub/sub channel (tests use one per file). */
  prefix?: string;
  /** Node name used in CLIENT SETNAME (`{prefix}bus:cmd:{name}`, `{prefix}bus:sub:{name}`). */
  name?: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** How often the subscriber connection is pinged, so a silently dead one is replaced (ms). */
  heartbeatMs?: number;
}

type ReadReply = [string, number, string[]];

export class RedisBus extends BaseBus {
  readonly kind = 'redis' as const;
  readonly prefix: string;
  readonly name: string;
  private readonly cmd: RedisConnection;
  private readonly sub: RedisConnection<Redis>;
  private readonly cluster: boolean;
  private readonly pubsubPrefix: string;
  private readonly controlChannel: string;
  /** PSUBSCRIBE pattern → the bus pattern it stands for. */
  private readonly patternNames = new Map<string, string>();
  private readonly publishScript: (keys: string[], args: (string | number)[]) => Promise<(string | number)[]>;
  private readonly readScript: (keys: string[], args: (string | number)[]) => Promise<ReadReply>;
  private readonly controlScript: (keys: string[], args: (string | number)[]) => Promise<number>;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly limiters = new LimiterCache((options) => redisLimiter(this.cmd, this.prefix, options));
  private readonly suspects = new SuspectNodes();

  constructor(options: RedisBusOptions) {
    super(options);
    this.prefix = options.prefix ?? 'tem:';
    this.name = options.name ?? randomBase62(8);
    this.pubsubPrefix = `${this.prefix}bus:`;
    this.controlChannel = `${this.prefix}bus-control`;
    this.cluster = options.cluster ?? false;
    const common = { url: options.url, commandTimeoutMs: options.commandTimeoutMs, connectTimeoutMs: options.connectTimeoutMs, logger: this.logger };
    this.cmd = openRedis({ ...common, cluster: this.cluster, name: `${this.prefix}bus:cmd:${this.name}` });
    // A plain connection even on a cluster: classic pub/sub reaches it from every node, so when
    // its node is gone any other will do.
    const cmd = this.cmd.redis;
    const otherNodes = cmd instanceof Cluster ? () => knownNodes(cmd) : undefined;
    this.sub = openRedis({ ...common, otherNodes, name: `${this.prefix}bus:sub:${this.name}` });
    // Keys vary with the number of channels published at once (numberOfKeys given per call).
    this.publishScript = defineScript(this.cmd.redis, 'temBusPublish', null, publishLua(this.cluster));
    this.readScript = defineScript(this.cmd.redis, 'temBusRead', 2, readLua(this.cluster));
    this.controlScript = defineScript(this.cmd.redis, 'temBusControl', 1, CONTROL_LUA);
    this.sub.redis.on('message', (raw: string, json: string) => this.onMessage(raw, json));
    this.sub.redis.on('pmessage', (rawPattern: string, raw: string, json: string) => this.onPatternMessage(rawPattern, raw, json));
    onReconnected(this.sub, () => this.resubscribe(this.sub.redis));
    // A subscriber only reads, so nothing else would notice a black-holed socket; a ping that
    // times out makes withRedis() reconnect it.
    this.heartbeat = setInterval(() => {
      if (this.sub.redis.status === 'ready') withRedis(this.sub, (redis) => redis.ping()).catch(() => undefined);
    }, options.heartbeatMs ?? 5000);
    this.heartbeat.unref();
  }

  private keys(channel: string): [string, string] {
    return [`${this.prefix}bus:{${channel}}:pos`, `${this.prefix}bus:{${channel}}:hist`];
  }

  /**
   * One receipt slot for the whole Bus on one server. On a cluster a script reaches only one
   * slot, so each channel keeps its own receipt next to its stream (same hash tag).
   */
  private receiptKey(slot: string, channel?: string): string {
    return channel === undefined ? `${this.prefix}bus:receipt:${slot}` : `${this.prefix}bus:{${channel}}:receipt:${slot}`;
  }

  protected async append(groups: AppendGroup[], nowMs: number, receipt?: string): Promise<(AppendResult | AppendFailure)[]> {
    if (!this.cluster) return this.appendScript(groups, nowMs, receipt === undefined ? undefined : this.receiptKey(receipt));
    // One script per channel, all sent at once (each to its slot's node). A batch may now go out
    // in part (the channels whose node failed are reported as such); a retry re-sends only what
    // the channels' receipts do not name. Every call is settled before the batch returns, so a
    // retry never overtakes a call still in flight. With the whole cluster away (the client has
    // no node left) the call fails as a whole, as on one Redis.
    // For the relay (a receipt call), the channels of a node that failed just now fail at once
    // (suspect-nodes.ts); a single publish still tries, and waits at most the command timeout.
    await withRedis(this.cmd, async () => undefined);
    const owners = groups.map((g) => (receipt === undefined ? '' : this.ownerOf(g.channel)));
    const settled = await Promise.allSettled(
      groups.map((g, i) =>
        this.suspects.has(owners[i]!, nowMs)
          ? Promise.reject(createError('BUS_UNAVAILABLE', `Redis node ${owners[i]!} failed a moment ago`, { retryAfter: 1 }))
          : this.appendScript([g], nowMs, receipt === undefined ? undefined : this.receiptKey(receipt, g.channel)),
      ),
    );
    return settled.map((r, i) => {
      if (r.status === 'fulfilled') {
        this.suspects.answered(owners[i]!);
        return r.value[0]!;
      }
      if (!this.suspects.has(owners[i]!, nowMs)) this.suspects.failed(owners[i]!, this.clock.nowMs());
      return { error: r.reason as unknown };
    });
  }

  /** host:port of the primary owning the channel's slot on a cluster ('' when not known). */
  private ownerOf(channel: string): string {
    const redis = this.cmd.redis;
    return redis instanceof Cluster ? (redis.slots[calculateSlot(this.keys(channel)[0])]?.[0] ?? '') : '';
  }

  /** One publish script over `groups`, whose channels share a slot; with a receipt key, a receipt call. */
  private async appendScript(groups: AppendGroup[], nowMs: number, receiptKey: string | undefined): Promise<AppendResult[]> {
    const keys: string[] = [];
    const args: (string | number)[] = [nowMs];
    for (const g of groups) {
      keys.push(...this.keys(g.channel));
      args.push(this.pubsubPrefix + g.channel, randomBase62(10), g.ns.historySize, g.ns.historyTtlMs, positionTtl(g.ns, this.positionTtlMs), g.bodies.length, ...g.bodies);
      // '!' first: the caller knows it went out; recorded, not appended (publishLua).
      if (receiptKey !== undefined) args.push(...g.bodies.map((_, i) => `${g.sent?.[i] ? '!' : ''}${g.ids?.[i] ?? ''}`));
    }
    if (receiptKey !== undefined) {
      keys.push(receiptKey);
      args.push(RECEIPT_TTL_MS);
    }
    const flat = await withRedis(this.cmd, () => this.publishScript(keys, args));
    return groups.map((_, k) => {
      const mask = String(flat[3 * k + 2]);
      const result: AppendResult = { epoch: String(flat[3 * k]), firstOffset: Number(flat[3 * k + 1]) };
      if (mask !== '') result.skipped = [...mask].map((c) => c === '1');
      return result;
    });
  }

  protected async read(channel: string, since: StreamPosition | undefined, ns: NamespaceOptions): Promise<StreamRead> {
    const valid = since !== undefined && typeof since.epoch === 'string' && Number.isSafeInteger(since.offset);
    const [epoch, offset, entries] = await withRedis(this.cmd, () =>
      this.readScript(this.keys(channel), [
        randomBase62(10),
        positionTtl(ns, this.positionTtlMs),
        valid ? since.epoch : '',
        valid ? since.offset : -1,
        emptyPositionTtl(ns, this.positionTtlMs),
      ]),
    );
    return { position: { epoch, offset: Number(offset) }, entries: entries.map((json) => decodeStored(channel, json)) };
  }

  private topicName(kind: TopicKind, name: string): string {
    if (kind === 'control') return this.controlChannel;
    if (kind === 'channel') return this.pubsubPrefix + name;
    // `a:b:*` → every channel starting `a:b:`; the literal part is escaped for the glob.
    return `${escapeGlob(this.pubsubPrefix + name.slice(0, -1))}*`;
  }

  protected listen(kind: TopicKind, name: string): Promise<void> {
    const topic = this.topicName(kind, name);
    if (kind === 'pattern') {
      this.patternNames.set(topic, name);
      return withRedis(this.sub, (redis) => redis.psubscribe(topic)).then(
        () => undefined,
        (err: unknown) => {
          // The base forgets a topic whose listen failed without unlistening it.
          this.patternNames.delete(topic);
          throw err;
        },
      );
    }
    return withRedis(this.sub, (redis) => redis.subscribe(topic)).then(() => undefined);
  }

  protected unlisten(kind: TopicKind, name: string): Promise<void> {
    const topic = this.topicName(kind, name);
    if (kind === 'pattern') {
      this.patternNames.delete(topic);
      return withRedis(this.sub, (redis) => redis.punsubscribe(topic)).then(() => undefined);
    }
    return withRedis(this.sub, (redis) => redis.unsubscribe(topic)).then(() => undefined);
  }

  /** After a reconnect the new socket has no subscriptions: restore exactly the wanted ones. */
  private resubscribe(redis: Redis): void {
    const topics = this.activeTopics();
    const channels = topics.filter((t) => t.kind !== 'pattern').map((t) => this.topicName(t.kind, t.name));
    const patterns = topics.filter((t) => t.kind === 'pattern').map((t) => this.topicName(t.kind, t.name));
    const failed = (err: unknown): void => this.logger.warn({ err }, 'bus re-subscribe failed; retried on next reconnect');
    const pending: Promise<unknown>[] = [];
    if (channels.length > 0) pending.push(redis.subscribe(...channels));
    if (patterns.length > 0) pending.push(redis.psubscribe(...patterns));
    Promise.all(pending).then(() => {
      this.logger.info({ channels: channels.length, patterns: patterns.length }, 'bus re-subscribed after reconnect');
      // Once listening again: what was published meanwhile is only in history now.
      this.resubscribed();
    }, failed);
  }

  private onMessage(raw: string, json: string): void {
    try {
      if (raw === this.controlChannel) {
        this.dispatch('control', 'control', JSON.parse(json) as ControlMessage);
        return;
      }
      if (!raw.startsWith(this.pubsubPrefix)) return;
      const channel = raw.slice(this.pubsubPrefix.length);
      if (this.hasTopic('channel', channel)) this.dispatch('channel', channel, toPublication(decodeStored(channel, json)));
    } catch (err) {
      this.logger.error({ err, channel: raw }, 'undecodable bus message');
    }
  }

  private onPatternMessage(rawPattern: string, raw: string, json: string): void {
    const pattern = this.patternNames.get(rawPattern);
    if (pattern === undefined || !raw.startsWith(this.pubsubPrefix)) return;
    try {
      const channel = raw.slice(this.pubsubPrefix.length);
      this.dispatch('pattern', pattern, toPublication(decodeStored(channel, json)));
    } catch (err) {
      this.logger.error({ err, channel: raw }, 'undecodable bus message');
    }
  }

  protected async sendControl(message: ControlMessage): Promise<void> {
    const json = JSON.stringify(message);
    // A cluster client sends a keyless PUBLISH to any node, so two control messages could cross
    // the cluster bus in either order (a typing stop overtaking its start). Keyed by the control
    // channel's own name, every one goes out from the same node, in order.
    if (this.cluster) await withRedis(this.cmd, () => this.controlScript([this.controlChannel], [json]));
    else await withRedis(this.cmd, (redis) => redis.publish(this.controlChannel, json));
  }

  limiter(options: SharedLimiterOptions): SharedLimiter {
    return this.limiters.get(options);
  }

  async health(): Promise<'ok' | 'down'> {
    if (this.closed) return 'down';
    try {
      // Both connections: a node whose subscriber is away receives nothing.
      await withRedis(this.sub, async () => undefined);
      // On a cluster a PING goes to any one node: ask every primary, so one that is away shows
      // every time rather than on a third of the checks.
      await withRedis<RedisClient, unknown>(this.cmd, (redis) => (redis instanceof Cluster ? Promise.all(redis.nodes('master').map((node) => node.ping())) : redis.ping()));
      return 'ok';
    } catch {
      return 'down';
    }
  }

  async reachable(channels: readonly string[]): Promise<ReadonlySet<string>> {
    // A write in the channel's slot (a key that expires at once): a node that answers reads but
    // takes no writes (paused for a failover, out of memory, too few replicas) does not pass.
    const answers = (channel: string): Promise<boolean> =>
      withRedis(this.cmd, (r) => r.set(`${this.prefix}bus:{${channel}}:probe`, '1', 'PX', 1000)).then(
        () => true,
        () => false,
      );
    // Grouped by the primary that owns each channel's slot (the client's slot map, kept up to
    // date as slots move or a replica takes over; one group on one Redis): one write per node,
    // routed like a publish (opening a fresh connection where a hung one was dropped).
    const byNode = new Map<string, string[]>();
    for (const channel of channels) {
      const owner = this.ownerOf(channel);
      byNode.set(owner, [...(byNode.get(owner) ?? []), channel]);
    }
    const ok = new Set<string>();
    await Promise.all(
      [...byNode].map(async ([owner, list]) => {
        if (await answers(list[0]!)) {
          this.suspects.answered(owner);
          for (const channel of list) ok.add(channel);
        } else {
          this.suspects.failed(owner, this.clock.nowMs());
        }
      }),
    );
    return ok;
  }

  protected async closeTransport(): Promise<void> {
    clearInterval(this.heartbeat);
    await Promise.all([closeRedis(this.cmd), closeRedis(this.sub)]);
  }
}
