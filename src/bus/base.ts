/**
 * What every bus does regardless of transport, in the manner of socket.io's Adapter: validate
 * names, keep this node's handlers, decide when the transport must listen to a channel, dispatch
 * incoming publications and control messages to local handlers, and answer history from what the
 * transport read. A transport (memory.ts, redis.ts) only appends, reads and moves bytes.
 *
 * The transport is asked to listen to a channel or pattern when its first local handler arrives
 * and to stop when the last one leaves, so a node only receives traffic it has a use for.
 */
import { systemClock, type Clock } from '../core/clock.js';
import { createError, toTemError } from '../core/errors.js';
import type { NamespaceOptions } from '../config/index.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { isChannelName, isPattern, isValidChannel, type StreamPosition } from '../protocol/frames.js';
import { DEFAULT_POSITION_TTL_MS, encodeBody, recover, type StreamRead } from './history.js';
import { PartialPublishError } from './errors.js';
import type { AppendFailure, AppendGroup, AppendResult, Bus, BusMessage, ControlMessage, HistoryResult, NamespaceResolver, Publication, PublishOptions, SharedLimiter, SharedLimiterOptions, Unsubscribe } from './types.js';

export type TopicKind = 'channel' | 'pattern' | 'control';

export interface BaseBusOptions {
  namespaces: NamespaceResolver;
  clock?: Clock;
  /** How long a channel's (epoch, offset) outlives its last publication (at least its history TTL). */
  positionTtlMs?: number;
  logger?: Logger;
  /**
   * Called once for each publish, publishMany or publishControl the transport failed (not for
   * bad input): the process's `tem_bus_publish_failures_total`, whoever published — relay,
   * /api/publish, client PUBLISH, presence or typing notices, control messages.
   */
  onPublishFailure?: () => void;
}

type Handler = (value: never) => void;

interface Topic {
  kind: TopicKind;
  name: string;
  /** Wrapped per subscribe() call, so the same function subscribed twice is called twice. */
  handlers: Set<{ fn: Handler }>;
  /** Settles when the transport listens; shared by every subscribe() that joined meanwhile. */
  listening: Promise<void>;
}

const CONTROL_TOPIC = 'control';

export abstract class BaseBus implements Bus {
  abstract readonly kind: 'memory' | 'redis';
  protected readonly namespaces: NamespaceResolver;
  protected readonly clock: Clock;
  protected readonly positionTtlMs: number;
  protected readonly logger: Logger;
  private readonly onPublishFailure: () => void;
  private readonly topics = new Map<string, Topic>();
  private readonly resubscribedHandlers = new Set<() => void>();
  protected closed = false;

  constructor(options: BaseBusOptions) {
    this.namespaces = options.namespaces;
    this.clock = options.clock ?? systemClock;
    this.positionTtlMs = options.positionTtlMs ?? DEFAULT_POSITION_TTL_MS;
    this.logger = options.logger ?? silentLogger();
    this.onPublishFailure = options.onPublishFailure ?? (() => {});
  }

  /**
   * Appends each group's bodies (encodeBody) to its channel's history and fans them out, all
   * groups in one atomic step: fan-out order is offset order, and no other publication lands
   * between the bodies of a group. With a receipt slot, bodies whose id the slot holds are left
   * out and the slot then holds this call's ids, in that same step (PublishOptions.receipt).
   * Results in group order.
   */
  protected abstract append(groups: AppendGroup[], nowMs: number, receipt?: string): Promise<(AppendResult | AppendFailure)[]>;
  /** The channel's position (created with a fresh epoch if missing) and history after `since`. */
  protected abstract read(channel: string, since: StreamPosition | undefined, ns: NamespaceOptions): Promise<StreamRead>;
  protected abstract listen(kind: TopicKind, name: string): Promise<void>;
  protected abstract unlisten(kind: TopicKind, name: string): Promise<void>;
  protected abstract sendControl(message: ControlMessage): Promise<void>;
  abstract limiter(options: SharedLimiterOptions): SharedLimiter;
  abstract health(): Promise<'ok' | 'down'>;
  abstract reachable(channels: readonly string[]): Promise<ReadonlySet<string>>;
  protected abstract closeTransport(): Promise<void>;

  async publish(channel: string, event: string, payload: unknown, options: { eventId?: string } = {}): Promise<Publication> {
    const message: BusMessage = options.eventId === undefined ? { channel, event, payload } : { channel, event, payload, eventId: options.eventId };
    try {
      return (await this.publishMany([message]))[0]!;
    } catch (err) {
      // One channel went out whole or not at all: its own failure says more.
      throw err instanceof PartialPublishError ? err.cause : err;
    }
  }

