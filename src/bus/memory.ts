/**
 * The in-process bus: embedded mode and tests. A MemoryHub plays the part Redis plays in
 * distributed mode (it holds every channel's stream and fans out to every node attached to it),
 * so several MemoryBus nodes on one hub behave like gateway nodes on one Redis. Publications
 * travel as the same JSON text the Redis transport moves, so every node and every history read
 * gets its own copy, and delivery is asynchronous (a microtask) as it is over Redis.
 */
import { randomBase62 } from '../core/ids.js';
import type { NamespaceOptions } from '../config/index.js';
import type { StreamPosition } from '../protocol/frames.js';
import { matchesPattern } from '../protocol/frames.js';
import { BaseBus, type BaseBusOptions, type TopicKind } from './base.js';
import { decodeStored, emptyPositionTtl, entriesAfter, keepsHistory, positionTtl, toPublication, type StreamRead } from './history.js';
import { LimiterCache, localLimiter } from './limits.js';
import { defaultNamespaces } from './namespaces.js';
import type { AppendGroup, AppendResult, ControlMessage, SharedLimiter, SharedLimiterOptions } from './types.js';

interface Stream {
  epoch: string;
  offset: number;
  /** Oldest first; `json` is the publication as fanned out. */
  entries: { offset: number; ts: number; json: string }[];
  historyTtlMs: number;
  /** When the position itself is forgotten (a later publication starts a new epoch). */
  expiresAt: number;
}

/**
 * How often expired positions and history are forgotten: at the first publish or read this long
 * after the last sweep, and on a timer while nodes are attached, so an embedded server that went
 * quiet gives back what expired instead of holding it until the next publication.
 */
const SWEEP_EVERY_MS = 60_000;

export interface MemoryBusOptions extends Partial<BaseBusOptions> {
  /** The hub shared with other nodes; a private one when omitted. */
  hub?: MemoryHub;
}

/** Shared state of in-process nodes: what Redis holds in distributed mode. */
export class MemoryHub {
  private readonly streams = new Map<string, Stream>();
  private readonly nodes = new Set<MemoryBus>();
  private lastSweep = -Infinity;
  /** Sweeps while nodes are attached (on the first node's clock); unref'd. */
  private sweeper: NodeJS.Timeout | null = null;
  /** @internal */
  readonly limiters = new LimiterCache(localLimiter);
  /** @internal Receipt slot → the ids its last call appended (one slot per relay role: no expiry needed). */
  readonly receipts = new Map<string, Set<string>>();

  /** `defaults` apply to every node created by `node()`. */
  constructor(private readonly defaults: Partial<BaseBusOptions> = {}) {}

  /** A new node on this hub. */
  node(options: Partial<BaseBusOptions> = {}): MemoryBus {
    return new MemoryBus({ ...this.defaults, ...options, hub: this });
  }

  /** @internal */
  attach(node: MemoryBus): void {
    this.nodes.add(node);
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const clock = this.nodes.values().next().value;
      if (clock) this.sweep(clock.nowMs());
    }, SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /** @internal */
  detach(node: MemoryBus): void {
    this.nodes.delete(node);
    if (this.nodes.size > 0 || !this.sweeper) return;
    clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /** @internal How many channel positions the hub holds (tests, diagnostics). */
  get streamCount(): number {
    return this.streams.size;
  }

  /** @internal Appends and fans out in one synchronous step, so fan-out order is offset order. */
  append(channel: string, bodies: string[], ns: NamespaceOptions, nowMs: number, positionTtlMs: number): AppendResult {
    this.sweep(nowMs);
    const stream = this.stream(channel, nowMs, ns, positionTtlMs);
    const firstOffset = stream.offset + 1;
    for (const body of bodies) this.appendOne(channel, stream, body, ns, nowMs, positionTtlMs);
    return { epoch: stream.epoch, firstOffset };
  }

  private appendOne(channel: string, stream: Stream, body: string, ns: NamespaceOptions, nowMs: number, positionTtlMs: number): void {
    stream.offset += 1;
    const json = `{"offset":${stream.offset},"epoch":"${stream.epoch}","ts":${nowMs},${body.slice(1)}`;
    if (keepsHistory(ns)) {
      stream.entries.push({ offset: stream.offset, ts: nowMs, json });
      if (stream.entries.length > ns.historySize) stream.entries.splice(0, stream.entries.length - ns.historySize);
    } else {
      stream.entries = [];
    }
    stream.historyTtlMs = ns.historyTtlMs;
    stream.expiresAt = nowMs + positionTtl(ns, positionTtlMs);
    for (const node of this.nodes) node.receive(channel, json);
  }

  /** @internal */
  read(channel: string, since: StreamPosition | undefined, ns: NamespaceOptions, nowMs: number, positionTtlMs: number): StreamRead {
    // Subscribing alone creates positions (of channels nothing is published at): swept here too.
    this.sweep(nowMs);
    const stream = this.stream(channel, nowMs, ns, positionTtlMs);
    // As the Redis read script: a read keeps the position alive, briefly while nothing was published.
    stream.expiresAt = nowMs + (stream.offset === 0 ? emptyPositionTtl(ns, positionTtlMs) : positionTtl(ns, positionTtlMs));
    const position = { offset: stream.offset, epoch: stream.epoch };
    const after = entriesAfter(position, since);
    if (after === undefined) return { position, entries: [] };
    const entries = stream.entries.filter((e) => e.offset > after).map((e) => decodeStored(channel, e.json));
    return { position, entries };
  }

  /** @internal */
  control(message: ControlMessage): void {
    const json = JSON.stringify(message);
    for (const node of this.nodes) node.receiveControl(json);
  }

  /** The live stream, or a new one with a fresh epoch (as the Redis scripts do). */
  private stream(channel: string, nowMs: number, ns: NamespaceOptions, positionTtlMs: number): Stream {
    const existing = this.streams.get(channel);
    if (existing && existing.expiresAt > nowMs) return existing;
    const created: Stream = {
      epoch: randomBase62(10),
      offset: 0,
      entries: [],
      historyTtlMs: ns.historyTtlMs,
      expiresAt: nowMs + positionTtl(ns, positionTtlMs),
    };
    this.streams.set(channel, created);
    return created;
  }

  /** Forgets expired positions and history now and then, so memory stays bounded. */
  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = nowMs;
    for (const [channel, stream] of this.streams) {
      if (stream.expiresAt <= nowMs) {
        this.streams.delete(channel);
        continue;
      }
      const oldestAlive = nowMs - stream.historyTtlMs;
      const firstAlive = stream.entries.findIndex((e) => e.ts > oldestAlive);
      if (firstAlive === -1) stream.entries = [];
      else if (firstAlive > 0) stream.entries.splice(0, firstAlive);
    }
  }
}