  async publishMany(messages: BusMessage[], options: PublishOptions = {}): Promise<Publication[]> {
    this.assertOpen();
    const groups = new Map<string, AppendGroup & { at: number[] }>();
    messages.forEach((m, i) => {
      this.assertChannel(m.channel);
      if (typeof m.event !== 'string' || m.event.length === 0) throw createError('BAD_REQUEST', 'Event name is required', { field: 'event' });
      let g = groups.get(m.channel);
      if (!g) groups.set(m.channel, (g = { channel: m.channel, bodies: [], ns: this.namespaces(m.channel), at: [] }));
      g.bodies.push(encodeBody(m.event, m.payload, m.eventId));
      if (options.receipt !== undefined) {
        (g.ids ??= []).push(m.receiptId ?? '');
        (g.sent ??= []).push(m.alreadySent === true);
      }
      g.at.push(i);
    });
    if (groups.size === 0) return [];
    const list = [...groups.values()];
    const results = await this.counted(() => this.append(list, this.clock.nowMs(), options.receipt));
    // What subscribers receive, built here rather than parsed back from the transport.
    const out = new Array<Publication | undefined>(messages.length);
    const failed = new Set<string>();
    let cause: unknown;
    list.forEach((g, k) => {
      const result = results[k]!;
      if ('error' in result) {
        if (failed.size === 0) cause = result.error;
        failed.add(g.channel);
        return;
      }
      const { epoch, firstOffset, skipped } = result;
      let offset = firstOffset;
      g.at.forEach((i, n) => {
        if (skipped?.[n]) return;
        const m = messages[i]!;
        const pub: Publication = { channel: m.channel, offset: offset++, epoch, event: m.event, payload: m.payload ?? null };
        if (m.eventId !== undefined) pub.eventId = m.eventId;
        out[i] = pub;
      });
    });
    const published = out.filter((p): p is Publication => p !== undefined);
    if (failed.size === 0) return published;
    this.onPublishFailure();
    throw new PartialPublishError(published, failed, cause);
  }

  async history(channel: string, since?: StreamPosition): Promise<HistoryResult> {
    this.assertOpen();
    this.assertChannel(channel);
    const ns = this.namespaces(channel);
    const read = await this.read(channel, since, ns);
    return recover(read, since, ns, this.clock.nowMs());
  }

  async position(channel: string): Promise<StreamPosition> {
    return (await this.history(channel)).position;
  }

  subscribe(channelOrPattern: string, handler: (pub: Publication) => void): Promise<Unsubscribe> {
    if (!isValidChannel(channelOrPattern)) {
      return Promise.reject(createError('BAD_REQUEST', `Not a channel or pattern: ${JSON.stringify(channelOrPattern)}`, { field: 'channel' }));
    }
    return this.addHandler(isPattern(channelOrPattern) ? 'pattern' : 'channel', channelOrPattern, handler as Handler);
  }

  async publishControl(message: ControlMessage): Promise<void> {
    this.assertOpen();
    // Presence and typing notices, revocations: counted like any failed publish.
    await this.counted(() => this.sendControl(message));
  }

  /** Runs a send to the transport; its failure is counted (onPublishFailure) and rethrown. */
  private async counted<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      this.onPublishFailure();
      throw err;
    }
  }

  onControl(handler: (message: ControlMessage) => void): Promise<Unsubscribe> {
    return this.addHandler('control', CONTROL_TOPIC, handler as Handler);
  }

  onResubscribed(handler: () => void): Unsubscribe {
    this.resubscribedHandlers.add(handler);
    return async () => {
      this.resubscribedHandlers.delete(handler);
    };
  }

  /** For the transport: the subscriptions are back after a lost connection. */
  protected resubscribed(): void {
    for (const handler of this.resubscribedHandlers) {
      try {
        handler();
      } catch (err) {
        this.logger.warn({ err }, 'resubscribed handler failed');
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.topics.clear();
    await this.closeTransport();
  }

  /** Topics this node listens to (a transport re-listens to these after reconnecting). */
  protected activeTopics(): { kind: TopicKind; name: string }[] {
    return [...this.topics.values()].map(({ kind, name }) => ({ kind, name }));
  }

  protected hasTopic(kind: TopicKind, name: string): boolean {
    return this.topics.has(`${kind}:${name}`);
  }

  /** Patterns with local handlers (memory transport matches channels against them). */
  protected patterns(): string[] {
    return [...this.topics.values()].filter((t) => t.kind === 'pattern').map((t) => t.name);
  }

  /** Delivers an incoming message to the handlers of one topic; a throwing handler harms no other. */
  protected dispatch(kind: TopicKind, name: string, value: Publication | ControlMessage): void {
    const topic = this.topics.get(`${kind}:${name}`);
    if (!topic) return;
    for (const entry of [...topic.handlers]) {
      try {
        (entry.fn as (v: Publication | ControlMessage) => void)(value);
      } catch (err) {
        this.logger.error({ err, topic: name }, 'bus handler threw');
      }
    }
  }

  private async addHandler(kind: TopicKind, name: string, fn: Handler): Promise<Unsubscribe> {
    this.assertOpen();
    const key = `${kind}:${name}`;
    let topic = this.topics.get(key);
    if (!topic) {
      const created: Topic = { kind, name, handlers: new Set(), listening: Promise.resolve() };
      created.listening = this.listen(kind, name).catch((err: unknown) => {
        // Forget a topic the transport could not listen to, so a later subscribe tries again.
        if (this.topics.get(key) === created) this.topics.delete(key);
        throw toTemError(err);
      });
      this.topics.set(key, created);
      topic = created;
    }
    const entry = { fn };
    topic.handlers.add(entry);
    const joined = topic;
    try {
      await joined.listening;
    } catch (err) {
      joined.handlers.delete(entry);
      throw err;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      joined.handlers.delete(entry);
      if (joined.handlers.size > 0 || this.topics.get(key) !== joined) return;
      this.topics.delete(key);
      if (this.closed) return;
      // Best effort: when the transport is down the subscription is gone after reconnecting anyway.
      await this.unlisten(kind, name).catch((err: unknown) => this.logger.debug({ err, topic: name }, 'unlisten failed'));
    };
  }

  private assertChannel(channel: string): void {
    if (!isChannelName(channel)) {
      throw createError('BAD_REQUEST', `Not a channel name: ${JSON.stringify(channel)}`, { field: 'channel' });
    }
  }

  protected assertOpen(): void {
    if (this.closed) throw createError('BUS_UNAVAILABLE', 'The bus is closed');
  }
}