export class MemoryBus extends BaseBus {
  readonly kind = 'memory' as const;
  private readonly hub: MemoryHub;

  constructor(options: MemoryBusOptions = {}) {
    super({ ...options, namespaces: options.namespaces ?? defaultNamespaces });
    this.hub = options.hub ?? new MemoryHub();
    this.hub.attach(this);
  }

  protected async append(groups: AppendGroup[], nowMs: number, receipt?: string): Promise<AppendResult[]> {
    if (receipt === undefined) return groups.map((g) => this.hub.append(g.channel, g.bodies, g.ns, nowMs, this.positionTtlMs));
    // As the Redis script does: leave out what the slot's last call appended, then record this one.
    const seen = this.hub.receipts.get(receipt) ?? new Set<string>();
    const ids = new Set<string>();
    const results = groups.map((g) => {
      const skipped = g.bodies.map((_, i) => {
        const id = g.ids?.[i] ?? '';
        if (id !== '') ids.add(id);
        return g.sent?.[i] === true || (id !== '' && seen.has(id));
      });
      const result = this.hub.append(g.channel, g.bodies.filter((_, i) => !skipped[i]), g.ns, nowMs, this.positionTtlMs);
      return { ...result, skipped };
    });
    // Ids of the last call above this call's highest may still come (PublishOptions.receipt).
    let top: string | undefined;
    for (const id of ids) if (top === undefined || idAbove(id, top)) top = id;
    for (const id of seen) if (top === undefined || idAbove(id, top)) ids.add(id);
    this.hub.receipts.set(receipt, ids);
    return results;
  }

  protected async read(channel: string, since: StreamPosition | undefined, ns: NamespaceOptions): Promise<StreamRead> {
    return this.hub.read(channel, since, ns, this.clock.nowMs(), this.positionTtlMs);
  }

  // Every node hears every publication from the hub; dispatch() drops those without a handler.
  protected async listen(_kind: TopicKind, _name: string): Promise<void> {}
  protected async unlisten(_kind: TopicKind, _name: string): Promise<void> {}

  protected async sendControl(message: ControlMessage): Promise<void> {
    this.hub.control(message);
  }

  limiter(options: SharedLimiterOptions): SharedLimiter {
    return this.hub.limiters.get(options);
  }

  /** @internal The node's clock, which the hub's periodic sweep goes by. */
  nowMs(): number {
    return this.clock.nowMs();
  }

  async reachable(channels: readonly string[]): Promise<ReadonlySet<string>> {
    return new Set(this.closed ? [] : channels);
  }

  async health(): Promise<'ok' | 'down'> {
    return 'ok';
  }

  protected async closeTransport(): Promise<void> {
    this.hub.detach(this);
  }

  /** @internal Called by the hub for every publication. */
  receive(channel: string, json: string): void {
    queueMicrotask(() => {
      if (this.closed) return;
      if (this.hasTopic('channel', channel)) this.dispatch('channel', channel, toPublication(decodeStored(channel, json)));
      for (const pattern of this.patterns()) {
        if (matchesPattern(pattern, channel)) this.dispatch('pattern', pattern, toPublication(decodeStored(channel, json)));
      }
    });
  }

  /** @internal */
  receiveControl(json: string): void {
    queueMicrotask(() => {
      if (!this.closed) this.dispatch('control', 'control', JSON.parse(json) as ControlMessage);
    });
  }
}

/** Whether decimal receipt id `a` is the greater number (any length, no float rounding). */
function idAbove(a: string, b: string): boolean {
  return a.length > b.length || (a.length === b.length && a > b);
}
